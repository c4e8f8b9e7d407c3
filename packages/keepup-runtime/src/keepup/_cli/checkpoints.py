"""``keepup checkpoint``: list, show, diff, restore, replay, fork, prune, delete, export, import."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer
from runtime_core import Checkpoint, Driver, FileChange, NotFoundError, ValidationError
from runtime_persistence import diff_states
from runtime_persistence.session.transfer import SECTION_NAMES, export_all, import_all
from runtime_persistence.storage.private import create_private_file

from keepup._cli.context import runtime_of
from keepup._cli.ids import CHECKPOINT, THREAD, abbreviate, resolver
from keepup._cli.options import (
    JsonOption,
    SinceOption,
    UntilOption,
    YesOption,
    confirm,
    parse_duration,
    within,
)
from keepup._cli.rendering import (
    Column,
    escape,
    fields,
    out_console,
    print_json,
    progress,
    short,
    table,
    when,
)
from keepup._cli.shapes import (
    checkpoint_json,
    diff_entry_json,
    file_change_json,
    prune_json,
    restore_report_json,
    thread_json,
)
from keepup._cli.values import decoders, render_values
from keepup.runtime import Runtime

__all__ = ["app"]

app = typer.Typer(
    help="Checkpoints: the saved points of a thread.", no_args_is_help=True, rich_markup_mode=None
)

CheckpointArg = Annotated[
    str,
    typer.Argument(
        metavar="CHECKPOINT", help="Checkpoint id (or a unique prefix of it).", callback=resolver(CHECKPOINT)
    ),
]
ThreadArg = Annotated[
    str,
    typer.Argument(metavar="THREAD", help="Thread id (or a unique prefix of it).", callback=resolver(THREAD)),
]


def _event(cp: Checkpoint) -> str:
    event = cp.metadata.get("event")
    return str(event) if event is not None else "-"


def _rows(driver: Driver, checkpoints: list[Checkpoint]) -> list[tuple[Any, ...]]:
    ids = abbreviate(driver, CHECKPOINT, [cp.id for cp in checkpoints])
    return [
        (
            ids[cp.id],
            cp.step,
            cp.source.value,
            _event(cp),
            cp.state.get("status", "-"),
            cp.label or "-",
            "-" if cp.workspace is None else cp.workspace.commit[:10],
            when(cp.created_at),
        )
        for cp in checkpoints
    ]


_COLUMNS = [
    Column("checkpoint", 100, wrap=False),
    Column("step", 70, wrap=False),
    Column("source", 20),
    Column("event", 60),
    Column("status", 80),
    Column("label", 50),
    Column("files", 10, wrap=False),
    Column("created", 40),
]


@app.command("list")
def list_(
    ctx: typer.Context,
    thread_id: ThreadArg,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000, help="At most this many.")] = 50,
    before: Annotated[
        str | None,
        typer.Option(
            "--before",
            metavar="CHECKPOINT",
            help="Page: checkpoints older than this.",
            callback=resolver(CHECKPOINT),
        ),
    ] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    json_: JsonOption = False,
) -> None:
    """List a thread's checkpoints, newest first (--since/--until: by creation time)."""
    runtime = runtime_of(ctx)
    thread = runtime.checkpoints.get_thread(thread_id)
    window = since is not None or until is not None
    checkpoints = runtime.checkpoints.list(thread_id, limit=10_000 if window else limit, before=before)
    if window:
        checkpoints = within(checkpoints, lambda c: c.created_at, since, until)[:limit]
    if json_:
        print_json({"thread": thread_json(thread), "checkpoints": [checkpoint_json(c) for c in checkpoints]})
        return
    table(f"Thread {thread.name or thread.id} ({thread.id})", _COLUMNS, _rows(runtime.driver, checkpoints))


