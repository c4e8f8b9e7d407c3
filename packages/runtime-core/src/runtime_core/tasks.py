"""Tasks: a hierarchy of work items with checked status transitions, progress and logs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from runtime_core._validation import check_aware, check_enum, check_metadata, check_name
from runtime_core.errors import ValidationError
from runtime_core.ids import validate_id

__all__ = ["TASK_TRANSITIONS", "Task", "TaskLog", "TaskRepository", "TaskStatus", "check_transition"]


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    BLOCKED = "blocked"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TASK_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELLED, TaskStatus.BLOCKED}),
    TaskStatus.RUNNING: frozenset(
        {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.BLOCKED}
    ),
    TaskStatus.BLOCKED: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELLED, TaskStatus.PENDING}),
    TaskStatus.FAILED: frozenset({TaskStatus.PENDING}),  # retry
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}


_LOG_LEVELS = ("debug", "info", "warning", "error")


def check_transition(old: TaskStatus, new: TaskStatus) -> None:
    """Raise ValidationError unless a task may move from ``old`` to ``new``."""
    old = check_enum(old, TaskStatus, "task status")
    new = check_enum(new, TaskStatus, "task status")
    if new not in TASK_TRANSITIONS[old]:
        allowed = ", ".join(sorted(s.value for s in TASK_TRANSITIONS[old])) or "nothing"
        raise ValidationError(f"a {old.value} task cannot become {new.value} (allowed: {allowed})")


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    status: TaskStatus = TaskStatus.PENDING
    parent_id: str | None = None
    progress: float = 0.0
    assignee: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_id(self.id, "task id")
        check_name(self.title, "task title", allow_empty=False)
        check_aware(self.created_at, "created_at")
        check_aware(self.updated_at, "updated_at")
        object.__setattr__(self, "status", check_enum(self.status, TaskStatus, "task status"))
        if self.parent_id is not None:
            validate_id(self.parent_id, "parent task id")
        if (
            isinstance(self.progress, bool)
            or not isinstance(self.progress, (int, float))
            or not 0.0 <= self.progress <= 1.0
        ):
            raise ValidationError(f"task progress must be between 0 and 1, got {self.progress!r}")
        if self.assignee is not None:
            check_name(self.assignee, "assignee", allow_empty=False)
        object.__setattr__(self, "metadata", check_metadata(self.metadata, "task metadata"))


@dataclass(frozen=True, slots=True)
class TaskLog:
    task_id: str
    at: datetime
    message: str
    level: str = "info"

    def __post_init__(self) -> None:
        validate_id(self.task_id, "task id")
        check_aware(self.at, "at")
        if not isinstance(self.message, str):
            raise ValidationError("a task log message must be a string")
        if self.level not in _LOG_LEVELS:
            raise ValidationError(
                f"task log level must be one of {', '.join(_LOG_LEVELS)}; got {self.level!r:.40}"
            )


@runtime_checkable
class TaskRepository(Protocol):
    def create(
        self,
        title: str,
        *,
        parent_id: str | None = None,
        assignee: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Task: ...

    def get(self, task_id: str) -> Task: ...

    def transition(self, task_id: str, status: TaskStatus) -> Task:
        """Move a task to ``status``; ValidationError if the transition is not allowed,
        ConflictError if the task changed underneath."""
        ...

    def set_progress(self, task_id: str, progress: float) -> Task: ...

    def children(self, task_id: str) -> list[Task]: ...

    def log(self, task_id: str, message: str, *, level: str = "info") -> TaskLog: ...

    def logs(self, task_id: str) -> list[TaskLog]: ...
