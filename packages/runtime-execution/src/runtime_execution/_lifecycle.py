"""The run lifecycle of :class:`~runtime_execution.runner.Runner`: its configuration and agents, the
run records, checkpoint saving (with the workspace snapshot), finishing a run, and the lease held
on the thread while a run works (renewed by a :class:`~runtime_execution.heartbeats.LeaseKeeper`).
:class:`_RunLifecycle` is the base that the step loop and the runner's public operations build on."""

from __future__ import annotations

import builtins
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from runtime_core import (
    Checkpoint,
    CheckpointSource,
    CheckpointStore,
    Clock,
    ConflictError,
    LeaseStore,
    NotFoundError,
    NullTelemetry,
    Run,
    RunState,
    RunStatus,
    RunStore,
    SystemClock,
    Telemetry,
    ToolDescription,
    ToolInvoker,
    ValidationError,
    WorkspaceRef,
    WorkspaceSnapshots,
)

from runtime_execution.agents import Agent
from runtime_execution.heartbeats import LeaseKeeper


class LeaseLostError(ConflictError):
    """The runner lost its lease on the thread (it expired and another runner took it, or
    heartbeats failed for longer than the ttl); it stopped without touching the thread again.
    The run is left as it was and can be resumed."""


def run_id_of_holder(holder: str) -> str:
    """The run id inside a lease holder written by the runner (``<run id>+<runner token>``)."""
    return holder.split("+", 1)[0]


@dataclass
class _Session:
    """One attempt at driving a run: the lease keeper, the tools as described to the agent,
    and the last workspace snapshot."""

    run: Run
    keeper: LeaseKeeper
    tools: tuple[ToolDescription, ...] = ()
    last_commit: str | None = None
    started: float = field(default_factory=time.monotonic)
    steps: int = 0


