"""``keepup messages``: what the recorder kept: recent, show, search, export, stats."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keepup._cli.context import runtime_of
from keepup._cli.options import JsonOption
from keepup._cli.rendering import Column, escape, fields, out_console, print_json, table, when

if TYPE_CHECKING:
    from runtime_persistence import MessageStore, RecordedMessage

__all__ = ["app"]

app = typer.Typer(
    help="Recorded messages: recent, show, search, export.", no_args_is_help=True, rich_markup_mode=None
)

LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="At most this many.")]
ConversationOption = Annotated[
    str | None, typer.Option("--conversation", "-c", help="Only the messages of this conversation.")
]


def _store(ctx: typer.Context) -> MessageStore:
    from runtime_persistence import MessageStore

    runtime = runtime_of(ctx)
    store = MessageStore(runtime.driver, serializer=runtime.serializer)
    ctx.call_on_close(store.close)
    return store


def _what(message: RecordedMessage) -> str:
    if message.kind == "gap":
        return f"GAP: seq {message.gap_from}-{message.gap_to} of {message.sender} never arrived"
    if message.text is not None:
        return message.text
    if message.is_json:
        return message.body.decode("utf-8")
    return f"<{len(message.body)} bytes, not JSON>"


def _rows(messages: list[RecordedMessage]) -> None:
    table(
        None,
        [
            Column("offset", 100, wrap=False),
            Column("received", 40),
            Column("sender", 70),
            Column("seq", 30, wrap=False),
            Column("conversation", 50),
            Column("text", 90),
        ],
        [
            (m.offset, when(m.received_at), m.sender, m.seq, m.conversation, escape(_what(m)))
            for m in messages
        ],
    )


@app.command("recent")
def recent(
    ctx: typer.Context,
    limit: LimitOption = 20,
    conversation: ConversationOption = None,
    json_: JsonOption = False,
) -> None:
    """The newest recorded messages (and gaps), oldest of them first."""
    messages = _store(ctx).recent(limit, conversation=conversation)
    if json_:
        print_json({"messages": [m.to_json() for m in messages]})
        return
    if not messages:
        out_console().print("no messages recorded yet: run `keepup recorder`")
        return
    _rows(messages)


@app.command("show")
def show(
    ctx: typer.Context,
    message: Annotated[
        str, typer.Argument(metavar="MESSAGE", help="An offset, or the id the message carried.")
    ],
    json_: JsonOption = False,
) -> None:
    """One recorded message with its body and enrichment."""
    store = _store(ctx)
    found = store.get(int(message)) if message.isdigit() else store.get_by_id(message)
    if json_:
        print_json({"message": found.to_json()})
        return
    data = found.to_json()
    body = data.get("body", data.get("body_base64"))
    rows: list[tuple[str, Any]] = [
        (name, escape(str(data[name])))
        for name in ("offset", "kind", "id", "topic", "sender", "seq", "conversation", "role", "source")
        if data.get(name) is not None
    ]
    rows.append(("received", when(found.received_at)))
    if found.kind == "gap":
        rows.append(("missing", f"seq {found.gap_from}-{found.gap_to}"))
    if found.text is not None:
        rows.append(("text", escape(found.text)))
    if found.kind == "message":
        rows.append(("body" if found.is_json else "body (base64)", escape(str(body))))
    if found.enrichment:
        rows.append(("enrichment", escape(json.dumps(found.enrichment, ensure_ascii=False))))
    fields(None, rows)


@app.command("search")
def search(
    ctx: typer.Context,
    query: Annotated[
        str, typer.Argument(metavar="QUERY", help="Words; each must match (prefixes match too).")
    ],
    limit: LimitOption = 20,
    conversation: ConversationOption = None,
    json_: JsonOption = False,
) -> None:
    """Full-text search, best match first, matches [highlighted]."""
    hits = _store(ctx).search(query, limit=limit, conversation=conversation)
    if json_:
        print_json(
            {"hits": [{"rank": h.rank, "snippet": h.snippet, "message": h.message.to_json()} for h in hits]}
        )
        return
    if not hits:
        out_console().print(f"no message matches {query!r}")
        return
    table(
        None,
        [
            Column("offset", 100, wrap=False),
            Column("received", 40),
            Column("sender", 70),
            Column("conversation", 50),
            Column("match", 90),
        ],
        [
            (
                h.message.offset,
                when(h.message.received_at),
                h.message.sender,
                h.message.conversation,
                escape(h.snippet),
            )
            for h in hits
        ],
    )


@app.command("export")
def export(
    ctx: typer.Context,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: standard output).")
    ] = None,
    conversation: ConversationOption = None,
    after: Annotated[int, typer.Option("--after", min=0, help="Only messages after this offset.")] = 0,
    json_: JsonOption = False,
) -> None:
    """Every recorded message (and gap) in order, one JSON object per line (--json: one document)."""
    store = _store(ctx)
    out = output.open("w", encoding="utf-8") if output is not None else sys.stdout
    try:
        cursor, count = after, 0
        if json_:
            out.write('{"messages": [')
        while True:
            page = list(store.read(after=cursor, limit=1000, conversation=conversation))
            for message in page:
                line = json.dumps(message.to_json(), ensure_ascii=False)
                if json_:
                    out.write(("," if count else "") + "\n" + line)
                else:
                    out.write(line + "\n")
                count += 1
            if len(page) < 1000:
                break
            cursor = page[-1].offset
        if json_:
            out.write("\n]}\n")
    finally:
        if output is not None:
            out.close()
    if output is not None:
        out_console().print(f"exported {count} records to {output}") if not json_ else None


@app.command("stats")
def stats(ctx: typer.Context, json_: JsonOption = False) -> None:
    """What the recorder has kept: messages, gaps, duplicates dropped, batches, checkpoints."""
    data = _store(ctx).state().to_json()
    if json_:
        print_json({"stats": data})
        return
    fields(None, [(name.replace("_", " "), value) for name, value in data.items()])
