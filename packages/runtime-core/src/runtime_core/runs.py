"""The standard state an agent runtime keeps, and the rules for recovering a run after a crash."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from runtime_core._validation import (
    check_aware,
    check_enum,
    check_metadata,
    check_name,
    check_non_negative,
    check_plain,
)
from runtime_core.errors import RecoveryRefusedError, ValidationError
from runtime_core.ids import validate_id

__all__ = [
    "Message",
    "RecoveryPlan",
    "Run",
    "RunError",
    "RunState",
    "RunStatus",
    "ToolCall",
    "ToolCallResult",
    "prepare_recovery",
]

_ROLES = frozenset({"system", "user", "assistant", "tool"})


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a conversation."""

    role: str
    content: str
    name: str | None = None
    tool_call_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise ValidationError(f"message role must be one of {sorted(_ROLES)}, got {self.role!r:.40}")
        if not isinstance(self.content, str):
            raise ValidationError("message content must be a string")
        check_plain(self.content, "message content")
        if self.name is not None:
            check_name(self.name, "message name", allow_empty=False)
        if self.tool_call_id is not None:
            check_name(self.tool_call_id, "message tool call id", allow_empty=False)
        object.__setattr__(self, "metadata", check_metadata(self.metadata, "message metadata"))


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call an agent asked for. ``id`` is unique within the run."""

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name(self.id, "tool call id", allow_empty=False)
        check_name(self.name, "tool name", allow_empty=False)
        object.__setattr__(self, "arguments", check_metadata(self.arguments, "tool arguments"))


@dataclass(frozen=True, slots=True)
class ToolCallResult:
    """What one tool call returned (or the error it raised) and how long it took."""

    call_id: str
    name: str
    arguments: dict[str, Any]
    success: bool
    output: Any = None
    error: str | None = None
    duration_ms: float = 0.0

    def __post_init__(self) -> None:
        check_name(self.call_id, "tool call id", allow_empty=False)
        check_name(self.name, "tool name", allow_empty=False)
        object.__setattr__(self, "arguments", check_metadata(self.arguments, "tool arguments"))
        if not isinstance(self.success, bool):
            raise ValidationError(f"tool call success must be a bool, got {self.success!r:.40}")
        check_plain(self.output, "tool output")
        if self.error is not None and not isinstance(self.error, str):
            raise ValidationError("a tool call error must be a string")
        if not self.success and not self.error:
            raise ValidationError("a failed tool call result must carry an error message")
        if (
            isinstance(self.duration_ms, bool)
            or not isinstance(self.duration_ms, (int, float))
            or not 0 <= self.duration_ms < float("inf")
        ):
            raise ValidationError(f"duration_ms must be a non-negative number, got {self.duration_ms!r:.40}")


@dataclass(frozen=True, slots=True)
class RunError:
    """Why a run failed; ``recoverable`` says whether resuming it makes sense."""

    message: str
    code: str = "error"
    recoverable: bool = True

    def __post_init__(self) -> None:
        check_name(self.code, "run error code", allow_empty=False)
        if not isinstance(self.message, str):
            raise ValidationError("a run error message must be a string")
        if not isinstance(self.recoverable, bool):
            raise ValidationError(f"run error recoverable must be a bool, got {self.recoverable!r:.40}")


@dataclass(frozen=True, slots=True)
class RunState:
    """Messages, tool calls, step counter, status and error of one run.

    Stored in a checkpoint as channels (see :meth:`to_channels`), so that the messages list, which
    grows at the end, is shared between consecutive checkpoints by the content-addressed store."""

    messages: tuple[Message, ...] = ()
    pending_tool_calls: tuple[ToolCall, ...] = ()
    completed_tool_calls: tuple[ToolCallResult, ...] = ()
    step: int = 0
    max_steps: int | None = None
    status: RunStatus = RunStatus.PENDING
    error: RunError | None = None

    def __post_init__(self) -> None:
        for what, items, kind in (
            ("messages", self.messages, Message),
            ("pending_tool_calls", self.pending_tool_calls, ToolCall),
            ("completed_tool_calls", self.completed_tool_calls, ToolCallResult),
        ):
            if not isinstance(items, tuple) or not all(isinstance(i, kind) for i in items):
                raise ValidationError(f"run state {what} must be a tuple of {kind.__name__}")
        check_non_negative(self.step, "step")
        object.__setattr__(self, "status", check_enum(self.status, RunStatus, "run status"))
        if self.error is not None and not isinstance(self.error, RunError):
            raise ValidationError("run state error must be a RunError or None")
        if self.max_steps is not None and (
            isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps < 1
        ):
            raise ValidationError(f"max_steps must be a positive integer or None, got {self.max_steps!r}")
        ids = [c.id for c in self.pending_tool_calls]
        if len(set(ids)) != len(ids):
            raise ValidationError("pending tool call ids must be unique")

    def evolve(self, **changes: Any) -> RunState:
        """A copy with ``changes`` applied (validated again)."""
        return replace(self, **changes)

    def to_channels(self) -> dict[str, Any]:
        """Plain-data channels for a checkpoint's state."""
        return {
            "messages": [_message_to_plain(m) for m in self.messages],
            "pending_tool_calls": [
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in self.pending_tool_calls
            ],
            "completed_tool_calls": [_result_to_plain(r) for r in self.completed_tool_calls],
            "step": self.step,
            "max_steps": self.max_steps,
            "status": self.status.value,
            "error": None
            if self.error is None
            else {
                "message": self.error.message,
                "code": self.error.code,
                "recoverable": self.error.recoverable,
            },
        }

    @classmethod
    def from_channels(cls, channels: Mapping[str, Any]) -> RunState:
        """Rebuild a run state from :meth:`to_channels` output; raises ValidationError if malformed."""
        if not isinstance(channels, Mapping):
            raise ValidationError(f"a run state is a mapping of channels, got {type(channels).__name__}")
        try:
            err = channels.get("error")
            return cls(
                messages=tuple(Message(**m) for m in channels.get("messages", ())),
                pending_tool_calls=tuple(ToolCall(**c) for c in channels.get("pending_tool_calls", ())),
                completed_tool_calls=tuple(
                    ToolCallResult(**r) for r in channels.get("completed_tool_calls", ())
                ),
                step=channels.get("step", 0),
                max_steps=channels.get("max_steps"),
                status=check_enum(channels.get("status", "pending"), RunStatus, "run status"),
                error=None if err is None else RunError(**err),
            )
        except (TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, ValidationError):
                raise
            raise ValidationError(f"checkpoint state is not a run state: {exc}") from exc


