"""``keepup run``: the runs of the durable runner (list, show, cancel, resume).

``resume`` needs the agent that made the run. The demo's agent is built in; other agents are
found by name in the ``keepup.agents`` entry-point group (``name = "module:factory"``, where
``factory()`` returns the agent)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Annotated, Any

import typer
from runtime_core import NotFoundError, RunStatus, ValidationError
from runtime_execution import Agent, run_id_of_holder

from keepup._cli.context import runtime_of
from keepup._cli.ids import CHECKPOINT, RUN, THREAD, abbreviate, resolver
from keepup._cli.options import JsonOption, SinceOption, UntilOption, YesOption, confirm, within
from keepup._cli.rendering import Column, fields, out_console, print_json, table, when
from keepup._cli.shapes import checkpoint_json, lease_json, run_json
from keepup.demo import DEMO_AGENT_NAME, DEMO_FIXED_AGENT_NAME, demo_agent, demo_fixed_agent, demo_tools

__all__ = ["AGENT_ENTRY_POINTS", "app"]

AGENT_ENTRY_POINTS = "keepup.agents"

INTERRUPTED_KEY = "interrupted_at"
"""Run metadata: when Ctrl-C stopped the run (ISO 8601); `run list` shows such runs interrupted."""

_DEMO_AGENTS: dict[str, Callable[[], Agent]] = {
    DEMO_AGENT_NAME: demo_agent,
    DEMO_FIXED_AGENT_NAME: demo_fixed_agent,
}
"""The demo's own agents, built in; others come from the ``keepup.agents`` entry-point group."""

app = typer.Typer(help="Runs of agents on the durable runner.", no_args_is_help=True, rich_markup_mode=None)

RunArg = Annotated[
    str, typer.Argument(metavar="RUN", help="Run id (or a unique prefix of it).", callback=resolver(RUN))
]


