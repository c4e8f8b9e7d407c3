"""``keepup task``: the task board. Tasks form a tree (``--parent``), move through checked
statuses (pending -> running -> completed | failed | cancelled; failed -> pending to retry),
carry progress, an assignee, log lines and links to a thread and a run.

``keepup task import kilocode PATH`` brings in Kilocode's ``tasks.json`` (see
:mod:`runtime_persistence.session.kilocode`)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from runtime_core import Task, TaskImportReport, TaskLog, TaskStatus, TaskTreeNode, ValidationError
from runtime_persistence.session.tasks import TASK_NS

from keepup._cli.context import runtime_of
from keepup._cli.ids import IdKind, abbreviate, resolver
from keepup._cli.options import JsonOption, YesOption, confirm
from keepup._cli.rendering import (
    Column,
    fields,
    out_console,
    plain,
    print_json,
    stdout_is_terminal,
    table,
    when,
)

__all__ = ["TASK", "app", "import_report_json", "task_json", "task_log_json"]

TASK = IdKind("task", TASK_NS)

app = typer.Typer(
    help="Tasks: a tree of work items with statuses, progress, logs and assignees.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
import_app = typer.Typer(help="Import tasks from another tool.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(import_app, name="import")

TaskArg = Annotated[
    str, typer.Argument(metavar="TASK", help="Task id (or a unique prefix of it).", callback=resolver(TASK))
]
ParentOption = Annotated[
    str | None,
    typer.Option("--parent", metavar="TASK", help="The parent task.", callback=resolver(TASK)),
]
MetaOption = Annotated[
    list[str] | None,
    typer.Option("--meta", metavar="KEY=VALUE", help="Metadata (repeatable; VALUE is JSON or text)."),
]


def task_json(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "title": task.title,
        "description": task.description,
        "status": task.status.value,
        "parent_id": task.parent_id,
        "progress": task.progress,
        "assignee": task.assignee,
        "thread_id": task.thread_id,
        "run_id": task.run_id,
        "metadata": plain(task.metadata),
        "created_at": task.created_at.isoformat(),
        "updated_at": task.updated_at.isoformat(),
    }


def task_log_json(line: TaskLog) -> dict[str, Any]:
    return {"at": line.at.isoformat(), "level": line.level, "message": line.message}


def tree_json(nodes: list[TaskTreeNode]) -> list[dict[str, Any]]:
    return [{"depth": n.depth, "task": task_json(n.task)} for n in nodes]


def import_report_json(report: TaskImportReport) -> dict[str, Any]:
    return {
        "source": report.source,
        "path": report.path,
        "dry_run": report.dry_run,
        "imported": report.imported,
        "skipped": report.skipped,
        "notes": list(report.notes),
        "items": [
            {
                "external_id": i.external_id,
                "outcome": i.outcome,
                "reason": i.reason,
                "task_id": i.task_id,
                "title": i.title,
            }
            for i in report.items
        ],
    }


def _metadata(pairs: list[str] | None) -> dict[str, Any] | None:
    if not pairs:
        return None
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValidationError(f"--meta takes KEY=VALUE, got {pair!r:.60}")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def _progress_text(task: Task) -> str:
    return f"{round(task.progress * 100)}%"


def _print_task(task: Task, json_: bool, verb: str = "") -> None:
    if json_:
        print_json({"task": task_json(task)})
        return
    out_console().print(
        f"{verb + ' ' if verb else ''}task {task.id}: {task.title} ({task.status.value}, "
        f"{_progress_text(task)})",
        markup=False,
    )


def _rows(runtime: Any, tasks: list[Task]) -> None:
    ids = abbreviate(runtime.driver, TASK, [t.id for t in tasks])
    parents = abbreviate(runtime.driver, TASK, [t.parent_id for t in tasks])
    table(
        None,
        [
            Column("task", 100, wrap=False),
            Column("status", 90, wrap=False),
            Column("progress", 60, wrap=False),
            Column("title", 95),
            Column("assignee", 50),
            Column("parent", 30, wrap=False),
            Column("updated", 40),
        ],
        [
            (
                ids[t.id],
                t.status.value,
                _progress_text(t),
                t.title,
                t.assignee,
                None if t.parent_id is None else parents[t.parent_id],
                when(t.updated_at),
            )
            for t in tasks
        ],
    )


@app.command("add")
def add(
    ctx: typer.Context,
    title: Annotated[str, typer.Argument(metavar="TITLE", help="What the task is.")],
    parent: ParentOption = None,
    description: Annotated[str, typer.Option("--description", "-d", metavar="TEXT", help="Details.")] = "",
    assignee: Annotated[str | None, typer.Option("--assignee", metavar="NAME", help="Who does it.")] = None,
    meta: MetaOption = None,
    thread: Annotated[
        str | None, typer.Option("--thread", metavar="THREAD", help="Link the task to this thread id.")
    ] = None,
    run: Annotated[
        str | None, typer.Option("--run", metavar="RUN", help="Link the task to this run id.")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Add a pending task (under --parent, if given)."""
    runtime = runtime_of(ctx)
    task = runtime.tasks.create(
        title,
        parent_id=parent,
        assignee=assignee,
        metadata=_metadata(meta),
        description=description,
        thread_id=thread,
        run_id=run,
    )
    _print_task(task, json_, "added")


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[TaskStatus | None, typer.Option("--status", help="Only tasks in this status.")] = None,
    assignee: Annotated[str | None, typer.Option("--assignee", metavar="NAME", help="Only theirs.")] = None,
    parent: ParentOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000, help="At most this many.")] = 50,
    json_: JsonOption = False,
) -> None:
    """List tasks, newest first (--parent: the children of a task)."""
    runtime = runtime_of(ctx)
    tasks = runtime.tasks.list(status=status, assignee=assignee, parent_id=parent, limit=limit)
    if json_:
        print_json({"tasks": [task_json(t) for t in tasks]})
        return
    if not tasks:
        out_console().print("no tasks")
        return
    _rows(runtime, tasks)


