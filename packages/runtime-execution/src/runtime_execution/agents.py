"""What the runner runs: an agent is a step function from the run state to the next actions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from runtime_core import Message, RunError, RunState, ToolCall, ToolDescription, ValidationError

__all__ = ["Agent", "Step", "StepContext"]


@dataclass(frozen=True, slots=True)
class StepContext:
    """What an agent knows about the step it is asked to make, besides the run state.

    ``tools`` describes the tools the runner can invoke (send them to a model); ``checkpoint_id``
    is the checkpoint the state was saved as (None before the first one)."""

    run_id: str
    thread_id: str
    step: int
    tools: tuple[ToolDescription, ...] = ()
    checkpoint_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Step:
    """The actions of one step: messages to append, tool calls to run, and whether the run is
    done or failed.

    A step that calls tools cannot also finish: the runner runs the calls, appends their results
    to the state and asks the agent again."""

    messages: tuple[Message, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    done: bool = False
    error: RunError | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "messages", tuple(self.messages))
        object.__setattr__(self, "tool_calls", tuple(self.tool_calls))
        if not all(isinstance(m, Message) for m in self.messages):
            raise ValidationError("a step's messages must be Message records")
        if not all(isinstance(c, ToolCall) for c in self.tool_calls):
            raise ValidationError("a step's tool calls must be ToolCall records")
        if self.done and self.error is not None:
            raise ValidationError("a step cannot both finish and fail")
        if self.tool_calls and (self.done or self.error is not None):
            raise ValidationError("a step that calls tools cannot finish or fail in the same step")
        ids = [c.id for c in self.tool_calls]
        if len(set(ids)) != len(ids):
            raise ValidationError("tool call ids must be unique within a step")

    @classmethod
    def say(cls, content: str, *, role: str = "assistant", **metadata: Any) -> Step:
        """A step that appends one message."""
        return cls(messages=(Message(role=role, content=content, metadata=metadata),))

    @classmethod
    def call(cls, *calls: ToolCall, message: Message | None = None) -> Step:
        """A step that runs ``calls`` (after appending ``message``, e.g. the model's reply)."""
        return cls(messages=() if message is None else (message,), tool_calls=calls)

    @classmethod
    def finish(cls, content: str | None = None) -> Step:
        """The last step: optionally append a final assistant message; the run completes."""
        messages = () if content is None else (Message(role="assistant", content=content),)
        return cls(messages=messages, done=True)

    @classmethod
    def fail(cls, message: str, *, code: str = "agent_failed", recoverable: bool = False) -> Step:
        """End the run as failed. A recoverable failure can be resumed; a non-recoverable one cannot."""
        return cls(error=RunError(message=message, code=code, recoverable=recoverable))


@runtime_checkable
class Agent(Protocol):
    """An agent as the runner sees it: a name (kept in the run record, used to find the agent again
    on resume) and a step function.

    ``step`` must decide from the state alone (plus whatever it reads from the outside world): the
    runner may call it again for the same state after a crash, and a deterministic agent then
    makes the same decision. Raising an exception fails the run with a recoverable error."""

    @property
    def name(self) -> str: ...

    def step(self, state: RunState, context: StepContext) -> Step: ...
