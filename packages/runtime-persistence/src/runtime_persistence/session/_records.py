"""The I/O-free half of the session repositories: key layouts, limits and small checks, shared
by the async sources in ``_async/`` and the sync classes generated from them in ``_sync/``."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from runtime_core import (
    SESSION_FORMAT_VERSION,
    CorruptionError,
    Event,
    EventLog,
    Session,
    SessionStatus,
    ValidationError,
)

__all__ = ["AsyncEventLog", "EventLog"]  # EventLog: what AsyncEventLog becomes in the sync twins

SESSION_NS = "session"
SESSION_STATUS_NS = "session.status"
RUN_NS = "run"
RUN_THREAD_NS = "run.thread"
RUN_STATUS_NS = "run.status"
TASK_NS = "task"
TASK_CHILD_NS = "task.child"
TASK_LOG_NS = "task.log"
TASK_EXTERNAL_NS = "task.external"
TASK_ROOT = "root"  # the parent part of a root task's entry in the child index: root/{task_id}
TASK_INDEX_NS = "task.index"  # which indexes a store has: ``roots`` once root tasks are indexed
TASK_ROOTS_INDEXED = "roots"
SESSION_THREAD_NS = "session.thread"
SESSION_RUN_NS = "session.run"
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


@dataclass(slots=True)
class StoredSession:
    """A session record as stored, in any format version: what the repository decodes before
    :func:`upgrade_session` brings it to the current :class:`runtime_core.Session`. A record
    without ``format_version`` is version 1 (sessions before links and ``ended_at``)."""

    id: str
    created_at: datetime
    last_seen_at: datetime
    name: str = ""
    status: str = "active"
    metadata: dict[str, Any] = field(default_factory=dict)
    thread_ids: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    ended_at: datetime | None = None
    format_version: int = 1


def upgrade_session(stored: StoredSession) -> tuple[Session, bool]:
    """The current :class:`Session` for a stored record, and whether it was an older format.

    Version 1 -> 2: no links yet; a closed or stale session ended when it was last seen (the best
    the old record knows). CorruptionError for a version newer than this code knows or a record
    that fails validation."""
    version = stored.format_version
    if isinstance(version, bool) or not 1 <= version <= SESSION_FORMAT_VERSION:
        raise CorruptionError(
            f"session {stored.id!r:.60} is in record format {version!r:.20}; this keepup reads formats "
            f"1 to {SESSION_FORMAT_VERSION} (upgrade keepup to read it)"
        )
    ended_at = stored.ended_at
    if version == 1 and stored.status != SessionStatus.ACTIVE.value:
        ended_at = stored.last_seen_at
    try:
        session = Session(
            id=stored.id,
            created_at=stored.created_at,
            last_seen_at=stored.last_seen_at,
            name=stored.name,
            status=SessionStatus(stored.status),
            metadata=stored.metadata,
            thread_ids=tuple(stored.thread_ids),
            run_ids=tuple(stored.run_ids),
            ended_at=ended_at,
            format_version=SESSION_FORMAT_VERSION,
        )
    except (ValidationError, ValueError) as exc:
        raise CorruptionError(f"session record failed validation: {exc}") from exc
    return session, version != SESSION_FORMAT_VERSION
