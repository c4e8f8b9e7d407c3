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

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from runtime_core import (
    Checkpoint,
    CheckpointSource,
    CorruptionError,
    Message,
    NotFoundError,
    RecoveryRefusedError,
    Run,
    RunState,
    RunStatus,
    RuntimeBusyError,
    ToolCallResult,
    ValidationError,
    new_id,
    prepare_recovery,
)

from runtime_execution._lifecycle import LeaseLostError, run_id_of_holder
from runtime_execution._steps import RESULT_CHANNEL, STARTED_CHANNEL, _result_plain, _StepLoop
from runtime_execution.agents import Agent

__all__ = [
    "RESULT_CHANNEL",
    "STARTED_CHANNEL",
    "LeaseLostError",
    "Runner",
    "run_id_of_holder",
]

RunInput = str | Message | Sequence[Message] | None


class Runner(_StepLoop):
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
