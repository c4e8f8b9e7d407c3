"""The tool registry: schemas from type hints, validation, timeouts, failures as results, spilling."""

from __future__ import annotations

import enum
import threading
import time
from typing import Annotated, Any, Literal

import pytest
from runtime_core import (
    ArtifactRef,
    ConflictError,
    NotFoundError,
    ToolCall,
    ToolDescription,
    ToolInvoker,
    ValidationError,
)
from runtime_telemetry import StructuredTelemetry
from runtime_tools import ToolContext, ToolError, ToolRegistry, ToolSpec, schema_from_function


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


def sample(
    path: str,
    count: int,
    ratio: float = 0.5,
    flag: bool = False,
    tags: list[str] | None = None,
    mode: Literal["a", "b"] = "a",
    color: Color = Color.RED,
    extra: dict[str, int] | None = None,
    note: Annotated[str, "a free note"] = "",
    context: ToolContext | None = None,
) -> str:
    """Do a sample thing.

    More text that is not the summary.

    Args:
        path: where to do it.
        count: how many times,
            on two lines.
    """
    return path


def test_schema_is_derived_from_type_hints_and_docstring() -> None:
    schema = schema_from_function(sample)
    props = schema["properties"]
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["required"] == ["path", "count"]
    assert props["path"] == {"type": "string", "description": "where to do it."}
    assert props["count"] == {"type": "integer", "description": "how many times, on two lines."}
    assert props["ratio"] == {"type": "number", "default": 0.5}
    assert props["flag"] == {"type": "boolean", "default": False}
    assert props["tags"] == {
        "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
        "default": None,
    }
    assert props["mode"] == {"enum": ["a", "b"], "default": "a"}
    assert props["color"] == {"enum": ["red", "blue"], "default": "red"}
    assert props["extra"]["anyOf"][0] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert props["note"] == {"type": "string", "description": "a free note", "default": ""}
    assert "context" not in props


def test_spec_from_function_takes_name_and_summary() -> None:
    spec = ToolSpec.from_function(sample)
    assert spec.name == "sample"
    assert spec.description == "Do a sample thing."
    assert spec.context_param == "context"


@pytest.mark.parametrize(
    "bad",
    [
        lambda *args: None,
        lambda **kw: None,
    ],
)
def test_variadic_functions_are_refused(bad: Any) -> None:
    with pytest.raises(ValidationError):
        ToolSpec.from_function(bad, name="bad")


def test_type_without_schema_is_refused_with_a_hint() -> None:
    def f(x: set[int]) -> None:
        return None

    with pytest.raises(ValidationError, match="explicitly"):
        ToolSpec.from_function(f)


