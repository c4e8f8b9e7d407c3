"""``keepup snapshot``: the shadow-git snapshots of a workspace (list, diff, restore)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from runtime_core import UnsafeWorkspaceError

from keepup._cli.context import runtime_of
from keepup._cli.ids import Short
from keepup._cli.options import JsonOption, SinceOption, UntilOption, YesOption, confirm, within
from keepup._cli.rendering import Column, escape, out_console, print_json, progress, table, when
from keepup._cli.shapes import file_change_json, restore_report_json, snapshot_json

__all__ = ["app"]

app = typer.Typer(
    help="Workspace snapshots (shadow git, kept outside the workspace).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _lower(value: str | None) -> str | None:
    """Commit ids in any case (git names them in lower case)."""
    return None if value is None else value.strip().lower()


WorkspaceArg = Annotated[
    Path, typer.Argument(metavar="WORKSPACE", help="The workspace folder.", file_okay=False)
]


@app.command("list")
def list_(
    ctx: typer.Context,
    workspace: WorkspaceArg,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="At most this many.")] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    json_: JsonOption = False,
) -> None:
    """List a workspace's snapshots, newest first (--since/--until: by creation time)."""
    try:
        snaps = runtime_of(ctx).snapshots(workspace)
    except UnsafeWorkspaceError:
        # Keepup never snapshots a home or system folder, so it has none to list.
        where = str(workspace.expanduser().resolve())
        if json_:
            print_json({"workspace": where, "snapshots": []})
        else:
            out_console().print(
                f"no snapshots of {where}: Keepup never snapshots a home or system folder", markup=False
            )
        return
    window = since is not None or until is not None
    found = snaps.list(None if window else limit)
    if window:
        found = within(found, lambda s: s.created_at, since, until)[:limit]
    if json_:
        print_json({"workspace": snaps.workspace, "snapshots": [snapshot_json(s) for s in found]})
        return
    if not found:
        out_console().print(f"no snapshots of {snaps.workspace} yet", markup=False)
        return
    table(
        f"Snapshots of {snaps.workspace}",
        [
            Column("commit", 100, wrap=False),
            Column("created", 80),
            Column("files", 60, wrap=False),
            Column("message", 40),
        ],
        [(Short(s.commit[:12], s.commit), when(s.created_at), s.files, s.message) for s in found],
    )


@app.command("diff")
def diff(
    ctx: typer.Context,
    workspace: WorkspaceArg,
    a: Annotated[
        str, typer.Argument(metavar="A", help="A snapshot commit (or a unique prefix).", callback=_lower)
    ],
    b: Annotated[
        str | None,
        typer.Argument(
            metavar="B", help="Another snapshot (default: the files as they are now).", callback=_lower
        ),
    ] = None,
    patch: Annotated[bool, typer.Option("--patch", help="Include unified diffs.")] = False,
    json_: JsonOption = False,
) -> None:
    """Files that differ from snapshot A to snapshot B (or to the files as they are now)."""
    snaps = runtime_of(ctx).snapshots(workspace)
    with progress("comparing", enabled=not json_) as update:
        update(0, None)
        changes = snaps.diff(a, b, content=patch)
    if json_:
        print_json(
            {"workspace": snaps.workspace, "a": a, "b": b, "files": [file_change_json(c) for c in changes]}
        )
        return
    console = out_console()
    if not changes:
        console.print("no differences")
        return
    table(
        f"{a[:10]} → {b[:10] if b else 'working tree'}",
        ["path", "change"],
        [(c.path if c.old_path is None else f"{c.old_path} → {c.path}", c.status.value) for c in changes],
    )
    if patch:
        for c in changes:
            if c.patch:
                console.print(escape(c.patch), markup=False)


@app.command("restore")
def restore(
    ctx: typer.Context,
    workspace: WorkspaceArg,
    commit: Annotated[
        str, typer.Argument(metavar="COMMIT", help="The snapshot to bring back.", callback=_lower)
    ],
    paths: Annotated[
        list[str] | None, typer.Option("--path", "-p", help="Restore only this path (repeatable).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would change.")] = False,
    yes: YesOption = False,
    json_: JsonOption = False,
) -> None:
    """Bring the workspace (or some paths) back to a snapshot. A rescue snapshot is taken first,
    so what the restore overwrites can itself be brought back."""
    snaps = runtime_of(ctx).snapshots(workspace)
    if not dry_run:
        plan = snaps.restore(commit, paths or None, dry_run=True)
        touched = len(plan.changed) + len(plan.created) + len(plan.removed)
        if touched:
            confirm(
                f"Restore {touched} file(s) of {snaps.workspace} to snapshot {plan.commit[:10]}?", yes=yes
            )
    with progress("restoring", enabled=not json_) as update:
        update(0, None)
        report = snaps.restore(commit, paths or None, dry_run=dry_run)
    if json_:
        print_json({"workspace": snaps.workspace, "report": restore_report_json(report)})
        return
    console = out_console()
    verb = "would change" if report.dry_run else "changed"
    console.print(
        f"{verb} {len(report.changed)}, {'would bring back' if report.dry_run else 'brought back'} "
        f"{len(report.created)}, {'would remove' if report.dry_run else 'removed'} {len(report.removed)} file(s)"
    )
    for label, items in (
        ("changed", report.changed),
        ("created", report.created),
        ("removed", report.removed),
    ):
        for path in items:
            console.print(f"  {label}: {path}", markup=False)
    for path in report.skipped:
        console.print(f"  left alone (could not be brought back): {path}", markup=False)
    if report.rescue_commit:
        console.print(f"the files as they were are kept in snapshot {report.rescue_commit}")