@app.command("show")
def show(
    ctx: typer.Context,
    checkpoint_id: CheckpointArg,
    state: Annotated[bool, typer.Option("--state/--no-state", help="Include the state channels.")] = True,
    json_: JsonOption = False,
) -> None:
    """Show one checkpoint: where it sits, its workspace snapshot and artifacts, and its state."""
    cp = runtime_of(ctx).checkpoints.get(checkpoint_id)
    data = checkpoint_json(cp, state=state)
    if json_:
        print_json(data)
        return
    rows: list[tuple[str, Any]] = [
        ("id", cp.id),
        ("thread", cp.thread_id),
        ("parent", cp.parent_id or "-"),
        ("step", cp.step),
        ("source", cp.source.value),
        ("event", _event(cp)),
        ("status", cp.state.get("status", "-")),
        ("label", cp.label or "-"),
        ("created", when(cp.created_at)),
        ("workspace", "-" if cp.workspace is None else f"{cp.workspace.workspace} @ {cp.workspace.commit}"),
        ("artifacts", ", ".join(f"{a.scope}/{a.key}@{a.version}" for a in cp.artifacts) or "-"),
        ("pending writes", len(cp.pending_writes)),
    ]
    fields(f"Checkpoint {cp.id}", rows)
    if state:
        console = out_console()
        messages = cp.state.get("messages")
        if isinstance(messages, list) and messages:
            console.print("[bold]conversation[/]")
            for m in messages:
                if isinstance(m, dict):
                    who = m.get("name") or m.get("role", "?")
                    console.print(
                        f"  [cyan]{escape(str(who))}[/]: {escape(_clip(str(m.get('content', ''))))}"
                    )
        others = {k: v for k, v in data["state"].items() if k != "messages"}
        if others:
            from rich.json import JSON

            console.print("[bold]other channels[/]")
            console.print(JSON(json.dumps(others, ensure_ascii=False, default=str)))


