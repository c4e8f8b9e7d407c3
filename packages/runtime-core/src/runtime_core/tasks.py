"""Tasks: a hierarchy of work items with checked status transitions, progress and logs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from runtime_core._validation import check_aware, check_enum, check_metadata, check_name
from runtime_core.errors import ValidationError
from runtime_core.ids import validate_id

__all__ = [
    "MAX_DESCRIPTION_CHARS",
    "TASK_TRANSITIONS",
    "ImportedTask",
    "Task",
    "TaskImportItem",
    "TaskImportReport",
    "TaskLog",
    "TaskRepository",
    "TaskStatus",
    "TaskTreeNode",
    "check_transition",
]


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


MAX_DESCRIPTION_CHARS = 100_000


@dataclass(frozen=True, slots=True)
class Task:
    """A work item. ``description`` is free text; ``thread_id`` and ``run_id`` link the task to the
    thread and run that work on it."""

    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    status: TaskStatus = TaskStatus.PENDING
    parent_id: str | None = None
    progress: float = 0.0
    assignee: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    thread_id: str | None = None
    run_id: str | None = None

    def __post_init__(self) -> None:
        validate_id(self.id, "task id")
        if not isinstance(self.description, str):
            raise ValidationError("a task description must be a string")
        if len(self.description) > MAX_DESCRIPTION_CHARS:
            raise ValidationError(
                f"a task description is at most {MAX_DESCRIPTION_CHARS} characters, got {len(self.description)}"
            )
        if any(ord(ch) < 32 and ch not in "\n\t\r" for ch in self.description):
            raise ValidationError("a task description must not contain control characters")
        if self.thread_id is not None:
            validate_id(self.thread_id, "task thread id")
        if self.run_id is not None:
            validate_id(self.run_id, "task run id")
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


@dataclass(frozen=True, slots=True)
class TaskTreeNode:
    """One task in a tree listing: its depth below the listed root (0 for the root)."""

    depth: int
    task: Task


@dataclass(frozen=True, slots=True)
class ImportedTask:
    """A task read from another tool's store, to be imported under ``source`` (for example
    ``kilocode``). ``external_id`` is its id there; ``parent_external_id`` its parent's.
    ``logs`` are (time, level, message) triples."""

    external_id: str
    title: str
    created_at: datetime
    updated_at: datetime
    status: TaskStatus = TaskStatus.PENDING
    description: str = ""
    parent_external_id: str | None = None
    assignee: str | None = None
    progress: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)
    logs: tuple[tuple[datetime, str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class TaskImportItem:
    """What an import did with one task: ``imported`` (new), ``skipped`` (with ``reason``)."""

    external_id: str
    outcome: str
    reason: str = ""
    task_id: str | None = None
    title: str = ""


@dataclass(frozen=True, slots=True)
class TaskImportReport:
    """The outcome of an import: every task read, what happened to it, and the notes (such as
    a fallback to a backup file)."""

    source: str
    path: str
    dry_run: bool
    items: tuple[TaskImportItem, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def imported(self) -> int:
        return sum(1 for i in self.items if i.outcome == "imported")

    @property
    def skipped(self) -> int:
        return sum(1 for i in self.items if i.outcome == "skipped")
