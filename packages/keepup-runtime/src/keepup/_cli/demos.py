"""``keepup demo``: run the scripted demo agent and print what to try next."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from keepup._cli.context import runtime_of, store_option_of
from keepup._cli.ids import CHECKPOINT, abbreviate
from keepup._cli.options import JsonOption
from keepup._cli.rendering import Column, err_console, escape, out_console, print_json, progress, table, when
from keepup._cli.shapes import artifact_json, checkpoint_json
from keepup.demo import next_commands, run_demo, tests_passed

__all__ = ["app", "demo"]

app = typer.Typer(rich_markup_mode=None)


@app.command("demo")
def demo(
    ctx: typer.Context,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            metavar="DIR",
            file_okay=False,
            help="An empty folder for the demo's files (default: a new one under the Keepup home).",
        ),
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Run a scripted agent (no model, no network) that edits files, checkpoints, snapshots and
    stores test reports, then fails; print the commands to inspect, restore and fork it."""
    runtime = runtime_of(ctx)
    with progress("running the demo agent", enabled=not json_) as update:
        update(0, None)
        report = run_demo(runtime, workspace)
    # Under `uv run` the venv's bin folder is on PATH only for this process: print what works
    # in the newcomer's own shell afterwards.
    program = ("uv", "run", "keepup") if os.environ.get("UV_RUN_RECURSION_DEPTH") else ("keepup",)
    commands = next_commands(report, store_option_of(ctx), program)
    if json_:
        print_json(
            {
                "thread_id": report.thread_id,
                "run_id": report.run_id,
                "status": report.status.value,
                "error": report.error,
                "workspace": report.workspace,
                "store": report.store_url,
                "last_good": report.last_good,
                "failed": report.failed,
                "checkpoints": [checkpoint_json(c) for c in report.checkpoints],
                "reports": [artifact_json(v) for v in report.reports],
                "next": [{"purpose": c.purpose, "command": c.command} for c in commands],
            }
        )
        return
    console = out_console()
    console.print(
        f"[bold]Keepup demo[/]: a scripted agent (no model, no network) worked in {escape(report.workspace)}\n"
        f"store: {escape(report.store_url)}\n"
        f"thread [bold]{report.thread_id}[/], run {report.run_id}: [red]{report.status.value}[/]"
        + (f" ({escape(report.error)})" if report.error else "")
    )
    marks = {True: "passed", False: "FAILED", None: "-"}
    ids = abbreviate(runtime.driver, CHECKPOINT, [cp.id for cp in report.checkpoints])
    table(
        None,
        [
            Column("checkpoint", 100, wrap=False),
            Column("step", 60, wrap=False),
            Column("event", 50),
            Column("status", 70),
            Column("files", 10, wrap=False),
            Column("tests", 85, wrap=False),
            Column("created", 20),
            Column("", 95, wrap=False),
        ],
        [
            (
                ids[cp.id],
                cp.step,
                cp.metadata.get("event", "-"),
                cp.state.get("status", "-"),
                "-" if cp.workspace is None else cp.workspace.commit[:10],
                marks[tests_passed(cp)],
                when(cp.created_at),
                "← last good" if cp.id == report.last_good else "← failed" if cp.id == report.failed else "",
            )
            for cp in report.checkpoints
        ],
    )
    console.print(
        f"{len(report.reports)} test reports stored as versions of reports/tests.json in scope {report.thread_id}\n"
    )
    console.print("[bold]Next, try:[/]")
    for c in commands:
        console.print(f"  [dim]# {escape(c.purpose)}[/]")
        console.print(f"  {escape(c.command)}", soft_wrap=True)
    err_console().print("(destructive commands ask for confirmation on a terminal; add --yes to skip it)")
