"""RunState as checkpoint channels, and the rules of recovering a run."""

from __future__ import annotations

import json
from typing import Any

import pytest
from runtime_core import (
    Message,
    RecoveryRefusedError,
    RunError,
    RunState,
    RunStatus,
    ToolCall,
    ToolCallResult,
    ValidationError,
    prepare_recovery,
)


def full_state() -> RunState:
    return RunState(
        messages=(
            Message("system", "be brief"),
            Message("user", "read a.txt", metadata={"ui": "cli"}),
            Message("assistant", "", name="coder"),
            Message("tool", "contents", tool_call_id="c0"),
        ),
        pending_tool_calls=(
            ToolCall("c1", "read", {"path": "b.txt"}),
            ToolCall("c2", "write", {"path": "c"}),
        ),
        completed_tool_calls=(ToolCallResult("c0", "read", {"path": "a.txt"}, True, "contents", None, 1.5),),
        step=3,
        max_steps=10,
        status=RunStatus.RUNNING,
        error=RunError("transient", code="timeout", recoverable=True),
    )


def test_run_state_round_trips_through_channels() -> None:
    state = full_state()
    assert RunState.from_channels(state.to_channels()) == state


def test_channels_are_plain_json_data() -> None:
    channels = full_state().to_channels()
    assert json.loads(json.dumps(channels)) == channels
    assert set(channels) == {
        "messages",
        "pending_tool_calls",
        "completed_tool_calls",
        "step",
        "max_steps",
        "status",
        "error",
    }
    assert channels["status"] == "running"


def test_empty_state_round_trips_and_missing_channels_take_defaults() -> None:
    assert RunState.from_channels(RunState().to_channels()) == RunState()
    assert RunState.from_channels({}) == RunState()


@pytest.mark.parametrize(
    "channels",
    [
        {"messages": [{"role": "user"}]},
        {"messages": [{"role": "user", "content": "x", "bogus": 1}]},
        {"messages": "not a list of messages"},
        {"pending_tool_calls": [{"id": "c"}]},
        {"status": "sleeping"},
        {"step": -3},
        {"error": {"message": "m", "recoverable": "maybe"}},
        {"error": "boom"},
        {"max_steps": 0},
    ],
)
def test_malformed_channels_raise_validation_error(channels: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RunState.from_channels(channels)


def test_from_channels_refuses_a_non_mapping() -> None:
    with pytest.raises(ValidationError, match="mapping of channels"):
        RunState.from_channels([("step", 1)])  # type: ignore[arg-type]


def test_run_state_validation() -> None:
    with pytest.raises(ValidationError, match="pending tool call ids must be unique"):
        RunState(pending_tool_calls=(ToolCall("c", "a"), ToolCall("c", "b")))
    with pytest.raises(ValidationError, match="max_steps must be a positive integer"):
        RunState(max_steps=True)
    with pytest.raises(ValidationError, match="messages must be a tuple of Message"):
        RunState(messages=[Message("user", "x")])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="run status must be one of"):
        RunState(status="done")  # type: ignore[arg-type]
    assert RunState(status="completed").status is RunStatus.COMPLETED  # type: ignore[arg-type]


def test_evolve_validates_again() -> None:
    state = RunState(step=1)
    assert state.evolve(step=2).step == 2
    assert state.step == 1
    with pytest.raises(ValidationError):
        state.evolve(step=-1)


# --- recovery --------------------------------------------------------------------------------------


def test_recovery_resumes_at_the_step_and_reruns_only_unfinished_tool_calls() -> None:
    state = full_state()
    written_after = [ToolCallResult("c1", "read", {"path": "b.txt"}, True, "b")]
    plan = prepare_recovery(state, written_after)
    assert plan.resume_step == 3
    assert [r.call_id for r in plan.completed] == ["c1"]
    assert [c.id for c in plan.to_run] == ["c2"]


def test_results_already_in_the_state_are_reused_and_win_over_pending_writes() -> None:
    first = ToolCallResult("c1", "read", {}, True, "from state")
    state = RunState(
        pending_tool_calls=(ToolCall("c1", "read"),),
        completed_tool_calls=(first,),
        status=RunStatus.RUNNING,
    )
    plan = prepare_recovery(state, [ToolCallResult("c1", "read", {}, True, "late duplicate")])
    assert plan.completed == (first,)
    assert plan.to_run == ()


def test_results_of_calls_that_are_not_pending_are_ignored() -> None:
    state = RunState(pending_tool_calls=(ToolCall("c1", "read"),), status=RunStatus.PENDING)
    plan = prepare_recovery(state, [ToolCallResult("other", "read", {}, True)])
    assert plan.completed == ()
    assert [c.id for c in plan.to_run] == ["c1"]


def test_a_failed_run_with_a_recoverable_error_can_be_recovered() -> None:
    state = RunState(status=RunStatus.FAILED, error=RunError("timeout", recoverable=True), step=4)
    assert prepare_recovery(state).resume_step == 4


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (RunState(status=RunStatus.COMPLETED), "already completed"),
        (RunState(status=RunStatus.CANCELLED), "was cancelled"),
        (
            RunState(status=RunStatus.FAILED, error=RunError("bad key", recoverable=False)),
            "non-recoverable error: bad key",
        ),
        (RunState(status=RunStatus.FAILED), "no error recorded"),
    ],
)
def test_recovery_is_refused_for_finished_runs(state: RunState, reason: str) -> None:
    with pytest.raises(RecoveryRefusedError, match=reason):
        prepare_recovery(state)


def test_a_completed_status_read_back_from_channels_is_refused_too() -> None:
    state = RunState.from_channels({"status": "completed"})
    with pytest.raises(RecoveryRefusedError):
        prepare_recovery(state)


def test_finished_statuses() -> None:
    assert {s for s in RunStatus if s.finished} == {
        RunStatus.COMPLETED,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
    }
