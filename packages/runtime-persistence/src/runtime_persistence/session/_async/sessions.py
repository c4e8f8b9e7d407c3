"""The session DB (:class:`AsyncSessions`): sessions with heartbeats and stale-session cleanup,
stored through the driver. Written once as async code in ``session/_async/``; the sync twin in
``session/_sync/`` is generated from it (scripts/gen_sync.py).

Layout::

    session         {session_id}             the session record; changed by compare-and-set
    session.status  {status}/{session_id}    index: sessions by status (added before a status
                                             change, removed after; readers check the record,
                                             so a stale entry is skipped, never believed)

Session ids are UUIDv7, so key order is creation order and every list is newest first by a
reverse range scan. A heartbeat (:meth:`touch`) rewrites only the record, never an index.

Touch against cleanup: both are compare-and-set on the record, so exactly one of them applies to
a given version. A touch that loses re-reads the record: if the session is still active it
tries again; if cleanup marked it stale in the meantime, the touch raises ConflictError and the
session stays stale. Stale is final for heartbeats because whoever ran the cleanup may already
have acted on it (released the session's resources); the client opens a new session.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

from runtime_core import (
    ConflictError,
    NotFoundError,
    Session,
    SessionStatus,
    ValidationError,
    new_id,
    validate_key,
)

from runtime_persistence.session._async._repository import AsyncRepository, Unchanged
from runtime_persistence.session._message_records import SESSION_KEY_NS, SessionKey, decode_session_key
from runtime_persistence.session._records import MARK, MAX_TRIES, SESSION_NS, SESSION_STATUS_NS, check_limit

__all__ = ["AsyncSessions"]


class AsyncSessions(AsyncRepository[Session]):
    """Sessions over any driver (the sync class implements :class:`runtime_core.SessionStore`;
    the async one has the same methods, guarantees and errors).

    Every change is a compare-and-set on the session record, so concurrent heartbeats, closes and
    cleanups from any number of processes never overwrite each other. ``clock`` is injectable so
    staleness can be tested without sleeping; processes sharing a store should agree on the time
    (``last_seen_at`` is wall-clock). Every write is as durable as the driver (durable by default)
    when the call returns."""

    _record = Session
    _ns = SESSION_NS
    _what = "session"
    _status_ns = SESSION_STATUS_NS

    async def open(self, name: str = "", *, metadata: dict[str, Any] | None = None) -> Session:
        """Start a new active session. Raises ValidationError (nothing written) on a bad name or
        metadata."""
        now = self._clock.now()
        session = Session(
            id=new_id(), created_at=now, last_seen_at=now, name=name, metadata=dict(metadata or {})
        )
        data = self._ser.dumps(session, at=(SESSION_NS, session.id))
        await self._driver.put(SESSION_STATUS_NS, self._index_entry(session), MARK)
        await self._driver.put(SESSION_NS, session.id, data, if_absent=True)
        return session

    async def get(self, session_id: str) -> Session:
        """The session. Raises NotFoundError, ValidationError for a malformed id."""
        return (await self._read(session_id))[0]

    async def touch(self, session_id: str) -> Session:
        """Record a heartbeat: ``last_seen_at`` becomes now. Raises NotFoundError, and
        ConflictError if the session is closed or was marked stale (also when cleanup wins a race
        with this touch): open a new session then."""

        def heartbeat(current: Session) -> Session:
            if current.status is not SessionStatus.ACTIVE:
                raise ConflictError(
                    f"session {session_id} is {current.status.value}; it takes no heartbeats (open a new one)"
                )
            return replace(current, last_seen_at=max(current.last_seen_at, self._clock.now()))

        return (await self._change(session_id, heartbeat))[0]

    async def close(self, session_id: str) -> Session:
        """End the session (active or stale become closed). Closing a closed session returns it
        unchanged. Raises NotFoundError."""

        def close(current: Session) -> Session:
            if current.status is SessionStatus.CLOSED:
                raise Unchanged
            return replace(current, status=SessionStatus.CLOSED)

        return (await self._change(session_id, close))[0]

    async def list(self, *, status: SessionStatus | None = None, limit: int = 50) -> builtins.list[Session]:
        """Sessions newest first, optionally only those in ``status`` (read through the status
        index, so it costs what it returns, not the whole table)."""
        check_limit(limit)
        wanted = SessionStatus(status) if status is not None else None
        out: builtins.list[Session] = []
        if limit == 0:
            return out
        async for session in self._by_status(wanted, limit, reverse=True):
            if wanted is None or session.status is wanted:
                out.append(session)
                if len(out) == limit:
                    break
        return out

    async def cleanup_stale(self, older_than: timedelta) -> builtins.list[str]:
        """Mark every active session whose last heartbeat is ``older_than`` ago or more as stale
        and return their ids (in creation order). Each mark is a compare-and-set: a session touched
        meanwhile is re-read and kept active if it is now fresh. Running it twice, or in two
        processes at once, marks each session once."""
        if not isinstance(older_than, timedelta) or older_than < timedelta(0):
            raise ValidationError(f"older_than must be a non-negative timedelta, got {older_than!r:.60}")
        cutoff = self._clock.now() - older_than

        def mark(current: Session) -> Session:
            if current.status is not SessionStatus.ACTIVE or current.last_seen_at > cutoff:
                raise Unchanged
            return replace(current, status=SessionStatus.STALE)

        marked: builtins.list[str] = []
        # a forward scan with a cursor is safe while marking removes entries already passed
        async for session in self._by_status(SessionStatus.ACTIVE, 256, reverse=False):
            if session.status is not SessionStatus.ACTIVE or session.last_seen_at > cutoff:
                continue
            if (await self._change(session.id, mark))[1]:
                marked.append(session.id)
        return marked

    def _by_status(self, status: SessionStatus | None, page: int, *, reverse: bool) -> AsyncIterator[Session]:
        """Sessions from the status index (or every session), in id order, page by page."""
        ns, prefix = (SESSION_STATUS_NS, f"{status.value}/") if status is not None else (SESSION_NS, "")
        return self._candidates(ns, prefix, page, reverse=reverse)

    # ------------------------------------------------------------------ caller-chosen external keys
    async def get_or_create(
        self, key: str, name: str = "", *, metadata: dict[str, Any] | None = None
    ) -> tuple[Session, bool]:
        """The session named by the caller's own ``key`` (a framework's session id: any non-empty
        string of at most 512 UTF-8 bytes without NUL), opened now if no session has that key yet;
        returns it and whether this call created it. Atomic on every driver and across processes:
        however many callers race on one key, exactly one session is created and all of them get
        it. ``name`` and ``metadata`` apply only to a session this call creates. Raises
        ValidationError (nothing written) for a bad key, name or metadata.

        The key record is written create-only before the session record, under the session id
        it names; a caller that finds a key whose session record is missing (its creator
        stopped in between) writes that record itself, create-only, so no key is left dangling."""
        key = validate_key(key)
        now = self._clock.now()
        fresh = Session(
            id=new_id(), created_at=now, last_seen_at=now, name=name, metadata=dict(metadata or {})
        )
        data = self._ser.dumps(fresh, at=(SESSION_NS, fresh.id))
        link = SessionKey(key, fresh.id)
        try:
            await self._driver.put(
                SESSION_KEY_NS, key, self._ser.dumps(link, at=(SESSION_KEY_NS, key)), if_absent=True
            )
        except ConflictError:
            found = await self.by_key(key)
            return found, False
        await self._driver.put(SESSION_STATUS_NS, self._index_entry(fresh), MARK)
        await self._driver.put(SESSION_NS, fresh.id, data, if_absent=True)
        return fresh, True

    async def by_key(self, key: str) -> Session:
        """The session named by the caller's ``key`` (see :meth:`get_or_create`). Raises
        NotFoundError when no session has that key, ValidationError for a bad key."""
        key = validate_key(key)
        entry = await self._driver.get(SESSION_KEY_NS, key)
        if entry is None:
            raise NotFoundError(f"no session has the key {key!r:.80}")
        link = decode_session_key(self._ser, key, entry.value)
        for _ in range(MAX_TRIES):
            try:
                return await self.get(link.session_id)
            except NotFoundError:
                pass
            # the key's creator stopped before writing the session record: write it for them
            now = self._clock.now()
            orphan = Session(id=link.session_id, created_at=now, last_seen_at=now)
            await self._driver.put(SESSION_STATUS_NS, self._index_entry(orphan), MARK)
            try:
                await self._driver.put(
                    SESSION_NS, orphan.id, self._ser.dumps(orphan, at=(SESSION_NS, orphan.id)), if_absent=True
                )
            except ConflictError:
                continue
            return orphan
        raise ConflictError(f"the session of key {key!r:.80} could not be read; try again")
