"""``keepup recorder``: record every message of a broker into the store until SIGTERM or Ctrl-C."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from runtime_core import ValidationError

from keepup._cli.context import runtime_of
from keepup._cli.options import JsonOption
from keepup._cli.rendering import err_console, print_json

__all__ = ["app"]

app = typer.Typer(rich_markup_mode=None)


def _tagger(tags: list[str]) -> Any:
    from runtime_persistence import KeywordTagger

    rules: dict[str, list[str]] = {}
    for rule in tags:
        name, sep, words = rule.partition("=")
        if not sep or not name.strip() or not words.strip():
            raise ValidationError(f"--tag takes NAME=word,word; got {rule!r:.80}")
        rules[name.strip()] = [w.strip() for w in words.split(",") if w.strip()]
    return KeywordTagger(rules)


@app.callback(invoke_without_command=True)
def recorder(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help="zmq://HOST:PORT (a broker's backend), nats://HOST:PORT?stream=S&subject=agents.> "
            "or mqtt://HOST:PORT?topic=agents/#.",
        ),
    ] = "zmq://127.0.0.1:5556",
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=10_000, help="Most messages per batch.")
    ] = 1000,
    batch_delay: Annotated[
        float,
        typer.Option(
            "--batch-delay", min=0.0, max=60.0, help="Most seconds a message waits for its batch to commit."
        ),
    ] = 0.05,
    checkpoint_every: Annotated[
        float,
        typer.Option(
            "--checkpoint-every", min=0.0, help="Checkpoint conversations every N seconds (0: off)."
        ),
    ] = 300.0,
    checkpoint_messages: Annotated[
        int, typer.Option("--checkpoint-messages", min=0, help="...or every N messages (0: off).")
    ] = 10_000,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Enrich: tag messages whose text has one of the words (NAME=word,word)."),
    ] = None,
    status_every: Annotated[
        float, typer.Option("--status-every", min=0.0, help="Print a status line every N seconds (0: never).")
    ] = 5.0,
    json_: JsonOption = False,
) -> None:
    """Record every message of a broker: group-committed batches, dedup by id, gaps recorded.

    Resumes from the store's own state and says what it recovered; SIGTERM or Ctrl-C flushes the
    last batch and writes a final checkpoint of every conversation."""
    from runtime_persistence import MessageStore, RecorderConfig, RecorderStats, open_source
    from runtime_persistence.session.recorder.daemon import serve

    config = RecorderConfig(
        batch_size=batch_size,
        batch_delay=batch_delay,
        checkpoint_every=checkpoint_every,
        checkpoint_messages=checkpoint_messages,
    )
    messages_source = open_source(source)
    runtime = runtime_of(ctx)
    store = MessageStore(runtime.driver, serializer=runtime.serializer)
    console = err_console()
    last = [time.monotonic()]

    def status(stats: RecorderStats) -> None:
        now = time.monotonic()
        if status_every and now - last[0] >= status_every:
            last[0] = now
            console.print(
                f"recorder: {stats.messages} messages, {stats.bytes} bytes, {stats.batches} batches, "
                f"{stats.gaps} gaps, {stats.duplicates} duplicates"
            )

    def recovered(report: dict[str, Any]) -> None:
        clean = "stopped cleanly" if report["previous_run_stopped_cleanly"] else "did NOT stop cleanly"
        console.print(
            f"recorder: resumed at offset {report['next_offset']} with {report['messages']} messages, "
            f"{report['gaps']} gaps from {report['senders']} senders; the previous run {clean}; "
            f"{report['reindexed']} messages re-indexed; recording {source}"
        )

    try:
        stats = serve(
            store,
            messages_source,
            checkpoints=runtime.checkpoints,
            config=config,
            enrichers=[_tagger(tag)] if tag else [],
            on_status=status,
            on_recovered=recovered,
        )
    finally:
        store.close()
    if json_:
        print_json({"stats": stats.to_json(), "state": _state_json(store)})
        return
    console.print(
        f"recorder: stopped after {stats.messages} messages, {stats.bytes} bytes, {stats.batches} batches, "
        f"{stats.gaps} gaps, {stats.duplicates} duplicates; final checkpoint written"
    )


def _state_json(store: Any) -> dict[str, Any]:
    data: dict[str, Any] = store.state().to_json()
    return data