@app.command("tree")
def tree(
    ctx: typer.Context,
    task_id: Annotated[
        str | None,
        typer.Argument(
            metavar="[TASK]", help="The root of the tree (default: every root task).", callback=resolver(TASK)
        ),
    ] = None,
    depth: Annotated[
        int | None, typer.Option("--depth", min=0, help="Show at most this many levels below.")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Show a task and everything below it (or every tree) as a tree."""
    runtime = runtime_of(ctx)
    nodes = runtime.tasks.tree(task_id, max_depth=depth)
    if json_:
        print_json({"tree": tree_json(nodes)})
        return
    if not nodes:
        out_console().print("no tasks")
        return
    if not stdout_is_terminal():
        for n in nodes:
            t = n.task
            sys.stdout.write(
                f"{'  ' * n.depth}{t.id}\t{t.status.value}\t{_progress_text(t)}\t{t.assignee or '-'}\t{t.title}\n"
            )
        sys.stdout.flush()
        return
    from rich.text import Text
    from rich.tree import Tree

    ids = abbreviate(runtime.driver, TASK, [n.task.id for n in nodes])
    marks = {
        TaskStatus.PENDING: ("○", ""),
        TaskStatus.RUNNING: ("▶", "yellow"),
        TaskStatus.BLOCKED: ("■", "magenta"),
        TaskStatus.COMPLETED: ("✔", "green"),
        TaskStatus.FAILED: ("✘", "red"),
        TaskStatus.CANCELLED: ("–", "dim"),
    }

    def label(t: Task) -> Text:
        mark, style = marks[t.status]
        text = Text(f"{mark} ", style=style)
        text.append(t.title, style="bold")
        text.append(f"  {ids[t.id]} {t.status.value} {_progress_text(t)}", style="dim")
        if t.assignee:
            text.append(f"  @{t.assignee}", style="cyan")
        return text

    forest = Tree("tasks", hide_root=True)
    parents: list[Tree] = [forest]
    for n in nodes:
        del parents[n.depth + 1 :]
        parents.append(parents[n.depth].add(label(n.task)))
    out_console().print(forest)


@app.command("show")
def show(
    ctx: typer.Context,
    task_id: TaskArg,
    logs: Annotated[int, typer.Option("--logs", min=0, help="Show the last N log lines.")] = 20,
    json_: JsonOption = False,
) -> None:
    """Show a task, its children and its newest log lines."""
    runtime = runtime_of(ctx)
    task = runtime.tasks.get(task_id)
    children = runtime.tasks.children(task_id)
    lines = runtime.tasks.logs(task_id)[-logs:] if logs else []
    if json_:
        print_json(
            {
                "task": task_json(task),
                "children": [task_json(c) for c in children],
                "logs": [task_log_json(line) for line in lines],
            }
        )
        return
    fields(
        f"Task {task.id}",
        [
            ("title", task.title),
            ("description", task.description or "-"),
            ("status", task.status.value),
            ("progress", _progress_text(task)),
            ("assignee", task.assignee),
            ("parent", task.parent_id),
            ("thread", task.thread_id),
            ("run", task.run_id),
            ("children", len(children)),
            ("metadata", json.dumps(plain(task.metadata)) if task.metadata else "-"),
            ("created", when(task.created_at)),
            ("updated", when(task.updated_at)),
        ],
    )
    if lines:
        table(
            "Log", ["at", "level", "message"], [(when(line.at), line.level, line.message) for line in lines]
        )


def _transition(
    ctx: typer.Context, task_id: str, status: TaskStatus, message: str | None, json_: bool
) -> None:
    runtime = runtime_of(ctx)
    task = runtime.tasks.transition(task_id, status)
    if message:
        runtime.tasks.log(task_id, message, level="error" if status is TaskStatus.FAILED else "info")
    _print_task(task, json_)


MessageOption = Annotated[
    str | None, typer.Option("--message", "-m", metavar="TEXT", help="Also log this line on the task.")
]


@app.command("start")
def start(
    ctx: typer.Context, task_id: TaskArg, message: MessageOption = None, json_: JsonOption = False
) -> None:
    """Mark a task running (from pending, blocked, or failed to retry)."""
    task = runtime_of(ctx).tasks.get(task_id)
    if task.status is TaskStatus.FAILED:  # a retry goes through pending, as the transitions say
        runtime_of(ctx).tasks.transition(task_id, TaskStatus.PENDING)
    _transition(ctx, task_id, TaskStatus.RUNNING, message, json_)


@app.command("done")
def done(
    ctx: typer.Context, task_id: TaskArg, message: MessageOption = None, json_: JsonOption = False
) -> None:
    """Mark a running task completed (its progress becomes 100%)."""
    _transition(ctx, task_id, TaskStatus.COMPLETED, message, json_)


@app.command("fail")
def fail(
    ctx: typer.Context, task_id: TaskArg, message: MessageOption = None, json_: JsonOption = False
) -> None:
    """Mark a running task failed (`task start` retries it)."""
    _transition(ctx, task_id, TaskStatus.FAILED, message, json_)


@app.command("cancel")
def cancel(
    ctx: typer.Context, task_id: TaskArg, message: MessageOption = None, json_: JsonOption = False
) -> None:
    """Cancel a task that is pending, running or blocked (final)."""
    _transition(ctx, task_id, TaskStatus.CANCELLED, message, json_)


def _parse_progress(text: str) -> float:
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ValidationError(
            f"progress is a fraction (0.4) or a percentage (40%), got {text!r:.40}"
        ) from None
    if not 0.0 <= value <= 1.0:
        raise ValidationError(f"progress must lie between 0 and 1 (0% and 100%), got {text!r:.40}")
    return value


@app.command("progress")
def progress(
    ctx: typer.Context,
    task_id: TaskArg,
    value: Annotated[str, typer.Argument(metavar="PROGRESS", help="A fraction (0.4) or a percentage (40%).")],
    json_: JsonOption = False,
) -> None:
    """Set a task's progress."""
    _print_task(runtime_of(ctx).tasks.set_progress(task_id, _parse_progress(value)), json_)


@app.command("log")
def log(
    ctx: typer.Context,
    task_id: TaskArg,
    message: Annotated[str | None, typer.Argument(metavar="[MESSAGE]", help="The line to add.")] = None,
    level: Annotated[str, typer.Option("--level", help="debug, info, warning or error.")] = "info",
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=0, help="Show at most N lines.")] = None,
    json_: JsonOption = False,
) -> None:
    """Add a log line to a task, or (without MESSAGE) show its log, oldest first."""
    runtime = runtime_of(ctx)
    if message is not None:
        line = runtime.tasks.log(task_id, message, level=level)
        if json_:
            print_json({"log": task_log_json(line)})
        else:
            out_console().print(f"logged on task {task_id}", markup=False)
        return
    lines = runtime.tasks.logs(task_id)
    if limit is not None:
        lines = lines[-limit:] if limit else []
    if json_:
        print_json({"task_id": task_id, "logs": [task_log_json(line) for line in lines]})
        return
    if not lines:
        out_console().print("no log lines")
        return
    table(None, ["at", "level", "message"], [(when(line.at), line.level, line.message) for line in lines])


