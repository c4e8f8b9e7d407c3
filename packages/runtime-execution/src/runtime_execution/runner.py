"""The durable step runner: runs an agent on a thread, checkpoint after checkpoint, under a lease,
so that a crash loses nothing and a completed tool call never runs again.

The cycle of one step::

    agent.step(state) -> Step            the agent decides (messages, tool calls, done or failed)
    save checkpoint C(n)                 the state with the new messages and the *pending* calls
    for each pending call:
        put_writes(C(n), call, started)  intent, before the tool runs
        tools.invoke(call)
        put_writes(C(n), call, result)   the result, as soon as the call returns
    fold the results into the state      and ask the agent again: C(n+1) holds them

What survives a crash (SIGKILL at any instruction):

* every checkpoint that ``save`` acknowledged, and every result ``put_writes`` acknowledged;
* on resume, the runner reads the head checkpoint and its pending writes (core's
  ``prepare_recovery``): calls with a recorded result are **never run again** (their results are
  reused); calls without one are run (again);
* so a tool's effect is applied **at least once**, and **exactly once** when the tool is
  idempotent by call id (the call id is stable across crashes). The only window for a second
  execution is between the tool's effect and its result write; a call that was started in that
  window is reported as *interrupted* (telemetry ``run.tool_interrupted``), and with
  ``rerun_interrupted=False`` the runner records it as failed instead of running it again
  (at most once).

A run holds a lease on its thread while it works (renewed by a heartbeat thread); restore and
prune through persistence are refused while it is live, and a second runner cannot resume the
same thread. A runner that loses its lease stops before its next tool call or checkpoint.
"""

from __future__ import annotations

import builtins
import json
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
    CorruptionError,
    LeaseStore,
    Message,
    NotFoundError,
    NullTelemetry,
    RecoveryRefusedError,
    Run,
    RunError,
    RunState,
    RunStatus,
    RunStore,
    RuntimeBusyError,
    SystemClock,
    Telemetry,
    ToolCall,
    ToolCallResult,
    ToolDescription,
    ToolInvoker,
    ValidationError,
    WorkspaceRef,
    WorkspaceSnapshots,
    new_id,
    prepare_recovery,
)

from runtime_execution.agents import Agent, Step, StepContext
from runtime_execution.heartbeats import LeaseKeeper

__all__ = [
    "RESULT_CHANNEL",
    "STARTED_CHANNEL",
    "LeaseLostError",
    "Runner",
    "run_id_of_holder",
]

RESULT_CHANNEL = "result"
"""Pending-write channel holding a tool call's result (task id = the call id)."""
STARTED_CHANNEL = "started"
"""Pending-write channel recording that a tool call was started (task id = the call id)."""

RunInput = str | Message | Sequence[Message] | None


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