def test_explicit_schema_is_used_and_checked() -> None:
    def f(**kw: Any) -> Any:
        return kw

    spec = ToolSpec(
        name="f",
        description="d",
        parameters={"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
        function=f,
    )
    reg = ToolRegistry()
    reg.register(spec)
    assert reg.invoke(ToolCall("c1", "f", {"a": 1})).output == {"a": 1}
    with pytest.raises(ValidationError, match="schema"):
        ToolSpec(name="g", description="", parameters={"type": "object", "properties": 3}, function=f)
    with pytest.raises(ValidationError):
        ToolSpec(name="bad name!", description="", parameters={"type": "object"}, function=f)


def test_register_as_bare_and_configured_decorator() -> None:
    reg = ToolRegistry()

    @reg.register
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @reg.register(name="mul", description="Multiply.")
    def multiply(a: int, b: int) -> int:
        return a * b

    assert add(1, 2) == 3  # the decorator returns the function unchanged
    assert reg.names() == ["add", "mul"]
    assert [d.name for d in reg.describe()] == ["add", "mul"]
    assert isinstance(reg.describe()[0], ToolDescription)
    assert reg.get("mul").description == "Multiply."
    assert "add" in reg and len(reg) == 2
    assert isinstance(reg, ToolInvoker)


def test_duplicate_names_conflict_and_unknown_names_are_not_found() -> None:
    reg = ToolRegistry()
    reg.register(lambda: 1, name="one")
    with pytest.raises(ConflictError):
        reg.register(lambda: 2, name="one")
    with pytest.raises(NotFoundError):
        reg.get("two")
    reg.unregister("one")
    with pytest.raises(NotFoundError):
        reg.unregister("one")


def test_invoke_returns_result_record_with_arguments_and_duration() -> None:
    reg = ToolRegistry()
    reg.register(lambda a, b: a + b, name="add", parameters={"type": "object"})
    result = reg.invoke(ToolCall("call-1", "add", {"a": 2, "b": 3}))
    assert result.success and result.output == 5 and result.error is None
    assert result.call_id == "call-1" and result.name == "add" and result.arguments == {"a": 2, "b": 3}
    assert result.duration_ms >= 0


def test_invalid_arguments_fail_without_running_the_tool() -> None:
    ran = []
    reg = ToolRegistry()

    @reg.register
    def f(n: int) -> int:
        ran.append(n)
        return n

    for args in ({}, {"n": "x"}, {"n": 1, "other": 2}, {"n": True}):
        result = reg.invoke(ToolCall("c", "f", args))
        assert not result.success and result.error is not None
        assert result.error.startswith("invalid arguments")
    assert ran == []


def test_unknown_tool_is_a_failed_result() -> None:
    result = ToolRegistry().invoke(ToolCall("c", "nope", {}))
    assert not result.success and "unknown tool" in (result.error or "")


def test_tool_exception_is_a_failed_result_never_raised() -> None:
    reg = ToolRegistry()

    @reg.register
    def boom() -> None:
        raise RuntimeError("it broke")

    result = reg.invoke(ToolCall("c", "boom", {}))
    assert not result.success and result.error == "RuntimeError: it broke"


def test_tool_error_keeps_output() -> None:
    reg = ToolRegistry()

    @reg.register
    def partial() -> None:
        raise ToolError("half done", output={"done": 1})

    result = reg.invoke(ToolCall("c", "partial", {}))
    assert not result.success and result.error == "half done" and result.output == {"done": 1}


def test_timeout_returns_a_failed_result_promptly() -> None:
    release = threading.Event()
    reg = ToolRegistry()

    @reg.register
    def slow() -> str:
        release.wait(5)
        return "late"

    started = time.monotonic()
    result = reg.invoke(ToolCall("c", "slow", {}), timeout=0.1)
    release.set()
    assert not result.success and "timed out" in (result.error or "")
    assert time.monotonic() - started < 4


def test_context_carries_call_id_and_deadline() -> None:
    seen: list[ToolContext] = []
    reg = ToolRegistry(default_timeout=30)

    @reg.register
    def who(context: ToolContext) -> str:
        seen.append(context)
        return context.call_id

    assert reg.invoke(ToolCall("call-7", "who", {})).output == "call-7"
    assert seen[0].tool == "who"
    remaining = seen[0].remaining()
    assert remaining is not None and 0 < remaining <= 30


def test_non_plain_output_is_a_failed_result() -> None:
    reg = ToolRegistry()
    reg.register(object, name="obj", parameters={"type": "object"})
    result = reg.invoke(ToolCall("c", "obj", {}))
    assert not result.success and "plain data" in (result.error or "")


class _RecordingSink:
    """A test double of core's OutputSink Protocol that keeps what it is given."""

    def __init__(self) -> None:
        self.stored: dict[str, tuple[bytes, str]] = {}

    def store_output(self, call_id: str, data: bytes, media_type: str) -> ArtifactRef:
        self.stored[call_id] = (data, media_type)
        return ArtifactRef(scope="tool-outputs", key=call_id, version=0)


def test_large_text_output_goes_to_the_sink_with_a_preview() -> None:
    sink = _RecordingSink()
    reg = ToolRegistry(output_sink=sink, inline_limit=100)
    reg.register(lambda: "x" * 5000, name="big")
    result = reg.invoke(ToolCall("c1", "big", {}))
    assert result.success
    assert result.output["truncated"] is True and result.output["size"] == 5000
    assert len(result.output["preview"]) == 100
    assert result.output["artifact"] == {"scope": "tool-outputs", "key": "c1", "version": 0}
    assert sink.stored["c1"][0] == b"x" * 5000


def test_large_field_of_a_dict_output_is_spilled_alone() -> None:
    sink = _RecordingSink()
    reg = ToolRegistry(output_sink=sink, inline_limit=100)
    reg.register(lambda: {"exit_code": 0, "stdout": "y" * 1000}, name="cmd")
    out = reg.invoke(ToolCall("c2", "cmd", {})).output
    assert out["exit_code"] == 0
    assert out["stdout"]["truncated"] is True and out["stdout"]["artifact"]["key"] == "c2.stdout"


def test_small_output_stays_inline_and_no_sink_keeps_only_a_preview() -> None:
    reg = ToolRegistry(inline_limit=100)
    reg.register(lambda: "small", name="s")
    reg.register(lambda: "z" * 500, name="b")
    assert reg.invoke(ToolCall("c", "s", {})).output == "small"
    out = reg.invoke(ToolCall("c", "b", {})).output
    assert out["truncated"] and "artifact" not in out and out["size"] == 500


def test_telemetry_records_each_invocation() -> None:
    telemetry = StructuredTelemetry()
    reg = ToolRegistry(telemetry=telemetry)
    reg.register(lambda: 1, name="one")
    reg.invoke(ToolCall("c", "one", {}))
    events = telemetry.recent_events("tool.invoke")
    assert len(events) == 1
    assert events[0].fields["tool"] == "one" and events[0].fields["success"] is True
    assert "duration_ms" in events[0].fields