def _message_to_plain(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.name is not None:
        out["name"] = m.name
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    if m.metadata:
        out["metadata"] = m.metadata
    return out


def _result_to_plain(r: ToolCallResult) -> dict[str, Any]:
    return {
        "call_id": r.call_id,
        "name": r.name,
        "arguments": r.arguments,
        "success": r.success,
        "output": r.output,
        "error": r.error,
        "duration_ms": r.duration_ms,
    }


@dataclass(frozen=True, slots=True)
class RecoveryPlan:
    """How to resume a run: from which step, which tool calls already ran (their results are
    reused, never re-run) and which must run again."""

    resume_step: int
    completed: tuple[ToolCallResult, ...]
    to_run: tuple[ToolCall, ...]


def prepare_recovery(state: RunState, pending_results: Iterable[ToolCallResult] = ()) -> RecoveryPlan:
    """Decide how to resume ``state`` given the tool results written after its checkpoint.

    Raises RecoveryRefusedError for completed or cancelled runs and for runs that failed with a
    non-recoverable error."""
    if state.status is RunStatus.COMPLETED:
        raise RecoveryRefusedError("the run already completed; fork or replay it instead")
    if state.status is RunStatus.CANCELLED:
        raise RecoveryRefusedError("the run was cancelled; fork or replay it instead")
    if state.status is RunStatus.FAILED and (state.error is None or not state.error.recoverable):
        reason = state.error.message if state.error else "no error recorded"
        raise RecoveryRefusedError(f"the run failed with a non-recoverable error: {reason}")
    done = {r.call_id: r for r in state.completed_tool_calls}
    for r in pending_results:
        done.setdefault(r.call_id, r)
    pending_ids = {c.id for c in state.pending_tool_calls}
    completed = tuple(r for cid, r in done.items() if cid in pending_ids)
    to_run = tuple(c for c in state.pending_tool_calls if c.id not in done)
    return RecoveryPlan(resume_step=state.step, completed=completed, to_run=to_run)


@dataclass(frozen=True, slots=True)
class Run:
    """The record of one run of an agent on a thread, visible from outside the process."""

    id: str
    thread_id: str
    agent: str
    status: RunStatus
    started_at: datetime
    ended_at: datetime | None = None
    steps: int = 0
    error: RunError | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    cancel_requested: bool = False

    def __post_init__(self) -> None:
        validate_id(self.id, "run id")
        validate_id(self.thread_id, "thread id")
        check_name(self.agent, "agent name", allow_empty=False)
        object.__setattr__(self, "status", check_enum(self.status, RunStatus, "run status"))
        if self.error is not None and not isinstance(self.error, RunError):
            raise ValidationError("run error must be a RunError or None")
        check_aware(self.started_at, "started_at")
        if self.ended_at is not None:
            check_aware(self.ended_at, "ended_at")
        check_non_negative(self.steps, "steps")
        object.__setattr__(self, "metadata", check_metadata(self.metadata, "run metadata"))