class Runner:
    """Runs agents durably on threads of a checkpoint store.

    ``checkpoints``, ``leases`` and ``runs`` are the persistence stores (core Protocols: any
    implementation works; ``runtime_persistence`` provides them over every driver); ``tools`` is
    any core ToolInvoker (the facade injects the tool registry). ``workspace`` (optional, a core
    WorkspaceSnapshots such as shadow git) is snapshotted with every checkpoint and restored on
    replay, so files and conversation travel together.

    ``agents`` registers agents by name so that :meth:`resume` and :meth:`replay` find them again
    without being given one (``start`` registers its agent too).

    ``lease_ttl`` is how long a lease lasts without a heartbeat; ``heartbeat_every`` (default a
    third of it) how often it is renewed. ``tool_timeout`` bounds each tool call."""

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

    # starting, resuming, replaying, cancelling ------------------------------------------------------

    def start(
        self,
        agent: Agent,
        thread_id: str | None = None,
        *,
        input: RunInput = None,
        max_steps: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        thread_name: str = "",
    ) -> Run:
        """Run ``agent`` until it finishes, fails, is cancelled or reaches ``max_steps``; return
        the final run record.

        Without ``thread_id`` a new thread is created; with one, the run continues the thread's
        conversation (its messages and any other channels are kept). ``input`` (a user message or
        messages) is appended first. Raises RuntimeBusyError if a live lease holds the thread,
        ConflictError if the thread has an unfinished run (resume or cancel it first),
        LeaseLostError if the lease is lost while running, NotFoundError for an unknown thread."""
        self.add_agent(agent)
        inputs = _inputs(input)
        if thread_id is None:
            thread_id = self.checkpoints.create_thread(
                thread_name or agent.name, metadata={"agent": agent.name}
            ).id
        else:
            self.checkpoints.get_thread(thread_id)
        run = Run(
            id=new_id(),
            thread_id=thread_id,
            agent=agent.name,
            status=RunStatus.RUNNING,
            started_at=self.clock.now(),
            metadata=dict(metadata or {}),
        )
        with self._hold(run) as session:
            head = self.checkpoints.latest(thread_id)
            base = dict(head.state) if head is not None else {}
            if head is not None:
                self._refuse_unfinished(head)
            prior = _run_state_or_empty(base)
            state = RunState(messages=prior.messages + inputs, max_steps=max_steps, status=RunStatus.RUNNING)
            self.telemetry.event("run.started", run_id=run.id, thread_id=thread_id, agent=agent.name)
            head = self._save(
                session,
                state,
                base,
                parent=None if head is None else head.id,
                source=CheckpointSource.INPUT,
                event="start",
            )
            self.runs.create(run)
            return self._drive(session, agent, state, base, head, {})

    def resume(
        self, run_or_thread_id: str, agent: Agent | None = None, *, max_steps: int | None = None
    ) -> Run:
        """Continue a run that stopped (its runner crashed, or it failed with a recoverable error)
        from the last checkpoint of its thread, reusing every recorded tool result.

        ``run_or_thread_id`` is a run id, or a thread id (its latest run). ``agent`` defaults to
        the registered agent named in the run record. A crashed run continues under its own id;
        a run that *failed* (recoverably) is finished, so it continues as a new run whose
        metadata names it (``resumed_from``). ``max_steps`` raises the step limit.

        Raises RecoveryRefusedError for completed, cancelled and non-recoverably failed runs, or
        when the thread moved on to another run (the run record is first brought in line with
        the checkpoint if a crash left it behind); RuntimeBusyError while a live lease holds the
        thread; NotFoundError when there is no such run."""
        run, thread_id = self._find_run(run_or_thread_id)
        agent = agent if agent is not None else self.agent(run.agent)
        if agent.name != run.agent:
            raise ValidationError(f"run {run.id} was made by agent {run.agent!r}, not {agent.name!r}")
        self.add_agent(agent)
        with self._hold(run) as session:
            head = self.checkpoints.latest(thread_id)
            if head is None or head.metadata.get("run_id") != run.id:
                raise RecoveryRefusedError(
                    f"thread {thread_id} has moved on since run {run.id} (its latest checkpoint belongs to "
                    "another run or a restore); start a new run on it instead"
                )
            base = dict(head.state)
            state = _run_state(head)
            if state.status.finished:
                run = self._reconcile(run, state)
            results, started = _recorded(head)
            plan = prepare_recovery(state, results.values())  # refuses finished runs
            interrupted = [c for c in plan.to_run if c.id in started]
            for call in interrupted:
                self.telemetry.event("run.tool_interrupted", run_id=run.id, call_id=call.id, tool=call.name)
                if not self.rerun_interrupted:
                    result = ToolCallResult(
                        call_id=call.id,
                        name=call.name,
                        arguments=call.arguments,
                        success=False,
                        error="interrupted by a crash after it started; not run again because its outcome is unknown",
                    )
                    self.checkpoints.put_writes(head.id, call.id, {RESULT_CHANNEL: _result_plain(result)})
                    results[call.id] = result
            if max_steps is not None:
                state = state.evolve(max_steps=max_steps)
            state = state.evolve(status=RunStatus.RUNNING, error=None)
            if run.status is RunStatus.FAILED:
                run = replace(
                    run,
                    id=new_id(),
                    status=RunStatus.RUNNING,
                    started_at=self.clock.now(),
                    ended_at=None,
                    steps=0,
                    error=None,
                    cancel_requested=False,
                    metadata={**run.metadata, "resumed_from": run.id},
                )
                self._rehold(session, run)
                head = self._save(
                    session, state, base, parent=head.id, source=CheckpointSource.LOOP, event="resume"
                )
                self.runs.create(run)
            else:
                run = self._update(run.id, status=RunStatus.RUNNING, ended_at=None, error=None)
                session.run = run
            self.telemetry.event(
                "run.resumed",
                run_id=run.id,
                thread_id=thread_id,
                step=state.step,
                reused_results=len(plan.completed),
                to_run=len(plan.to_run),
                interrupted=len(interrupted),
            )
            return self._drive(session, agent, state, base, head, results)

    def replay(
        self,
        checkpoint_id: str,
        agent: Agent | None = None,
        *,
        fork: bool = True,
        max_steps: int | None = None,
        name: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> Run:
        """Run the agent again from a past checkpoint (its state, and its workspace snapshot when
        the runner has a workspace): on a new fork of the thread by default, leaving the original
        thread untouched; with ``fork=False`` on the original thread, as a new head written under
        the run's lease. Pending tool calls of that checkpoint are run again (their recorded
        results are not reused: that is what a replay is for). Returns the new run's final record.

        ``agent`` defaults to the registered agent that made the checkpoint. Raises NotFoundError
        for an unknown checkpoint or agent, RuntimeBusyError (fork=False) while the thread is held."""
        source = self.checkpoints.get(checkpoint_id)
        if agent is None:
            agent_name = source.metadata.get("agent")
            if not isinstance(agent_name, str):
                raise NotFoundError(f"checkpoint {checkpoint_id} does not name its agent; pass the agent")
            agent = self.agent(agent_name)
        self.add_agent(agent)
        state = _run_state(source)
        if fork:
            thread_id = self.checkpoints.fork(
                checkpoint_id,
                name=name or f"replay of {checkpoint_id}",
                metadata={**(metadata or {}), "replay_of": checkpoint_id},
            ).id
        else:
            thread_id = source.thread_id
        run = Run(
            id=new_id(),
            thread_id=thread_id,
            agent=agent.name,
            status=RunStatus.RUNNING,
            started_at=self.clock.now(),
            metadata={
                **(metadata or {}),
                "replay_of": checkpoint_id,
                **({"source_run": source.metadata["run_id"]} if "run_id" in source.metadata else {}),
            },
        )
        with self._hold(run) as session:
            head = self.checkpoints.latest(thread_id)
            if self.workspace is not None and source.workspace is not None:
                self.workspace.restore(source.workspace.commit)
                session.last_commit = source.workspace.commit
            state = state.evolve(
                status=RunStatus.RUNNING,
                error=None,
                max_steps=max_steps if max_steps is not None else state.max_steps,
            )
            base = dict(source.state)
            head = self._save(
                session,
                state,
                base,
                parent=None if head is None else head.id,
                source=CheckpointSource.UPDATE if fork else CheckpointSource.RESTORE,
                event="replay",
                extra={"replay_of": checkpoint_id},
            )
            self.runs.create(run)
            self.telemetry.event(
                "run.started", run_id=run.id, thread_id=thread_id, agent=agent.name, replay_of=checkpoint_id
            )
            return self._drive(session, agent, state, base, head, {})

    def divergence(self, original_id: str, replay_run_id: str) -> int | None:
        """Compare a replay with the run it replayed: walk the original lineage from checkpoint
        ``original_id`` to its thread's head and the replay's lineage from its fork point to its
        head (both with the checkpoints' ``replay``), match states by step, and return the first
        step whose state differs (tool durations aside), or None when every step matches and both
        ended at the same step. A deterministic agent on a restored workspace gives None."""
        run = self.runs.get(replay_run_id)
        fork_head = self.checkpoints.latest(run.thread_id)
        if fork_head is None:
            raise NotFoundError(f"the thread of run {replay_run_id} has no checkpoints")
        original = {_step_of(c): _comparable(c) for c in self.checkpoints.replay(original_id)}
        replayed = {_step_of(c): _comparable(c) for c in self.checkpoints.replay(original_id, fork_head.id)}
        for step in sorted(set(original) | set(replayed)):
            if original.get(step) != replayed.get(step):
                return step
        return None

    def cancel(self, run_id: str) -> Run:
        """Ask a run to stop. A running run stops at its next step boundary and ends cancelled,
        with a checkpoint. A run with no live runner (it crashed) is cancelled right away, with a
        checkpoint. A finished run is returned unchanged. Returns the run record as it is now."""
        run = self.runs.request_cancel(run_id)
        if run.status.finished:
            return run
        if self.leases.current(run.thread_id) is not None:
            return run  # a runner holds the thread: it will see the request between steps
        try:
            with self._hold(run) as session:
                run = self.runs.get(run_id)
                if run.status.finished:
                    return run
                session.run = run
                head = self.checkpoints.latest(run.thread_id)
                if head is None or head.metadata.get("run_id") != run.id:
                    return self._finish(session, RunState(status=RunStatus.CANCELLED), steps=run.steps)
                state = _run_state(head)
                if not state.status.finished:
                    state = state.evolve(status=RunStatus.CANCELLED, error=None)
                    self._save(session, state, dict(head.state), parent=head.id, event="cancel")
                return self._finish(session, state)
        except RuntimeBusyError:
            return self.runs.get(run_id)  # someone resumed it meanwhile: they will see the request

    # the loop --------------------------------------------------------------------------------------

    def _drive(
        self,
        session: _Session,
        agent: Agent,
        state: RunState,
        base: dict[str, Any],
        head: Checkpoint,
        results: dict[str, ToolCallResult],
    ) -> Run:
        run = session.run
        session.tools = tuple(self.tools.describe())
        while True:
            if state.pending_tool_calls:
                state = self._run_tools(session, state, head, results)
                results = {}
            record = self.runs.get(run.id)
            if record.cancel_requested:
                state = state.evolve(status=RunStatus.CANCELLED, error=None)
                self._save(session, state, base, parent=head.id, event="cancel")
                return self._finish(session, state)
            if state.max_steps is not None and state.step >= state.max_steps:
                state = state.evolve(
                    status=RunStatus.FAILED,
                    error=RunError(
                        f"the run reached its limit of {state.max_steps} steps without finishing",
                        code="max_steps",
                        recoverable=False,
                    ),
                )
                self._save(session, state, base, parent=head.id, event="max_steps")
                return self._finish(session, state)
            step = self._ask(session, agent, state, head)
            state = _apply(state, step)
            head = self._save(session, state, base, parent=head.id, event="step")
            session.steps += 1
            if state.status.finished:
                return self._finish(session, state)
            self._update(run.id, current=record, steps=state.step)

    def _ask(self, session: _Session, agent: Agent, state: RunState, head: Checkpoint) -> Step:
        run = session.run
        context = StepContext(
            run_id=run.id,
            thread_id=run.thread_id,
            step=state.step,
            tools=session.tools,
            checkpoint_id=head.id,
        )
        with self.telemetry.span("run.step", run_id=run.id, step=state.step, agent=agent.name) as fields:
            try:
                answer: object = agent.step(state, context)
            except Exception as exc:
                answer = Step.fail(f"{type(exc).__name__}: {exc}", code="agent_error", recoverable=True)
            if isinstance(answer, Step):
                step = answer
            else:
                step = Step.fail(
                    f"the agent returned {type(answer).__name__}, not a Step",
                    code="invalid_step",
                    recoverable=False,
                )
            done_ids = {r.call_id for r in state.completed_tool_calls}
            reused = [c.id for c in step.tool_calls if c.id in done_ids]
            if reused:
                step = Step.fail(
                    f"the agent reused tool call ids {reused[:5]}; ids must be unique within a run",
                    code="duplicate_tool_call_id",
                    recoverable=False,
                )
            fields.update(tool_calls=len(step.tool_calls), done=step.done, failed=step.error is not None)
        return step

    def _run_tools(
        self, session: _Session, state: RunState, head: Checkpoint, results: dict[str, ToolCallResult]
    ) -> RunState:
        done = {r.call_id: r for r in state.completed_tool_calls}
        for call in state.pending_tool_calls:
            if call.id in done or call.id in results:
                continue
            self._check_lease(session)
            self.checkpoints.put_writes(head.id, call.id, {STARTED_CHANNEL: self.clock.now().isoformat()})
            result = self._invoke(call)
            self.checkpoints.put_writes(head.id, call.id, {RESULT_CHANNEL: _result_plain(result)})
            results[call.id] = result
            self.telemetry.event(
                "run.tool_call",
                run_id=session.run.id,
                call_id=call.id,
                tool=call.name,
                success=result.success,
                duration_ms=result.duration_ms,
            )
        return _fold(state, results)

    def _invoke(self, call: ToolCall) -> ToolCallResult:
        started = time.monotonic()
        try:
            result = self.tools.invoke(call, timeout=self.tool_timeout)
            if not isinstance(result, ToolCallResult) or result.call_id != call.id:
                raise ValidationError(f"the tool invoker returned {result!r:.80} for call {call.id}")
            return result
        except Exception as exc:  # an invoker must not raise; if it does, the call failed
            return ToolCallResult(
                call_id=call.id,
                name=call.name,
                arguments=call.arguments,
                success=False,
                error=f"{type(exc).__name__}: {exc}",
                duration_ms=(time.monotonic() - started) * 1000,
            )

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


# state transitions ---------------------------------------------------------------------------------


def _inputs(value: RunInput) -> tuple[Message, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (Message(role="user", content=value),)
    if isinstance(value, Message):
        return (value,)
    messages = tuple(value)
    if not all(isinstance(m, Message) for m in messages):
        raise ValidationError("input must be a string, a Message or a sequence of Messages")
    return messages


def _run_state(checkpoint: Checkpoint) -> RunState:
    try:
        return RunState.from_channels(checkpoint.state)
    except ValidationError as exc:
        raise RecoveryRefusedError(f"checkpoint {checkpoint.id} does not hold a run state: {exc}") from exc


def _run_state_or_empty(channels: Mapping[str, Any]) -> RunState:
    try:
        return RunState.from_channels(channels)
    except ValidationError:
        return RunState()


def _apply(state: RunState, step: Step) -> RunState:
    """The state after ``step``. A failed step does not advance the step counter: resuming a
    recoverable failure asks the agent for that step again."""
    status = (
        RunStatus.COMPLETED
        if step.done
        else RunStatus.FAILED
        if step.error is not None
        else RunStatus.RUNNING
    )
    return state.evolve(
        messages=state.messages + step.messages,
        pending_tool_calls=step.tool_calls,
        step=state.step if step.error is not None else state.step + 1,
        status=status,
        error=step.error,
    )


def _fold(state: RunState, results: Mapping[str, ToolCallResult]) -> RunState:
    """Move the pending calls' results into the state: completed calls, and a tool message each."""
    known = {r.call_id: r for r in state.completed_tool_calls}
    added: list[ToolCallResult] = []
    messages: list[Message] = []
    for call in state.pending_tool_calls:
        result = known.get(call.id)
        if result is None:
            result = results[call.id]
            added.append(result)
        messages.append(
            Message(
                role="tool",
                content=_result_text(result),
                name=call.name,
                tool_call_id=call.id,
                metadata={"success": result.success},
            )
        )
    return state.evolve(
        messages=state.messages + tuple(messages),
        completed_tool_calls=state.completed_tool_calls + tuple(added),
        pending_tool_calls=(),
    )


def _step_of(checkpoint: Checkpoint) -> int:
    step = checkpoint.state.get("step", 0)
    return step if isinstance(step, int) else -1


def _comparable(checkpoint: Checkpoint) -> dict[str, Any]:
    """The run state of a checkpoint as plain data, without what differs between identical runs
    (durations; the status and error of the checkpoints a replay writes before it starts)."""
    channels = _run_state_or_empty(checkpoint.state).to_channels()
    for result in channels["completed_tool_calls"]:
        result.pop("duration_ms", None)
    channels.pop("status")
    channels.pop("error")
    return channels


def _result_text(result: ToolCallResult) -> str:
    if not result.success:
        return f"error: {result.error}"
    if result.output is None:
        return ""
    if isinstance(result.output, str):
        return result.output
    return json.dumps(result.output, ensure_ascii=False, sort_keys=True, default=str)


def _result_plain(result: ToolCallResult) -> dict[str, Any]:
    return {
        "call_id": result.call_id,
        "name": result.name,
        "arguments": result.arguments,
        "success": result.success,
        "output": result.output,
        "error": result.error,
        "duration_ms": result.duration_ms,
    }


def _recorded(checkpoint: Checkpoint) -> tuple[dict[str, ToolCallResult], set[str]]:
    """The tool results recorded after ``checkpoint``, and the ids of the calls that were started."""
    results: dict[str, ToolCallResult] = {}
    started: set[str] = set()
    for write in checkpoint.pending_writes:
        if write.channel == STARTED_CHANNEL:
            started.add(write.task_id)
        elif write.channel == RESULT_CHANNEL:
            try:
                results[write.task_id] = ToolCallResult(**write.value)
            except (TypeError, ValidationError) as exc:
                raise CorruptionError(
                    f"the recorded result of tool call {write.task_id} after checkpoint {checkpoint.id} "
                    f"is malformed: {exc}"
                ) from exc
    return results, started
