# Generated from packages/runtime-persistence/src/runtime_persistence/session/_async/tasks.py by scripts/gen_sync.py: edit that file and rerun the script.
"""The task repository (:class:`Tasks`): a hierarchy of work items with checked status
transitions, progress and append-only logs, stored through the driver. Written once as async
code in ``session/_async/``; the sync twin in ``session/_sync/`` is generated from it.

Layout::

    task        {task_id}                 the task record; changed by compare-and-set
    task.child  {parent_id}/{task_id}     index: children of a task (written before the child's
                                          record and never changed; an entry whose record is
                                          missing, left by a crash, is skipped)
    task.log    {task_id}/{log_id}        log lines, create-only; log ids are UUIDv7, so a
                                          prefix scan returns them in time order

Task ids are UUIDv7 too, so children come back in creation order without sorting.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from runtime_core import (
    ConflictError,
    Task,
    TaskLog,
    TaskStatus,
    ValidationError,
    check_transition,
    new_id,
    validate_id,
)

from runtime_persistence.session._records import MARK, MAX_TRIES, TASK_CHILD_NS, TASK_LOG_NS, TASK_NS
from runtime_persistence.session._sync._repository import Repository

__all__ = ["Tasks"]

_PAGE = 511
_FINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.CANCELLED})


class Tasks(Repository[Task]):
    """Tasks over any driver (the sync class implements :class:`runtime_core.TaskRepository`;
    the async one has the same methods, guarantees and errors).

    A status change is checked by :func:`runtime_core.check_transition` against the status it was
    read with and written by compare-and-set, so of two concurrent transitions of one task exactly
    one wins and the other raises ConflictError: a process never moves a task from a status it did
    not see. Progress updates retry on a lost race (they do not depend on the status they read,
    except that a completed or cancelled task takes none). Every write is as durable as the driver
    (durable by default) when the call returns. ``clock`` stamps ``created_at``, ``updated_at``
    and log times."""

    _record = Task
    _ns = TASK_NS
    _what = "task"

    def create(
        self,
        title: str,
        *,
        parent_id: str | None = None,
        assignee: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Task:
        """Store a new pending task, under ``parent_id`` if given. Raises ValidationError (nothing
        written) on bad input, NotFoundError if the parent does not exist."""
        now = self._clock.now()
        task = Task(
            id=new_id(),
            title=title,
            created_at=now,
            updated_at=now,
            parent_id=parent_id,
            assignee=assignee,
            metadata=metadata if metadata is not None else {},
        )
        data = self._ser.dumps(task, at=(TASK_NS, task.id))
        if parent_id is not None:
            self._read(parent_id, "parent task id")
            self._driver.put(TASK_CHILD_NS, f"{parent_id}/{task.id}", MARK)
        self._driver.put(TASK_NS, task.id, data, if_absent=True)
        return task

    def get(self, task_id: str) -> Task:
        """The task. Raises NotFoundError, ValidationError for a malformed id."""
        return (self._read(task_id))[0]

    def transition(self, task_id: str, status: TaskStatus) -> Task:
        """Move the task to ``status`` (completing it also sets its progress to 1). Raises
        ValidationError if the move is not allowed from the status read, ConflictError if another
        process changed the task's status in the meantime (re-read and decide again),
        NotFoundError."""
        for _ in range(MAX_TRIES):
            current, version = self._read(task_id)
            check_transition(current.status, status)
            new_status = TaskStatus(status)
            new = replace(
                current,
                status=new_status,
                updated_at=self._now(current),
                progress=1.0 if new_status is TaskStatus.COMPLETED else current.progress,
            )
            try:
                self._driver.put(
                    TASK_NS, task_id, self._ser.dumps(new, at=(TASK_NS, task_id)), if_version=version
                )
            except ConflictError:
                latest, _ = self._read(task_id)
                if latest.status is current.status:
                    continue  # only progress moved: the transition is still the one we checked
                raise ConflictError(
                    f"task {task_id} became {latest.status.value} while moving it from "
                    f"{current.status.value} to {new_status.value}; re-read and decide again"
                ) from None
            return new
        raise ConflictError(f"task {task_id} kept changing; try again")

    def set_progress(self, task_id: str, progress: float) -> Task:
        """Set the task's progress (0 to 1). Raises ValidationError on a bad value, ConflictError
        if the task is completed or cancelled, NotFoundError."""

        def change(current: Task) -> Task:
            if current.status in _FINAL:
                raise ConflictError(f"task {task_id} is {current.status.value}; its progress is final")
            return replace(current, progress=progress, updated_at=self._now(current))

        return (self._change(task_id, change))[0]

    def _now(self, current: Task) -> datetime:
        return max(current.updated_at, self._clock.now())

    def children(self, task_id: str) -> list[Task]:
        """The direct children of the task, in creation order, read through the parent index
        (never a scan of every task). Raises NotFoundError if the task does not exist."""
        self._read(task_id)
        return [task for task in self._candidates(TASK_CHILD_NS, f"{task_id}/", _PAGE, reverse=False)]

    def log(self, task_id: str, message: str, *, level: str = "info") -> TaskLog:
        """Append a log line to the task (create-only; never rewritten). Raises ValidationError
        on a bad message or level, NotFoundError if the task does not exist."""
        validate_id(task_id, "task id")
        line = TaskLog(task_id=task_id, at=self._clock.now(), message=message, level=level)
        key = f"{task_id}/{new_id()}"
        data = self._ser.dumps(line, at=(TASK_LOG_NS, key))
        self._read(task_id)
        self._driver.put(TASK_LOG_NS, key, data, if_absent=True)
        return line

    def logs(self, task_id: str, *, limit: int | None = None) -> list[TaskLog]:
        """The task's log lines oldest first (time order of their UUIDv7 keys, to the
        millisecond across processes), at most ``limit`` (all when None). Raises NotFoundError."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValidationError(f"limit must be a non-negative integer or None, got {limit!r:.40}")
        self._read(task_id)
        return [
            self._ser.loads(entry.value, TaskLog, at=(TASK_LOG_NS, entry.key))
            for entry in self._driver.scan(TASK_LOG_NS, prefix=f"{task_id}/", limit=limit)
        ]