@app.command("assign")
def assign(
    ctx: typer.Context,
    task_id: TaskArg,
    assignee: Annotated[str | None, typer.Argument(metavar="[NAME]", help="Who does it.")] = None,
    unassign: Annotated[bool, typer.Option("--none", help="Take the task away from its assignee.")] = False,
    json_: JsonOption = False,
) -> None:
    """Give a task to NAME, or take it away from its assignee with --none."""
    if (assignee is None) == (not unassign):
        raise typer.BadParameter("give either NAME or --none")
    _print_task(runtime_of(ctx).tasks.assign(task_id, None if unassign else assignee), json_)


@app.command("edit")
def edit(
    ctx: typer.Context,
    task_id: TaskArg,
    title: Annotated[str | None, typer.Option("--title", metavar="TEXT", help="A new title.")] = None,
    description: Annotated[
        str | None, typer.Option("--description", "-d", metavar="TEXT", help="A new description.")
    ] = None,
    meta: MetaOption = None,
    thread: Annotated[
        str | None, typer.Option("--thread", metavar="THREAD", help="Link to this thread id.")
    ] = None,
    run: Annotated[str | None, typer.Option("--run", metavar="RUN", help="Link to this run id.")] = None,
    json_: JsonOption = False,
) -> None:
    """Change a task's title, description or metadata (--meta replaces it whole), or link it to a
    thread or run."""
    runtime = runtime_of(ctx)
    task = runtime.tasks.update(task_id, title=title, description=description, metadata=_metadata(meta))
    if thread is not None:
        task = runtime.tasks.link(task_id, thread_id=thread)
    if run is not None:
        task = runtime.tasks.link(task_id, run_id=run)
    _print_task(task, json_, "updated")


