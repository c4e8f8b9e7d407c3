"""The session DB (:class:`Sessions`): sessions with heartbeats and stale-session cleanup, stored
through the driver.

Layout::

    session         {session_id}             the session record; changed by compare-and-set
    session.status  {status}/{session_id}    index: sessions by status (added before a status
                                             change, removed after; readers check the record,
                                             so a stale entry is skipped, never believed)

Session ids are UUIDv7, so key order is creation order and every list is newest first by a
reverse range scan. A heartbeat (:meth:`Sessions.touch`) rewrites only the record, never an index.

Touch against cleanup: both are compare-and-set on the record, so exactly one of them applies to
a given version. A touch that loses re-reads the record: if the session is still active it
tries again; if cleanup marked it stale in the meantime, the touch raises ConflictError and the
session stays stale. Stale is final for heartbeats because whoever ran the cleanup may already
have acted on it (released the session's resources); the client opens a new session.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

from runtime_core import (
    Clock,
    ConflictError,
    Driver,
    NotFoundError,
    Serializer,
    Session,
    SessionStatus,
    SystemClock,
    ValidationError,
    new_id,
    validate_id,
)

from runtime_persistence.storage.serialization import EnvelopeSerializer

__all__ = ["SESSION_NS", "SESSION_STATUS_NS", "Sessions"]

SESSION_NS = "session"
SESSION_STATUS_NS = "session.status"
_MAX_LIMIT = 10_000
_MAX_TRIES = 100
_MARK = b"\x01"


class _Unchanged(Exception):
    """Raised inside a change function to leave the record as it is."""


def _check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= _MAX_LIMIT:
        raise ValidationError(f"limit must be an integer from 0 to {_MAX_LIMIT}, got {limit!r:.40}")
    return limit


class Sessions:
    """:class:`runtime_core.SessionStore` over any driver.

    Every change is a compare-and-set on the session record, so concurrent heartbeats, closes and
    cleanups from any number of processes never overwrite each other. ``clock`` is injectable so
    staleness can be tested without sleeping; processes sharing a store should agree on the time
    (``last_seen_at`` is wall-clock). Every write is as durable as the driver (durable by default)
    when the call returns."""

    def __init__(
        self, driver: Driver, *, clock: Clock | None = None, serializer: Serializer | None = None
    ) -> None:
        self._driver = driver
        self._clock: Clock = clock or SystemClock()
        self._ser: Serializer = serializer or EnvelopeSerializer()

    def _read(self, session_id: str) -> tuple[Session, int]:
        validate_id(session_id, "session id")
        entry = self._driver.get(SESSION_NS, session_id)
        if entry is None:
            raise NotFoundError(f"session {session_id} not found")
        return self._ser.loads(entry.value, Session), entry.version

    def open(self, name: str = "", *, metadata: dict[str, Any] | None = None) -> Session:
        """Start a new active session. Raises ValidationError (nothing written) on a bad name or
        metadata."""
        now = self._clock.now()
        session = Session(
            id=new_id(), created_at=now, last_seen_at=now, name=name, metadata=dict(metadata or {})
        )
        data = self._ser.dumps(session)
        self._driver.put(SESSION_STATUS_NS, f"{session.status.value}/{session.id}", _MARK)
        self._driver.put(SESSION_NS, session.id, data, if_absent=True)
        return session

    def get(self, session_id: str) -> Session:
        """The session. Raises NotFoundError, ValidationError for a malformed id."""
        return self._read(session_id)[0]

    def _change(self, session_id: str, fn: Callable[[Session], Session]) -> tuple[Session, bool]:
        """Apply ``fn`` to the current record by compare-and-set, re-reading on each lost race.
        Returns the session as stored and whether this call changed it."""
        for _ in range(_MAX_TRIES):
            current, version = self._read(session_id)
            try:
                new = fn(current)
            except _Unchanged:
                return current, False
            moved = new.status is not current.status
            if moved:
                self._driver.put(SESSION_STATUS_NS, f"{new.status.value}/{session_id}", _MARK)
            try:
                self._driver.put(SESSION_NS, session_id, self._ser.dumps(new), if_version=version)
            except ConflictError:
                continue
            if moved:
                self._driver.delete(SESSION_STATUS_NS, f"{current.status.value}/{session_id}")
            return new, True
        raise ConflictError(f"session {session_id} kept changing; try again")

    def touch(self, session_id: str) -> Session:
        """Record a heartbeat: ``last_seen_at`` becomes now. Raises NotFoundError, and
        ConflictError if the session is closed or was marked stale (also when cleanup wins a race
        with this touch): open a new session then."""

        def heartbeat(current: Session) -> Session:
            if current.status is not SessionStatus.ACTIVE:
                raise ConflictError(
                    f"session {session_id} is {current.status.value}; it takes no heartbeats (open a new one)"
                )
            return replace(current, last_seen_at=max(current.last_seen_at, self._clock.now()))

        return self._change(session_id, heartbeat)[0]

    def close(self, session_id: str) -> Session:
        """End the session (active or stale become closed). Closing a closed session returns it
        unchanged. Raises NotFoundError."""

        def close(current: Session) -> Session:
            if current.status is SessionStatus.CLOSED:
                raise _Unchanged
            return replace(current, status=SessionStatus.CLOSED)

        return self._change(session_id, close)[0]

    def list(self, *, status: SessionStatus | None = None, limit: int = 50) -> builtins.list[Session]:
        """Sessions newest first, optionally only those in ``status`` (read through the status
        index, so it costs what it returns, not the whole table)."""
        _check_limit(limit)
        wanted = SessionStatus(status) if status is not None else None
        out: builtins.list[Session] = []
        if limit == 0:
            return out
        for session in self._candidates(wanted, limit, reverse=True):
            if wanted is None or session.status is wanted:
                out.append(session)
                if len(out) == limit:
                    break
        return out

    def cleanup_stale(self, older_than: timedelta) -> builtins.list[str]:
        """Mark every active session whose last heartbeat is ``older_than`` ago or more as stale
        and return their ids (in creation order). Each mark is a compare-and-set: a session touched
        meanwhile is re-read and kept active if it is now fresh. Running it twice, or in two
        processes at once, marks each session once."""
        if not isinstance(older_than, timedelta) or older_than < timedelta(0):
            raise ValidationError(f"older_than must be a non-negative timedelta, got {older_than!r:.60}")
        cutoff = self._clock.now() - older_than
        marked: builtins.list[str] = []

        def mark(current: Session) -> Session:
            if current.status is not SessionStatus.ACTIVE or current.last_seen_at > cutoff:
                raise _Unchanged
            return replace(current, status=SessionStatus.STALE)

        # a forward scan with a cursor is safe while marking removes entries already passed
        for session in self._candidates(SessionStatus.ACTIVE, 256, reverse=False):
            if session.status is not SessionStatus.ACTIVE or session.last_seen_at > cutoff:
                continue
            if self._change(session.id, mark)[1]:
                marked.append(session.id)
        return marked

    def _candidates(self, status: SessionStatus | None, page: int, *, reverse: bool) -> Iterator[Session]:
        """Sessions from the status index (or every session), in id order, page by page."""
        ns, prefix = (SESSION_STATUS_NS, f"{status.value}/") if status is not None else (SESSION_NS, "")
        cursor: str | None = None
        page = page + 1
        while True:
            if reverse:
                scan = self._driver.scan(ns, prefix=prefix, before=cursor, reverse=True, limit=page)
            else:
                scan = self._driver.scan(ns, prefix=prefix, after=cursor, limit=page)
            entries = builtins.list(scan)
            for entry in entries:
                if ns == SESSION_NS:
                    yield self._ser.loads(entry.value, Session)
                    continue
                found = self._driver.get(SESSION_NS, entry.key[len(prefix) :])
                if found is not None:
                    yield self._ser.loads(found.value, Session)
            if len(entries) < page:
                return
            cursor = entries[-1].key
            page = min(page * 2, 1024)
