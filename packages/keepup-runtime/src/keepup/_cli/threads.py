"""``keepup thread``: list, show, rename, copy and delete threads."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from runtime_core import ValidationError

from keepup._cli.context import runtime_of
from keepup._cli.ids import THREAD, resolver
from keepup._cli.options import JsonOption, SinceOption, UntilOption, YesOption, confirm
from keepup._cli.rendering import fields, out_console, print_json, when
from keepup._cli.shapes import checkpoint_json, lease_json, thread_json
from keepup._cli.thread_list import MAX_LIMIT, list_threads

__all__ = ["app"]

app = typer.Typer(help="Threads: named lines of checkpoints.", no_args_is_help=True, rich_markup_mode=None)

ThreadArg = Annotated[
    str,
    typer.Argument(metavar="THREAD", help="Thread id (or a unique prefix of it).", callback=resolver(THREAD)),
]


@app.command("list")
def list_(
    ctx: typer.Context,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=MAX_LIMIT, help="At most this many.")
    ] = 50,
    before: Annotated[
        str | None,
        typer.Option(
            "--before",
            metavar="THREAD",
            help="Page: threads older than this one.",
            callback=resolver(THREAD),
        ),
    ] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    json_: JsonOption = False,
) -> None:
    """List threads, newest first (--since/--until: by the time they were last updated)."""
    list_threads(lambda: runtime_of(ctx), limit=limit, before=before, since=since, until=until, json_=json_)


@app.command("show")
def show(ctx: typer.Context, thread_id: ThreadArg, json_: JsonOption = False) -> None:
    """Show a thread, its newest checkpoint and the run holding it (if any)."""
    runtime = runtime_of(ctx)
    thread = runtime.checkpoints.get_thread(thread_id)
    head = runtime.checkpoints.latest(thread_id)
    lease = runtime.leases.current(thread_id)
    if json_:
        print_json(
            {
                "thread": thread_json(thread),
                "head": None if head is None else checkpoint_json(head),
                "lease": lease_json(lease),
            }
        )
        return
    rows: list[tuple[str, object]] = [
        ("id", thread.id),
        ("name", thread.name or "-"),
        ("created", when(thread.created_at)),
        ("updated", when(thread.updated_at)),
        ("forked from", thread.forked_from or "-"),
        ("parent thread", thread.parent_thread_id or "-"),
        ("head", thread.head or "-"),
        ("head step", "-" if head is None else head.step),
        ("head status", "-" if head is None else head.state.get("status", "-")),
        (
            "held by",
            "-" if lease is None else f"{lease.holder} ({lease.owner}) until {when(lease.expires_at)}",
        ),
    ]
    if thread.metadata:
        rows.append(
            ("metadata", json.dumps(thread.metadata, ensure_ascii=False, sort_keys=True, default=str))
        )
    fields(f"Thread {thread.name or thread.id}", rows)


@app.command("rename")
def rename(ctx: typer.Context, thread_id: ThreadArg, name: str, json_: JsonOption = False) -> None:
    """Rename a thread (the name must not be blank)."""
    if not name.strip():
        raise ValidationError("a thread's new name must not be blank")
    thread = runtime_of(ctx).checkpoints.rename_thread(thread_id, name)
    if json_:
        print_json({"thread": thread_json(thread)})
    else:
        out_console().print(f"renamed thread {thread.id} to {thread.name!r}")


@app.command("copy")
def copy(
    ctx: typer.Context,
    thread_id: ThreadArg,
    name: Annotated[str | None, typer.Option("--name", help="Name of the copy.")] = None,
    json_: JsonOption = False,
) -> None:
    """Copy a thread with all its checkpoints into a new, independent thread."""
    thread = runtime_of(ctx).checkpoints.copy_thread(thread_id, name=name)
    if json_:
        print_json({"thread": thread_json(thread)})
    else:
        out_console().print(f"copied thread {thread_id} to {thread.id} ({thread.name!r})")


@app.command("delete")
def delete(
    ctx: typer.Context, thread_id: ThreadArg, yes: YesOption = False, json_: JsonOption = False
) -> None:
    """Delete a thread and its checkpoints (refused while a run holds it)."""
    runtime = runtime_of(ctx)
    thread = runtime.checkpoints.get_thread(thread_id)
    confirm(f"Delete thread {thread.id} ({thread.name or 'unnamed'}) and all its checkpoints?", yes=yes)
    runtime.delete_thread(thread_id)
    if json_:
        print_json({"deleted": thread_id})
    else:
        out_console().print(f"deleted thread {thread_id}")
