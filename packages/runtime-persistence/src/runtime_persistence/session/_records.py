"""The I/O-free half of the session repositories: key layouts, limits and small checks, shared
by the async sources in ``_async/`` and the sync classes generated from them in ``_sync/``."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from runtime_core import Event, EventLog, ValidationError

__all__ = ["AsyncEventLog", "EventLog"]  # EventLog: what AsyncEventLog becomes in the sync twins

SESSION_NS = "session"
SESSION_STATUS_NS = "session.status"
RUN_NS = "run"
RUN_THREAD_NS = "run.thread"
RUN_STATUS_NS = "run.status"
TASK_NS = "task"
TASK_CHILD_NS = "task.child"
TASK_LOG_NS = "task.log"
EVENT_NS = "event"
EVENT_TOPIC_NS = "event.topic"
MARK = b"\x01"  # the value of an index entry: the key says everything
MAX_LIMIT = 10_000
MAX_TRIES = 100


def check_limit(limit: object) -> int:
    """``limit`` if it is an integer from 0 to :data:`MAX_LIMIT`, else ValidationError."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be an integer from 0 to {MAX_LIMIT}, got {limit!r:.40}")
    return limit


def topic_prefix(topic: str) -> str:
    """The fixed-length index prefix of ``topic``: 32 hex digits of its SHA-256, then ``/``."""
    return hashlib.sha256(topic.encode("utf-8")).hexdigest()[:32] + "/"


@runtime_checkable
class AsyncEventLog(Protocol):
    """The async twin of :class:`runtime_core.EventLog` (what an ``AsyncMessageRecorder`` writes
    to): the same methods, awaited; ``read`` returns an async iterator."""

    async def append(self, event: Event) -> Event: ...

    def read(
        self, *, topic: str | None = None, after: str | None = None, limit: int = 100
    ) -> AsyncIterator[Event]: ...