class _RunLifecycle:
    """The configuration, agents, run records, checkpoints and leases of a
    :class:`~runtime_execution.runner.Runner`."""

    def __init__(
        self,
        checkpoints: CheckpointStore,
        leases: LeaseStore,
        runs: RunStore,
        tools: ToolInvoker,
        *,
        agents: Sequence[Agent] = (),
        workspace: WorkspaceSnapshots | None = None,
        clock: Clock | None = None,
        telemetry: Telemetry | None = None,
        lease_ttl: timedelta | float = timedelta(seconds=30),
        heartbeat_every: float | None = None,
        tool_timeout: float | None = None,
        rerun_interrupted: bool = True,
    ) -> None:
        ttl = lease_ttl if isinstance(lease_ttl, timedelta) else timedelta(seconds=lease_ttl)
        if ttl <= timedelta(0):
            raise ValidationError("lease_ttl must be positive")
        every = heartbeat_every if heartbeat_every is not None else ttl.total_seconds() / 3
        if not 0 < every < ttl.total_seconds():
            raise ValidationError("heartbeat_every must be positive and shorter than lease_ttl")
        if tool_timeout is not None and not tool_timeout > 0:
            raise ValidationError("tool_timeout must be positive")
        self.checkpoints = checkpoints
        self.leases = leases
        self.runs = runs
        self.tools = tools
        self.workspace = workspace
        self.clock: Clock = clock or SystemClock()
        self.telemetry: Telemetry = telemetry or NullTelemetry()
        self.lease_ttl = ttl
        self.heartbeat_every = every
        self.tool_timeout = tool_timeout
        self.rerun_interrupted = rerun_interrupted
        self._agents: dict[str, Agent] = {}
        for agent in agents:
            self.add_agent(agent)

    # agents -------------------------------------------------------------------------------------

    def add_agent(self, agent: Agent) -> None:
        """Register ``agent`` under its name (replacing an agent of the same name)."""
        if not isinstance(agent, Agent):
            raise ValidationError(f"{agent!r:.80} is not an agent (it needs a name and a step method)")
        self._agents[agent.name] = agent

    def agent(self, name: str) -> Agent:
        """The registered agent called ``name``; raises NotFoundError."""
        found = self._agents.get(name)
        if found is None:
            raise NotFoundError(
                f"no agent named {name!r} is registered with this runner; pass the agent, or register it "
                "with Runner(agents=[...]) or add_agent()"
            )
        return found

    # run records ------------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> Run:
        """The run record; raises NotFoundError."""
        return self.runs.get(run_id)

    def list_runs(
        self, *, thread_id: str | None = None, status: RunStatus | None = None, limit: int = 50
    ) -> builtins.list[Run]:
        """Run records newest first."""
        return self.runs.list(thread_id=thread_id, status=status, limit=limit)

    # persistence helpers ---------------------------------------------------------------------------

    def _save(
        self,
        session: _Session,
        state: RunState,
        base: Mapping[str, Any],
        *,
        parent: str | None,
        source: CheckpointSource = CheckpointSource.LOOP,
        event: str,
        extra: Mapping[str, Any] | None = None,
    ) -> Checkpoint:
        self._check_lease(session)
        run = session.run
        workspace = self._workspace_ref(session, f"{event} at step {state.step} of run {run.id}")
        metadata = {"run_id": run.id, "agent": run.agent, "event": event, **(extra or {})}
        with self.telemetry.span("run.checkpoint", run_id=run.id, step=state.step, event=event) as fields:
            checkpoint = self.checkpoints.save(
                run.thread_id,
                {**base, **state.to_channels()},
                parent_id=parent,
                source=source,
                metadata=metadata,
                workspace=workspace,
            )
            fields["checkpoint_id"] = checkpoint.id
        if workspace is not None and self.workspace is not None:
            self.workspace.keep(workspace.commit, checkpoint.id)
        return checkpoint

    def _workspace_ref(self, session: _Session, message: str) -> WorkspaceRef | None:
        ws = self.workspace
        if ws is None:
            return None
        commit = ws.snapshot(message)
        if commit is None:
            if session.last_commit is None:
                latest = ws.list(1)
                session.last_commit = latest[0].commit if latest else None
            commit = session.last_commit
        session.last_commit = commit
        return None if commit is None else WorkspaceRef(ws.workspace, commit)

    def _finish(self, session: _Session, state: RunState, *, steps: int | None = None) -> Run:
        run = self._update(
            session.run.id,
            status=state.status,
            ended_at=self.clock.now(),
            steps=state.step if steps is None else steps,
            error=state.error,
        )
        self.telemetry.event(
            "run.finished",
            run_id=run.id,
            thread_id=run.thread_id,
            status=run.status.value,
            steps=run.steps,
            duration_ms=(time.monotonic() - session.started) * 1000,
            error=None if run.error is None else run.error.message,
        )
        return run

    def _update(self, run_id: str, *, current: Run | None = None, **changes: Any) -> Run:
        """Apply ``changes`` to the stored record (``current``, or re-read now so that a cancel
        request made meanwhile is kept)."""
        return self.runs.update(replace(current if current is not None else self.runs.get(run_id), **changes))

    def _reconcile(self, run: Run, state: RunState) -> Run:
        """A crash between the final checkpoint and the record update left the record behind."""
        if run.status is state.status:
            return run
        return self._update(
            run.id, status=state.status, ended_at=self.clock.now(), steps=state.step, error=state.error
        )

    def _find_run(self, run_or_thread_id: str) -> tuple[Run, str]:
        try:
            run = self.runs.get(run_or_thread_id)
            return run, run.thread_id
        except NotFoundError:
            pass
        head = self.checkpoints.latest(run_or_thread_id)  # NotFoundError if it is no thread either
        run_id = None if head is None else head.metadata.get("run_id")
        if head is None or not isinstance(run_id, str):
            raise NotFoundError(f"thread {run_or_thread_id} has no run to resume; start one")
        try:
            return self.runs.get(run_id), head.thread_id
        except NotFoundError:
            pass
        # the runner crashed between its first checkpoint and creating the record: rebuild it
        agent = head.metadata.get("agent")
        run = Run(
            id=run_id,
            thread_id=head.thread_id,
            agent=agent if isinstance(agent, str) and agent else "unknown",
            status=RunStatus.RUNNING,
            started_at=head.created_at,
        )
        try:
            return self.runs.create(run), head.thread_id
        except ConflictError:
            return self.runs.get(run_id), head.thread_id

    def _refuse_unfinished(self, head: Checkpoint) -> None:
        run_id = head.metadata.get("run_id")
        status = head.state.get("status")
        if isinstance(run_id, str) and status in (RunStatus.RUNNING.value, RunStatus.PENDING.value):
            raise ConflictError(
                f"thread {head.thread_id} has an unfinished run {run_id}; resume it or cancel it first"
            )

    # leases ------------------------------------------------------------------------------------------

    def _keep(self, run: Run) -> LeaseKeeper:
        """Take the lease on ``run``'s thread (raises RuntimeBusyError) and start renewing it."""
        sent = self.clock.monotonic()
        lease = self.leases.acquire(run.thread_id, f"{run.id}+{secrets.token_hex(4)}", self.lease_ttl)
        return LeaseKeeper(
            self.leases,
            lease,
            ttl=self.lease_ttl,
            every=self.heartbeat_every,
            telemetry=self.telemetry,
            since=sent,
            clock=self.clock,
        ).start()

    @contextmanager
    def _hold(self, run: Run) -> Iterator[_Session]:
        session = _Session(run=run, keeper=self._keep(run))
        try:
            yield session
        finally:
            last = session.keeper.stop()
            try:
                self.leases.release(last)
            except Exception as exc:  # it will expire on its own
                self.telemetry.event("run.lease_release_failed", thread_id=run.thread_id, error=str(exc))

    def _rehold(self, session: _Session, run: Run) -> None:
        """Move the lease we hold to a new run id (a failed run resumed as a new run)."""
        self.leases.release(session.keeper.stop())
        # another runner could take the thread in between: then this raises RuntimeBusyError
        # before anything was written, and the old run stays failed and resumable
        session.keeper = self._keep(run)
        session.run = run

    def _check_lease(self, session: _Session) -> None:
        reason = session.keeper.ensure()
        if reason is not None:
            self.telemetry.event("run.lease_lost", run_id=session.run.id, reason=reason)
            raise LeaseLostError(
                f"run {session.run.id} lost its lease on thread {session.run.thread_id}: {reason}"
            )
