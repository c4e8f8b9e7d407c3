"""Sessions, leases and run records: who is running what, until when."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from runtime_core._validation import check_aware, check_enum, check_metadata, check_name
from runtime_core.errors import ValidationError
from runtime_core.ids import validate_id

if TYPE_CHECKING:  # annotations only: what reads threads and checkpoints never loads the run records
    from runtime_core.runs import Run, RunStatus

__all__ = [
    "SESSION_FORMAT_VERSION",
    "Lease",
    "LeaseStore",
    "RunStore",
    "Session",
    "SessionStatus",
    "SessionStore",
    "SweepReport",
]


SESSION_FORMAT_VERSION = 2
"""The format of session records this version writes. Version 1 records (no ``format_version``,
no links, no ``ended_at``) are read and migrated forward by the session repository."""

MAX_SESSION_LINKS = 1000
"""The most threads (and, separately, runs) one session record links to."""


class SessionStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class Session:
    """A client's session with the runtime; ``last_seen_at`` moves with its heartbeats.

    ``thread_ids`` and ``run_ids`` are the threads and runs the session worked on (oldest first),
    ``ended_at`` when it was closed or marked stale (None while active), and ``format_version``
    the record format it was written in (:data:`SESSION_FORMAT_VERSION`)."""

    id: str
    created_at: datetime
    last_seen_at: datetime
    name: str = ""
    status: SessionStatus = SessionStatus.ACTIVE
    metadata: dict[str, Any] = field(default_factory=dict)
    thread_ids: tuple[str, ...] = ()
    run_ids: tuple[str, ...] = ()
    ended_at: datetime | None = None
    format_version: int = SESSION_FORMAT_VERSION

    def __post_init__(self) -> None:
        validate_id(self.id, "session id")
        check_aware(self.created_at, "created_at")
        check_aware(self.last_seen_at, "last_seen_at")
        check_name(self.name, "session name")
        object.__setattr__(self, "status", check_enum(self.status, SessionStatus, "session status"))
        object.__setattr__(self, "metadata", check_metadata(self.metadata, "session metadata"))
        for what in ("thread_ids", "run_ids"):
            links = getattr(self, what)
            if not isinstance(links, (tuple, list)):
                raise ValidationError(f"session {what} must be a sequence of ids")
            if len(links) > MAX_SESSION_LINKS:
                raise ValidationError(f"a session links at most {MAX_SESSION_LINKS} {what}")
            for link in links:
                validate_id(link, what[:-1].replace("_", " "))
            object.__setattr__(self, what, tuple(links))
        if self.ended_at is not None:
            check_aware(self.ended_at, "ended_at")
        if isinstance(self.format_version, bool) or self.format_version != SESSION_FORMAT_VERSION:
            raise ValidationError(
                f"session format_version must be {SESSION_FORMAT_VERSION}, got {self.format_version!r:.20}"
                " (older records are migrated by the session repository when read)"
            )


@dataclass(frozen=True, slots=True)
class Lease:
    """A claim on a thread by one run, valid until ``expires_at`` unless renewed (heartbeats).

    Persistence refuses to restore a thread under a live lease; an expired lease (its runner
    crashed) no longer blocks anything."""

    thread_id: str
    holder: str  # opaque token of the holder; the durable runner's start with the run id
    owner: str  # host:pid of the process, for people
    acquired_at: datetime
    expires_at: datetime

    def __post_init__(self) -> None:
        validate_id(self.thread_id, "thread id")
        check_name(self.holder, "lease holder", allow_empty=False)
        check_name(self.owner, "lease owner")
        check_aware(self.acquired_at, "acquired_at")
        check_aware(self.expires_at, "expires_at")
        if self.expires_at < self.acquired_at:
            raise ValidationError("a lease cannot expire before it was acquired")

    def is_live(self, now: datetime) -> bool:
        return now < self.expires_at


@runtime_checkable
class LeaseStore(Protocol):
    """Leases on threads, moved by compare-and-set."""

    def acquire(self, thread_id: str, holder: str, ttl: timedelta) -> Lease:
        """Take the thread; raises RuntimeBusyError if another holder has a live lease."""
        ...

    def renew(self, lease: Lease, ttl: timedelta) -> Lease:
        """Extend a lease we hold; raises ConflictError if it was lost (expired and taken)."""
        ...

    def release(self, lease: Lease) -> None: ...

    def current(self, thread_id: str) -> Lease | None:
        """The live lease on the thread, if any."""
        ...


@runtime_checkable
class RunStore(Protocol):
    """Run records, so runs can be listed, shown, cancelled and resumed from another process."""

    def create(self, run: Run) -> Run: ...

    def get(self, run_id: str) -> Run: ...

    def update(self, run: Run) -> Run: ...

    def list(
        self, *, thread_id: str | None = None, status: RunStatus | None = None, limit: int = 50
    ) -> builtins.list[Run]: ...

    def request_cancel(self, run_id: str) -> Run: ...


@runtime_checkable
class SessionStore(Protocol):
    """The session DB: sessions with heartbeats and stale-session cleanup."""

    def open(self, name: str = "", *, metadata: dict[str, Any] | None = None) -> Session: ...

    def get(self, session_id: str) -> Session: ...

    def touch(self, session_id: str) -> Session: ...

    def close(self, session_id: str) -> Session: ...

    def list(self, *, status: SessionStatus | None = None, limit: int = 50) -> builtins.list[Session]: ...

    def cleanup_stale(self, older_than: timedelta) -> builtins.list[str]:
        """Mark sessions not seen for ``older_than`` as stale; return their ids."""
        ...


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one sweep of the session DB did (or, with ``dry_run``, would do): the sessions it
    marked stale, the ones it purged, and the threads and runs of purged sessions it removed
    (only when asked) or kept (with the reason, e.g. a live lease)."""

    dry_run: bool
    marked_stale: tuple[str, ...] = ()
    purged: tuple[str, ...] = ()
    threads_deleted: tuple[str, ...] = ()
    runs_deleted: tuple[str, ...] = ()
    kept: dict[str, str] = field(default_factory=dict)
