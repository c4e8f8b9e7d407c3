"""The step loop of :class:`~runtime_execution.runner.Runner`: ask the agent, checkpoint, run the
pending tool calls (intent and result recorded as pending writes), fold their results into the
state, until the run finishes, fails, is cancelled or reaches its step limit."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from runtime_core import (
    Checkpoint,
    Message,
    Run,
    RunError,
    RunState,
    RunStatus,
    ToolCall,
    ToolCallResult,
    ValidationError,
)

from runtime_execution._lifecycle import _RunLifecycle, _Session
from runtime_execution.agents import Agent, Step, StepContext

RESULT_CHANNEL = "result"
"""Pending-write channel holding a tool call's result (task id = the call id)."""
STARTED_CHANNEL = "started"
"""Pending-write channel recording that a tool call was started (task id = the call id)."""


class _StepLoop(_RunLifecycle):
    """The loop that drives a run step by step, and its tool calls."""

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