@app.command("list")
def list_(
    ctx: typer.Context,
    thread: Annotated[
        str | None,
        typer.Option(
            "--thread", metavar="THREAD", help="Only runs of this thread.", callback=resolver(THREAD)
        ),
    ] = None,
    status: Annotated[RunStatus | None, typer.Option("--status", help="Only runs in this status.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000, help="At most this many.")] = 50,
    since: SinceOption = None,
    until: UntilOption = None,
    json_: JsonOption = False,
) -> None:
    """List runs, newest first (--since/--until: by start time)."""
    runtime = runtime_of(ctx)
    window = since is not None or until is not None
    runs = runtime.runs.list(thread_id=thread, status=status, limit=10_000 if window else limit)
    if window:
        runs = within(runs, lambda r: r.started_at, since, until)[:limit]
    if json_:
        print_json({"runs": [run_json(r) for r in runs]})
        return
    if not runs:
        out_console().print("no runs")
        return
    rids = abbreviate(runtime.driver, RUN, [r.id for r in runs])
    tids = abbreviate(runtime.driver, THREAD, [r.thread_id for r in runs])
    table(
        None,
        [
            Column("run", 100, wrap=False),
            Column("thread", 40, wrap=False),
            Column("agent", 50),
            Column("status", 90),
            Column("steps", 45, wrap=False),
            Column("started", 60),
            Column("ended", 30),
            Column("error", 70),
        ],
        [
            (
                rids[r.id],
                tids[r.thread_id],
                r.agent,
                r.status.value
                + (" (cancel requested)" if r.cancel_requested and not r.status.finished else "")
                + (" (interrupted)" if INTERRUPTED_KEY in r.metadata and not r.status.finished else ""),
                r.steps,
                when(r.started_at),
                when(r.ended_at),
                "-" if r.error is None else r.error.message,
            )
            for r in runs
        ],
    )


@app.command("show")
def show(ctx: typer.Context, run_id: RunArg, json_: JsonOption = False) -> None:
    """Show a run, the lease it holds (if it is running) and its thread's newest checkpoint."""
    runtime = runtime_of(ctx)
    run = runtime.runs.get(run_id)
    lease = runtime.leases.current(run.thread_id)
    if lease is not None and run_id_of_holder(lease.holder) != run.id:
        lease = None  # another run holds the thread
    head = runtime.checkpoints.latest(run.thread_id)
    if json_:
        print_json(
            {
                "run": run_json(run),
                "lease": lease_json(lease),
                "head": None if head is None else checkpoint_json(head),
            }
        )
        return
    fields(
        f"Run {run.id}",
        [
            ("thread", run.thread_id),
            ("agent", run.agent),
            ("status", run.status.value),
            ("steps", run.steps),
            ("started", when(run.started_at)),
            ("ended", when(run.ended_at)),
            ("error", "-" if run.error is None else f"{run.error.message} ({run.error.code})"),
            ("recoverable", "-" if run.error is None else run.error.recoverable),
            ("cancel requested", run.cancel_requested),
            ("lease", "-" if lease is None else f"{lease.owner} until {when(lease.expires_at)}"),
            ("thread head", "-" if head is None else f"{head.id} (step {head.step})"),
        ],
    )


@app.command("cancel")
def cancel(ctx: typer.Context, run_id: RunArg, yes: YesOption = False, json_: JsonOption = False) -> None:
    """Ask a run to stop: a running run stops at its next step; a run whose runner crashed is
    cancelled at once. A finished run is left as it is."""
    runtime = runtime_of(ctx)
    run = runtime.runs.get(run_id)
    if not run.status.finished:
        confirm(f"Cancel run {run.id} ({run.agent}, {run.status.value}, step {run.steps})?", yes=yes)
    run = runtime.runner().cancel(run_id)
    if json_:
        print_json({"run": run_json(run)})
        return
    if run.status.finished:
        out_console().print(f"run {run.id} is {run.status.value}")
    else:
        out_console().print(f"asked run {run.id} to stop; it stops at its next step")


@app.command("start")
def start(
    ctx: typer.Context,
    agent_name: Annotated[
        str,
        typer.Option(
            "--agent",
            metavar="NAME",
            help=f"The agent: {DEMO_FIXED_AGENT_NAME}, or one registered in keepup.agents.",
        ),
    ],
    thread: Annotated[
        str | None,
        typer.Option("--thread", metavar="THREAD", help="Continue this thread.", callback=resolver(THREAD)),
    ] = None,
    from_: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="CHECKPOINT",
            help="Start a new thread from this checkpoint (its files are brought back first).",
            callback=resolver(CHECKPOINT),
        ),
    ] = None,
    input_: Annotated[
        str | None, typer.Option("--input", metavar="TEXT", help="A user message to start with.")
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", min=1, help="Stop after this many steps.")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Run an agent on a thread (--thread) or on a new thread forked from a checkpoint (--from),
    until it finishes; e.g. again after a restore or a fork. Ctrl-C stops it and prints the
    command that resumes it."""
    if (thread is None) == (from_ is None):
        raise typer.BadParameter("give exactly one of --thread THREAD or --from CHECKPOINT")
    runtime = runtime_of(ctx)
    agent = _agent(agent_name)
    if from_ is not None:
        cp = runtime.checkpoints.get(from_)
        origin = runtime.checkpoints.get_thread(cp.thread_id)
        runtime.leases.check_free(cp.thread_id, "start a run from")
        thread_id = runtime.checkpoints.fork(
            from_, name=f"fork of {origin.name or origin.id} at step {cp.step}"
        ).id
        if cp.workspace is not None:  # the files as they were at the checkpoint
            runtime.snapshots(cp.workspace.workspace).restore(cp.workspace.commit)
    else:
        assert thread is not None
        thread_id = thread
    head = runtime.checkpoints.latest(thread_id)
    workspace = None if head is None or head.workspace is None else head.workspace.workspace
    tools = demo_tools(runtime, thread_id, workspace) if agent.name in _DEMO_AGENTS and workspace else None
    runner = runtime.runner(tools, workspace, agents=[agent])
    try:
        final = runner.start(agent, thread_id, input=input_, max_steps=max_steps)
    except KeyboardInterrupt:
        _interrupted(ctx, thread_id)
        raise
    _report(final, json_, started_on=thread_id)


def _interrupted(ctx: typer.Context, thread_id: str) -> None:
    """After Ctrl-C: name the run that stopped and the exact command that resumes it."""
    try:
        runs = runtime_of(ctx).runs.list(thread_id=thread_id, limit=1)
    except Exception:
        runs = []
    if runs and not runs[0].status.finished:
        try:  # mark it, so that `run list` shows it interrupted until it is resumed
            from runtime_core import utc_now

            run = runs[0]
            marked = {**run.metadata, INTERRUPTED_KEY: utc_now().isoformat()}
            runtime_of(ctx).runs.update(dataclasses.replace(run, metadata=marked))
        except Exception:  # noqa: S110 - best effort while exiting on Ctrl-C
            pass
        sys.stderr.write(
            f"keepup: interrupted run {runs[0].id} on thread {thread_id}; "
            f"resume it with: keepup run resume {runs[0].id}\n"
        )


def _report(final: Any, json_: bool, *, started_on: str | None = None, resumed: str | None = None) -> None:
    if json_:
        data: dict[str, Any] = {"run": run_json(final)}
        if resumed is not None:
            data = {"resumed": resumed, **data}
        print_json(data)
        return
    line = f"run {final.id} on thread {final.thread_id} is {final.status.value} after {final.steps} steps"
    if resumed is not None and final.id != resumed:
        line += f" (it continues run {resumed})"
    if final.error is not None:
        line += f": {final.error.message}"
    out_console().print(line, markup=False)


@app.command("resume")
def resume(
    ctx: typer.Context,
    run_id: RunArg,
    max_steps: Annotated[int | None, typer.Option("--max-steps", min=1, help="Raise the step limit.")] = None,
    json_: JsonOption = False,
) -> None:
    """Continue a run that stopped (its runner crashed, or it failed recoverably) from its
    thread's newest checkpoint, reusing every recorded tool result; runs until it finishes."""
    runtime = runtime_of(ctx)
    run = runtime.runs.get(run_id)
    head = runtime.checkpoints.latest(run.thread_id)
    workspace = None if head is None or head.workspace is None else head.workspace.workspace
    agent = _agent(run.agent)
    tools = demo_tools(runtime, run.thread_id, workspace) if run.agent in _DEMO_AGENTS and workspace else None
    try:
        final = runtime.runner(tools, workspace, agents=[agent]).resume(run_id, max_steps=max_steps)
    except KeyboardInterrupt:
        _interrupted(ctx, run.thread_id)
        raise
    _report(final, json_, resumed=run_id)


def _agent(name: str) -> Agent:
    """The agent called ``name``: the demo's, or one registered in the entry-point group."""
    if name in _DEMO_AGENTS:
        return _DEMO_AGENTS[name]()
    for ep in entry_points(group=AGENT_ENTRY_POINTS):
        if ep.name == name:
            agent = ep.load()()
            if not isinstance(agent, Agent):
                raise ValidationError(
                    f"the entry point {ep.value!r} for agent {name!r} did not return an agent"
                )
            return agent
    raise NotFoundError(
        f"no agent named {name!r} is known to this keepup: register its factory in the "
        f"{AGENT_ENTRY_POINTS!r} entry-point group, or resume it from your own code with Runner.resume"
    )
