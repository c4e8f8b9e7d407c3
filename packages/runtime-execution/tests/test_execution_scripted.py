"""The scripted agent and the step record."""

from __future__ import annotations

import pytest
from runtime_core import Message, RunError, RunState, ToolCall, ValidationError
from runtime_execution import Agent, ScriptedAgent, ScriptedFailure, Step, StepContext

CTX = StepContext(run_id="r", thread_id="t", step=0)


def test_script_items_become_steps_with_stable_call_ids() -> None:
    agent = ScriptedAgent(
        [
            "hello",
            Message("assistant", "explicit"),
            ("read_file", {"path": "a"}),
            [("write_file", {"path": "b", "content": "x"}), ToolCall("mine", "list_dir", {})],
            Step.say("said"),
        ]
    )
    assert isinstance(agent, Agent)
    assert agent.steps[0].messages[0].content == "hello"
    assert agent.steps[1].messages[0].content == "explicit"
    assert agent.steps[2].tool_calls == (ToolCall("s2c0", "read_file", {"path": "a"}),)
    assert [c.id for c in agent.steps[3].tool_calls] == ["s3c0", "mine"]
    assert [c.id for c in agent.tool_calls] == ["s2c0", "s3c0", "mine"]
    assert (
        ScriptedAgent([("read_file", {"path": "a"})]).tool_calls
        == ScriptedAgent([("read_file", {"path": "a"})]).tool_calls
    )


def test_the_step_is_chosen_by_the_state_alone() -> None:
    agent = ScriptedAgent(["a", "b"], final_message="end")
    assert agent.step(RunState(step=1), CTX).messages[0].content == "b"
    assert agent.step(RunState(step=0), CTX).messages[0].content == "a"
    last = agent.step(RunState(step=2), CTX)
    assert last.done and last.messages[0].content == "end"
    assert agent.step(RunState(step=7), CTX).done


def test_failure_at_a_chosen_step_once_per_instance() -> None:
    agent = ScriptedAgent(["a", "b"], fail_at=1, recoverable=False, fail_message="boom")
    failed = agent.step(RunState(step=1), CTX)
    assert failed.error == RunError("boom at step 1", code="scripted_failure", recoverable=False)
    assert agent.step(RunState(step=1), CTX).messages[0].content == "b"  # only once by default
    twice = ScriptedAgent(["a"], fail_at=0, fail_times=2)
    assert twice.step(RunState(), CTX).error is not None
    assert twice.step(RunState(), CTX).error is not None
    assert twice.step(RunState(), CTX).error is None


def test_failure_by_raising() -> None:
    agent = ScriptedAgent(["a"], fail_at=0, raise_error=True)
    with pytest.raises(ScriptedFailure):
        agent.step(RunState(), CTX)


def test_bad_scripts_are_refused() -> None:
    with pytest.raises(ValidationError):
        ScriptedAgent([42])  # type: ignore[list-item]
    with pytest.raises(ValidationError):
        ScriptedAgent([[("tool", "not a mapping")]])  # type: ignore[list-item]
    with pytest.raises(ValidationError):
        ScriptedAgent([], name="")
    with pytest.raises(ValidationError):
        ScriptedAgent([], fail_at=-1)


def test_demo_script_uses_the_workspace_tools() -> None:
    agent = ScriptedAgent.demo()
    assert agent.name == "demo"
    assert {c.name for c in agent.tool_calls} <= {"read_file", "write_file", "edit_file", "list_dir"}


def test_step_rules() -> None:
    with pytest.raises(ValidationError):
        Step(done=True, error=RunError("x"))
    with pytest.raises(ValidationError):
        Step(tool_calls=(ToolCall("a", "t"),), done=True)
    with pytest.raises(ValidationError):
        Step(tool_calls=(ToolCall("a", "t"), ToolCall("a", "t")))
    with pytest.raises(ValidationError):
        Step(messages=("text",))  # type: ignore[arg-type]
    assert Step.finish().done and Step.finish().messages == ()
    assert Step.fail("x", recoverable=True).error == RunError("x", "agent_failed", True)
    call = Step.call(ToolCall("a", "t"), message=Message("assistant", "calling"))
    assert call.messages[0].content == "calling" and call.tool_calls[0].id == "a"