def _clip(text: str, width: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command("diff")
def diff(
    ctx: typer.Context,
    a: Annotated[
        str, typer.Argument(metavar="A", help="The older checkpoint id.", callback=resolver(CHECKPOINT))
    ],
    b: Annotated[
        str, typer.Argument(metavar="B", help="The newer checkpoint id.", callback=resolver(CHECKPOINT))
    ],
    patch: Annotated[bool, typer.Option("--patch", help="Include unified diffs of changed files.")] = False,
    json_: JsonOption = False,
) -> None:
    """What changed from checkpoint A to checkpoint B: state paths, and the workspace files when
    both have a snapshot of the same workspace."""
    runtime = runtime_of(ctx)
    old, new = runtime.checkpoints.get(a), runtime.checkpoints.get(b)
    if decoders():  # an installed adapter can read its own values: compare what they say
        entries = diff_states(render_values(old.state), render_values(new.state))
    else:
        entries = runtime.checkpoints.diff(a, b)
    files: list[FileChange] | None = None
    missing: list[str] = []
    if (
        old.workspace is not None
        and new.workspace is not None
        and old.workspace.workspace == new.workspace.workspace
    ):
        files, missing = _file_diff(
            runtime, old.workspace.workspace, old.workspace.commit, new.workspace.commit, patch
        )
    if json_:
        print_json(
            {
                "a": a,
                "b": b,
                "changes": [diff_entry_json(e) for e in entries],
                "files": None if files is None else [file_change_json(f) for f in files],
                "missing_snapshots": missing,
            }
        )
        return
    console = out_console()
    if entries:
        table(
            f"State changes {short(a)} → {short(b)}",
            ["path", "change", "old", "new"],
            [(e.path, e.kind.value, _clip(_text(e.old), 60), _clip(_text(e.new), 60)) for e in entries],
        )
    else:
        console.print("no state changes")
    if missing:
        console.print(
            f"files: not compared: snapshot {', '.join(short(c) for c in missing)} is neither in this home "
            "nor in the store (export it with its files: `keepup checkpoint export`)",
            markup=False,
        )
    elif files is None:
        console.print("files: not compared (the two checkpoints have no snapshots of one workspace)")
    elif not files:
        console.print("files: unchanged")
    else:
        table("Files", ["path", "change"], [(f.path, f.status.value) for f in files])
        if patch:
            for f in files:
                if f.patch:
                    console.print(escape(f.patch), markup=False)


def _file_diff(
    runtime: Runtime, workspace: str, old: str, new: str, patch: bool
) -> tuple[list[FileChange] | None, list[str]]:
    """The files that changed between two snapshots, or None and the snapshots that are neither
    in this home nor in the store (the state diff is shown either way)."""
    try:
        snaps = runtime.snapshots(workspace)
    except ValidationError:  # the workspace folder is not on this machine
        snaps = None
    missing: list[str] = []
    for commit in (old, new):
        try:
            if snaps is None:
                raise NotFoundError(commit)
            snaps.resolve(commit)  # fetched from the store when this home lacks it
        except NotFoundError:
            missing.append(commit)
    if missing or snaps is None:
        return None, missing
    return snaps.diff(old, new, content=patch), []


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


@app.command("restore")
def restore(
    ctx: typer.Context,
    checkpoint_id: CheckpointArg,
    workspace: Annotated[
        bool, typer.Option("--workspace", "-w", help="Restore the workspace files of its snapshot too.")
    ] = False,
    yes: YesOption = False,
    json_: JsonOption = False,
) -> None:
    """Make a checkpoint the thread's head again (a new checkpoint; nothing is deleted), and with
    --workspace its files too. Refused while a run holds the thread."""
    runtime = runtime_of(ctx)
    cp = runtime.checkpoints.get(checkpoint_id)
    if workspace and cp.workspace is None:
        raise ValidationError(f"checkpoint {cp.id} has no workspace snapshot; restore it without --workspace")
    what = f" and the files of {cp.workspace.workspace}" if workspace and cp.workspace else ""
    runtime.leases.check_free(cp.thread_id, "restore")
    confirm(f"Restore thread {cp.thread_id} to checkpoint {cp.id} (step {cp.step}){what}?", yes=yes)
    new, report = runtime.restore(checkpoint_id, workspace=workspace)
    if json_:
        print_json(
            {
                "restored_from": cp.id,
                "checkpoint": checkpoint_json(new),
                "workspace": None if report is None else restore_report_json(report),
            }
        )
        return
    console = out_console()
    console.print(f"restored thread {new.thread_id} to checkpoint {cp.id}: new head {new.id}")
    if report is not None:
        console.print(
            f"files: {len(report.changed)} changed, {len(report.created)} brought back, "
            f"{len(report.removed)} removed"
            + (
                f"; the files as they were are kept in snapshot {report.rescue_commit}"
                if report.rescue_commit
                else ""
            )
        )
        for path in report.skipped:
            console.print(f"  left alone (could not be brought back): {escape(path)}")


@app.command("replay")
def replay(
    ctx: typer.Context,
    start: Annotated[
        str, typer.Argument(metavar="START", help="Checkpoint to start from.", callback=resolver(CHECKPOINT))
    ],
    end: Annotated[
        str | None,
        typer.Argument(
            metavar="END",
            help="Checkpoint to stop at (default: the thread's head).",
            callback=resolver(CHECKPOINT),
        ),
    ] = None,
    reverse: Annotated[bool, typer.Option("--reverse", help="From END back to START.")] = False,
    json_: JsonOption = False,
) -> None:
    """Walk the checkpoints from START to END along their lineage, in order."""
    runtime = runtime_of(ctx)
    checkpoints = list(runtime.checkpoints.replay(start, end, reverse=reverse))
    if json_:
        print_json({"checkpoints": [checkpoint_json(c) for c in checkpoints]})
        return
    table(
        f"Replay {short(start)} → {short(end) if end else 'head'}",
        _COLUMNS,
        _rows(runtime.driver, checkpoints),
    )


@app.command("fork")
def fork(
    ctx: typer.Context,
    checkpoint_id: CheckpointArg,
    name: Annotated[
        str | None,
        typer.Option("--name", help='Name of the new thread (default: "fork of THREAD at step N").'),
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Start a new thread from a checkpoint (the original thread is untouched)."""
    checkpoints = runtime_of(ctx).checkpoints
    if name is None or not name.strip():
        cp = checkpoints.get(checkpoint_id)
        source = checkpoints.get_thread(cp.thread_id)
        name = f"fork of {source.name or source.id} at step {cp.step}"
    thread = checkpoints.fork(checkpoint_id, name=name)
    if json_:
        print_json({"thread": thread_json(thread)})
        return
    out_console().print(
        f"forked checkpoint {checkpoint_id} into thread {thread.id}"
        + (f" ({thread.name!r})" if thread.name else "")
        + f"; its head is {thread.head}"
    )


@app.command("prune")
def prune(
    ctx: typer.Context,
    thread_id: ThreadArg,
    keep_last: Annotated[
        int | None, typer.Option("--keep-last", min=1, help="Keep the newest N checkpoints.")
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than", metavar="AGE", help="Only remove checkpoints older than AGE (30d, 12h)."
        ),
    ] = None,
    keep_labeled: Annotated[
        bool, typer.Option("--keep-labeled/--drop-labeled", help="Keep labeled checkpoints (default).")
    ] = True,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be removed.")] = False,
    yes: YesOption = False,
    json_: JsonOption = False,
) -> None:
    """Remove old checkpoints of a thread. Never the head, a pinned or labeled one, or one a fork
    starts from; refused while a run holds the thread."""
    if keep_last is None and older_than is None:
        raise ValidationError("say what to remove: --keep-last N and/or --older-than AGE")
    age = None if older_than is None else parse_duration(older_than)
    runtime = runtime_of(ctx)
    if not dry_run:
        plan = runtime.checkpoints.prune(
            thread_id, keep_last=keep_last, older_than=age, keep_labeled=keep_labeled, dry_run=True
        )
        if plan.removed:
            confirm(f"Remove {len(plan.removed)} checkpoints of thread {thread_id}?", yes=yes)
    with progress("pruning", enabled=not json_) as update:
        update(0, None)
        report = runtime.prune(
            thread_id, keep_last=keep_last, older_than=age, keep_labeled=keep_labeled, dry_run=dry_run
        )
    if json_:
        print_json(prune_json(report))
        return
    verb = "would remove" if report.dry_run else "removed"
    out_console().print(
        f"{verb} {_count(len(report.removed), 'checkpoint')} of thread {thread_id}; kept {len(report.kept)}"
    )
    if report.protected:
        ids = abbreviate(runtime.driver, CHECKPOINT, report.protected)
        table(
            "Kept on purpose",
            [Column("checkpoint", 100, wrap=False), "why"],
            [(ids[cp_id], why) for cp_id, why in sorted(report.protected.items())],
        )


@app.command("delete")
def delete(
    ctx: typer.Context, checkpoint_id: CheckpointArg, yes: YesOption = False, json_: JsonOption = False
) -> None:
    """Delete one checkpoint (not the head, a pinned one, or one a fork starts from); refused
    while a run holds the thread."""
    runtime = runtime_of(ctx)
    cp = runtime.checkpoints.get(checkpoint_id)
    runtime.leases.check_free(cp.thread_id, "delete a checkpoint of")
    confirm(f"Delete checkpoint {cp.id} (step {cp.step}) of thread {cp.thread_id}?", yes=yes)
    runtime.delete_checkpoint(checkpoint_id)
    if json_:
        print_json({"deleted": cp.id, "thread_id": cp.thread_id})
        return
    out_console().print(f"deleted checkpoint {cp.id} of thread {cp.thread_id}")


@app.command("export")
def export(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE", help="Where to write the export (- for stdout).")],
    threads: Annotated[
        list[str] | None,
        typer.Option(
            "--thread",
            "-t",
            metavar="THREAD",
            help="Export this thread (repeatable; default: all).",
            callback=resolver(THREAD),
        ),
    ] = None,
    with_: Annotated[
        list[str] | None,
        typer.Option(
            "--with",
            metavar="WHAT",
            help=(
                "Also export these records: sessions, tasks, events (comma-separated or repeated); "
                "with --thread, those linked to the threads."
            ),
        ),
    ] = None,
    yes: YesOption = False,
    json_: JsonOption = False,
) -> None:
    """Write threads with all their checkpoints and the data they need (blobs, the artifact
    versions they name, the files of their workspace snapshots) to one portable, checksummed file
    (import it into any store with `keepup checkpoint import`); with --with, also sessions (their
    message logs, keys and runs), tasks (with their ancestors and logs) and events."""
    runtime = runtime_of(ctx)
    include = _sections(with_)
    if file == "-":
        if json_:
            raise ValidationError("--json prints the report on stdout; export to a FILE, not -")
        report = export_all(
            runtime.checkpoints,
            sys.stdout.buffer,
            include=include,
            thread_ids=threads,
            snapshots=runtime.snapshots,
        )
        sys.stdout.buffer.flush()
        sys.stderr.write(
            f"exported {_count(report.threads, 'thread')}, {_count(report.checkpoints, 'checkpoint')}\n"
        )
        return
    path = Path(file)
    if path.exists():
        confirm(f"Overwrite {path}?", yes=yes)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    create_private_file(partial)  # 0600: an export holds whole conversations and files
    try:
        with progress("exporting checkpoints", enabled=not json_) as update:
            report = export_all(
                runtime.checkpoints,
                partial,
                include=include,
                thread_ids=threads,
                progress=update,
                snapshots=runtime.snapshots,
            )
        partial.replace(path)  # a failed export never leaves a truncated FILE behind
        size = path.stat().st_size  # the file's size, as import reports it
    finally:
        partial.unlink(missing_ok=True)
    if json_:
        print_json(
            {
                "path": str(path),
                "threads": report.threads,
                "checkpoints": report.checkpoints,
                "blobs": report.blobs,
                "bytes": size,
                "snapshot_packs": report.snapshot_packs,
                "artifacts": report.artifacts,
                "missing_snapshots": list(report.missing_snapshots),
                "records": report.records,
            }
        )
        return
    out_console().print(
        f"exported {_count(report.threads, 'thread')} ({_count(report.checkpoints, 'checkpoint')}, "
        f"{_count(report.blobs, 'blob')}, {_count(report.artifacts, 'artifact')}, "
        f"{_count(report.snapshot_packs, 'snapshot pack')}, {_count(size, 'byte')}) to {path}",
        markup=False,
    )
    if include:
        out_console().print(f"with {_records(report.records)}", markup=False)
    if report.missing_snapshots:
        out_console().print(
            f"not exported (no longer in this home or the store): the files of snapshot "
            f"{', '.join(short(c) for c in report.missing_snapshots)}",
            markup=False,
        )


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE", help="An export file (- for stdin).")],
    json_: JsonOption = False,
) -> None:
    """Read an export into the store, keeping every id, with the sessions, tasks and events it
    carries. A thread (or session, task, run, event) that already exists is refused (exit 5); a
    damaged file is refused (exit 6); either way before any record is written."""
    runtime = runtime_of(ctx)
    source: Path | BinaryIO = sys.stdin.buffer if file == "-" else Path(file)
    with progress("importing checkpoints", enabled=not json_) as update:
        report = import_all(runtime.checkpoints, source, progress=update)
    # The file's size, as export reports it (the library counts the bytes it decoded).
    size = Path(file).stat().st_size if file != "-" else report.bytes
    if json_:
        print_json(
            {
                "path": file,
                "threads": report.threads,
                "checkpoints": report.checkpoints,
                "blobs": report.blobs,
                "bytes": size,
                "snapshot_packs": report.snapshot_packs,
                "artifacts": report.artifacts,
                "records": report.records,
            }
        )
        return
    out_console().print(
        f"imported {_count(report.threads, 'thread')} ({_count(report.checkpoints, 'checkpoint')}, "
        f"{_count(report.blobs, 'blob')}, {_count(report.artifacts, 'artifact')}, "
        f"{_count(report.snapshot_packs, 'snapshot pack')}, {_count(size, 'byte')}) from {file}",
        markup=False,
    )
    if report.records:
        out_console().print(f"with {_records(report.records)}", markup=False)


def _sections(values: list[str] | None) -> list[str]:
    """The section names of ``--with`` (comma-separated or repeated); ValidationError for others."""
    names = [name.strip() for value in values or [] for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in SECTION_NAMES]
    if unknown:
        raise ValidationError(f"--with takes {', '.join(SECTION_NAMES)}; got {', '.join(unknown)}")
    return list(dict.fromkeys(names))


_RECORD_NOUNS = {
    "session": "session",
    "messages": "message-log chunk",
    "run": "run",
    "task": "task",
    "task_log": "task log line",
    "event": "event",
}


def _records(records: dict[str, int]) -> str:
    """``2 sessions, 1 run, …`` for the records of an export's sections."""
    parts = [_count(records.get(kind, 0), noun) for kind, noun in _RECORD_NOUNS.items()]
    return ", ".join(parts)


def _count(n: int, noun: str) -> str:
    """``1 thread``, ``2 threads``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