@app.command("move")
def move(
    ctx: typer.Context,
    task_id: TaskArg,
    parent: ParentOption = None,
    root: Annotated[bool, typer.Option("--root", help="Make it a task without a parent.")] = False,
    json_: JsonOption = False,
) -> None:
    """Move a task (with everything below it) under another parent, or to the top with --root.
    Refused when it would put a task below itself."""
    if (parent is None) == (not root):
        raise typer.BadParameter("give either --parent TASK or --root")
    _print_task(runtime_of(ctx).tasks.move(task_id, parent), json_, "moved")


@app.command("delete")
def delete(
    ctx: typer.Context,
    task_id: TaskArg,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Delete every task below it too.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted.")] = False,
    yes: YesOption = False,
    json_: JsonOption = False,
) -> None:
    """Delete a task and its log (with --recursive, its whole subtree). --dry-run lists the tree
    that would go."""
    runtime = runtime_of(ctx)
    plan = runtime.tasks.delete(task_id, recursive=recursive, dry_run=True)
    if not dry_run:
        confirm(f"Delete {len(plan)} task(s) under and including {plan[0].task.title!r}?", yes=yes)
        plan = runtime.tasks.delete(task_id, recursive=recursive)
    if json_:
        print_json({"dry_run": dry_run, "deleted": tree_json(plan)})
        return
    verb = "would delete" if dry_run else "deleted"
    console = out_console()
    console.print(f"{verb} {len(plan)} task(s):", markup=False)
    for n in plan:
        console.print(f"{'  ' * n.depth}{n.task.id}  {n.task.title}", markup=False)


@app.command("migrate")
def migrate(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count the root tasks missing from the index.")
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Index the root tasks of a store written before they were indexed (listing roots or adding
    a task does it by itself on a store opened for writing; this makes it explicit)."""
    count = runtime_of(ctx).tasks.index_roots(dry_run=dry_run)
    if json_:
        print_json({"dry_run": dry_run, "migrated": count})
        return
    verb = "would index" if dry_run else "indexed"
    out_console().print(f"{verb} {count} root task(s)", markup=False)


@import_app.command("kilocode")
def import_kilocode(
    ctx: typer.Context,
    path: Annotated[
        str, typer.Argument(metavar="PATH", help="Kilocode's tasks.json, or the folder holding it.")
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what would be imported.")] = False,
    json_: JsonOption = False,
) -> None:
    """Import Kilocode's tasks (tasks.json; tasks.backup.json beside it when the main file is
    damaged). Importing the same file again changes nothing."""
    from runtime_persistence.session.kilocode import import_kilocode as run_import

    report = run_import(runtime_of(ctx).tasks, path, dry_run=dry_run)
    if json_:
        print_json(import_report_json(report))
        return
    err = sys.stderr
    for note in report.notes:
        err.write(f"keepup: note: {note}\n")
    verb = "would import" if dry_run else "imported"
    out_console().print(
        f"{verb} {report.imported} task(s) from {report.path}; skipped {report.skipped}", markup=False
    )
    skipped = [i for i in report.items if i.outcome == "skipped"]
    if skipped:
        table(
            None,
            ["kilocode id", "title", "why skipped"],
            [(i.external_id, i.title, i.reason) for i in skipped],
        )
