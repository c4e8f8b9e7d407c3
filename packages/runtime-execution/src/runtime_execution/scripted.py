"""A scripted, deterministic agent for tests, examples and ``keepup demo``: no model, no network."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runtime_core import Message, RunState, ToolCall, ValidationError

from runtime_execution.agents import Step, StepContext

__all__ = ["ScriptItem", "ScriptedAgent", "ScriptedFailure"]

ScriptItem = (
    Step
    | Message
    | ToolCall
    | str
    | tuple[str, Mapping[str, Any]]
    | Sequence[ToolCall | tuple[str, Mapping[str, Any]]]
)
"""One step of a script: a Step; a Message or a string (an assistant message); a tool call, given
as a ToolCall or as ``(tool name, arguments)``; or a list of tool calls run in one step."""


class ScriptedFailure(RuntimeError):
    """Raised by a ScriptedAgent told to fail by raising (``raise_error=True``)."""


class ScriptedAgent:
    """Plays a fixed script, one item per step; after the last item it finishes the run.

    The step it plays is chosen by ``state.step`` alone, so the agent is deterministic: resumed
    after a crash, or replayed from a checkpoint, it makes the same decisions. Tool calls given as
    ``(name, arguments)`` get the ids ``s{step}c{index}`` (stable across runs of the same script).

    ``fail_at`` makes step number ``fail_at`` (counting from 0) fail, ``fail_times`` times per agent
    instance (default once, so resuming with the same instance then succeeds), with a recoverable
    or non-recoverable error; ``raise_error`` fails by raising ScriptedFailure instead of returning
    a failed step (the runner records that as a recoverable error).

    Example::

        agent = ScriptedAgent(
            [
                "I will write a file.",
                ("write_file", {"path": "notes.md", "content": "# Notes\\n"}),
                [("read_file", {"path": "notes.md"}), ("list_dir", {})],
            ],
            final_message="Done.",
        )
    """

    def __init__(
        self,
        script: Sequence[ScriptItem],
        *,
        name: str = "scripted",
        final_message: str | None = None,
        fail_at: int | None = None,
        fail_times: int = 1,
        recoverable: bool = True,
        fail_message: str = "scripted failure",
        raise_error: bool = False,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValidationError("an agent needs a non-empty name")
        if fail_at is not None and fail_at < 0:
            raise ValidationError("fail_at counts steps from 0")
        if fail_times < 1:
            raise ValidationError("fail_times must be at least 1")
        self._name = name
        self.steps: tuple[Step, ...] = tuple(_to_step(item, i) for i, item in enumerate(script))
        self.final_message = final_message
        self.fail_at = fail_at
        self.recoverable = recoverable
        self.fail_message = fail_message
        self.raise_error = raise_error
        self._failures_left = fail_times

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"ScriptedAgent(name={self._name!r}, steps={len(self.steps)})"

    def step(self, state: RunState, context: StepContext) -> Step:
        """The script's item number ``state.step``, or the finishing step past the end."""
        index = state.step
        if self.fail_at is not None and index == self.fail_at and self._failures_left > 0:
            self._failures_left -= 1
            if self.raise_error:
                raise ScriptedFailure(f"{self.fail_message} at step {index}")
            return Step.fail(
                f"{self.fail_message} at step {index}", code="scripted_failure", recoverable=self.recoverable
            )
        if index < len(self.steps):
            return self.steps[index]
        return Step.finish(self.final_message)

    @property
    def tool_calls(self) -> list[ToolCall]:
        """Every tool call of the script, in order."""
        return [c for s in self.steps for c in s.tool_calls]

    @classmethod
    def demo(cls, name: str = "demo") -> ScriptedAgent:
        """A short script over the built-in workspace tools (write, edit, read, list): what
        ``keepup demo`` runs. It needs a tool invoker that has those tools, in an empty workspace."""
        return cls(
            [
                "Let me write some notes.",
                ("write_file", {"path": "notes.md", "content": "# Notes\n\n- draft\n"}),
                ("edit_file", {"path": "notes.md", "old": "- draft", "new": "- reviewed"}),
                [("write_file", {"path": "todo.txt", "content": "ship it\n"}), ("list_dir", {})],
                ("read_file", {"path": "notes.md"}),
            ],
            name=name,
            final_message="The notes are written and reviewed.",
        )


def _to_step(item: ScriptItem, index: int) -> Step:
    if isinstance(item, Step):
        return item
    if isinstance(item, str):
        return Step.say(item)
    if isinstance(item, Message):
        return Step(messages=(item,))
    if isinstance(item, ToolCall):
        return Step(tool_calls=(item,))
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        return Step(tool_calls=(_to_call(item, index, 0),))
    if isinstance(item, Sequence):
        return Step(tool_calls=tuple(_to_call(c, index, j) for j, c in enumerate(item)))
    raise ValidationError(f"script item {index} is not a step, message, string or tool call: {item!r:.80}")


def _to_call(item: object, index: int, position: int) -> ToolCall:
    if isinstance(item, ToolCall):
        return item
    if (
        isinstance(item, tuple)
        and len(item) == 2
        and isinstance(item[0], str)
        and isinstance(item[1], Mapping)
    ):
        return ToolCall(id=f"s{index}c{position}", name=item[0], arguments=dict(item[1]))
    raise ValidationError(f"script item {index}: {item!r:.80} is not a tool call or (name, arguments)")
