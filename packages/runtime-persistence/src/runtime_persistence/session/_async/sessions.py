"""The session DB (:class:`AsyncSessions`): sessions with heartbeats and stale-session cleanup,
stored through the driver. Written once as async code in ``session/_async/``; the sync twin in
``session/_sync/`` is generated from it (scripts/gen_sync.py).

Layout::

    session         {session_id}             the session record; changed by compare-and-set
    session.status  {status}/{session_id}    index: sessions by status (added before a status
                                             change, removed after; readers check the record,
                                             so a stale entry is skipped, never believed)
    session.thread  {thread_id}/{session_id} index: the sessions a thread was linked to
    session.run     {run_id}/{session_id}    index: the sessions a run was linked to

Records carry a format version (:data:`runtime_core.SESSION_FORMAT_VERSION`). An older record is
migrated forward whenever it is read, and :meth:`AsyncSessions.migrate` rewrites every old
record in place (by compare-and-set, so it is safe while the store is in use).

Session ids are UUIDv7, so key order is creation order and every list is newest first by a
reverse range scan. A heartbeat (:meth:`touch`) rewrites only the record, never an index.

Touch against cleanup: both are compare-and-set on the record, so exactly one of them applies to
a given version. A touch that loses re-reads the record: if the session is still active it
tries again; if cleanup marked it stale in the meantime, the touch raises ConflictError and the
session stays stale. Stale is final for heartbeats because whoever ran the cleanup may already
have acted on it (released the session's resources); the client opens a new session.

Purge against everything: :meth:`AsyncSessions.purge` deletes only closed or stale sessions that
ended long enough ago, each with a delete conditioned on the version it checked. A session can
never go back to active, so no active session is ever purged, and of several purgers racing on
one session exactly one deletes it (and reports it).
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from runtime_core import (
    ConflictError,
    CorruptionError,
    NotFoundError,
    Session,
    SessionStatus,
    ValidationError,
    new_id,
    validate_id,
    validate_key,
)

from runtime_persistence.session._async._repository import AsyncRepository, Unchanged
from runtime_persistence.session._message_records import SESSION_KEY_NS, SessionKey, decode_session_key
from runtime_persistence.session._records import (
    MARK,
    MAX_TRIES,
    SESSION_NS,
    SESSION_RUN_NS,
    SESSION_STATUS_NS,
    SESSION_THREAD_NS,
    StoredSession,
    check_limit,
    upgrade_session,
)

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
            ended = current.ended_at if current.ended_at is not None else self._clock.now()
            return replace(current, status=SessionStatus.CLOSED, ended_at=ended)

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
            return replace(current, status=SessionStatus.STALE, ended_at=self._clock.now())

        marked: builtins.list[str] = []
        # a forward scan with a cursor is safe while marking removes entries already passed
        async for session in self._by_status(SessionStatus.ACTIVE, 256, reverse=False):
            if session.status is not SessionStatus.ACTIVE or session.last_seen_at > cutoff:
                continue
            try:
                changed = (await self._change(session.id, mark))[1]
            except NotFoundError:
                continue  # purged by another process since the index was read
            if changed:
                marked.append(session.id)
        return marked

    def _from_stored(self, data: bytes, at: tuple[str, str]) -> Session:
        """A stored session in the current format (older formats migrated forward)."""
        stored: StoredSession = self._ser.loads(data, StoredSession, at=at)
        return upgrade_session(stored)[0]

    async def link(
        self, session_id: str, *, thread_id: str | None = None, run_id: str | None = None
    ) -> Session:
        """Record that the session worked on ``thread_id`` and/or ``run_id`` (linking one twice
        changes nothing). The index entries are written first, so :meth:`of_thread` and
        :meth:`of_run` find the session as soon as the call returns. Raises ValidationError for
        malformed ids or a session that already links the maximum, ConflictError if the session
        is not active, NotFoundError."""
        if thread_id is None and run_id is None:
            raise ValidationError("link takes a thread_id, a run_id or both")
        if thread_id is not None:
            validate_id(thread_id, "thread id")
        if run_id is not None:
            validate_id(run_id, "run id")
        current = await self.get(session_id)
        if thread_id is not None:
            await self._driver.put(SESSION_THREAD_NS, f"{thread_id}/{current.id}", MARK)
        if run_id is not None:
            await self._driver.put(SESSION_RUN_NS, f"{run_id}/{current.id}", MARK)

        def add(current: Session) -> Session:
            if current.status is not SessionStatus.ACTIVE:
                raise ConflictError(
                    f"session {session_id} is {current.status.value}; link to an active session"
                )
            threads, runs = current.thread_ids, current.run_ids
            if thread_id is not None and thread_id not in threads:
                threads = (*threads, thread_id)
            if run_id is not None and run_id not in runs:
                runs = (*runs, run_id)
            if (threads, runs) == (current.thread_ids, current.run_ids):
                raise Unchanged
            return replace(current, thread_ids=threads, run_ids=runs)

        return (await self._change(session_id, add))[0]

    async def of_thread(self, thread_id: str) -> builtins.list[Session]:
        """The sessions linked to ``thread_id``, oldest first (through the index)."""
        validate_id(thread_id, "thread id")
        return [
            s
            async for s in self._candidates(SESSION_THREAD_NS, f"{thread_id}/", 255, reverse=False)
            if thread_id in s.thread_ids
        ]

    async def of_run(self, run_id: str) -> builtins.list[Session]:
        """The sessions linked to ``run_id``, oldest first (through the index)."""
        validate_id(run_id, "run id")
        return [
            s
            async for s in self._candidates(SESSION_RUN_NS, f"{run_id}/", 255, reverse=False)
            if run_id in s.run_ids
        ]

    async def purgeable(self, older_than: timedelta, *, limit: int = 10_000) -> builtins.list[Session]:
        """The closed and stale sessions that ended ``older_than`` ago or more, oldest first (what
        :meth:`purge` would delete now)."""
        cutoff = self._cutoff(older_than)
        check_limit(limit)
        out: builtins.list[Session] = []
        for status in (SessionStatus.STALE, SessionStatus.CLOSED):
            async for session in self._by_status(status, 256, reverse=False):
                if session.status is status and session.ended_at is not None and session.ended_at <= cutoff:
                    out.append(session)
        out.sort(key=lambda s: s.id)
        return out[:limit]

    async def purge(self, older_than: timedelta, *, limit: int = 10_000) -> builtins.list[Session]:
        """Delete the closed and stale sessions that ended ``older_than`` ago or more, and return
        those this call deleted (each as it was). Each delete is conditioned on the version that
        was checked, so an active session is never deleted and, of several processes purging at
        once, exactly one deletes (and returns) a given session. Threads and runs linked to a
        session are left alone (see :class:`AsyncSessionSweeper` to remove them too)."""
        purged: builtins.list[Session] = []
        for candidate in await self.purgeable(older_than, limit=limit):
            done = await self.delete(candidate.id, older_than=older_than)
            if done is not None:
                purged.append(done)
        return purged

    async def delete(self, session_id: str, *, older_than: timedelta | None = None) -> Session | None:
        """Delete one session that is not active (and, with ``older_than``, ended at least that
        long ago); return it as it was, or None when it is gone already or another process
        deleted it first. Raises ConflictError for an active session (close it first), and
        ValidationError when it ended too recently."""
        cutoff = None if older_than is None else self._cutoff(older_than)
        for _ in range(MAX_TRIES):
            validate_id(session_id, "session id")
            entry = await self._driver.get(SESSION_NS, session_id)
            if entry is None:
                return None
            session = self._decode(session_id, entry.value)
            if session.status is SessionStatus.ACTIVE:
                raise ConflictError(f"session {session_id} is active; close it before deleting it")
            if cutoff is not None and (session.ended_at is None or session.ended_at > cutoff):
                raise ValidationError(f"session {session_id} ended too recently to purge")
            try:
                deleted = await self._driver.delete(SESSION_NS, session_id, if_version=entry.version)
            except ConflictError:
                continue  # changed or deleted meanwhile: look again
            if not deleted:
                continue
            await self._driver.delete(SESSION_STATUS_NS, self._index_entry(session))
            for thread_id in session.thread_ids:
                await self._driver.delete(SESSION_THREAD_NS, f"{thread_id}/{session_id}")
            for run_id in session.run_ids:
                await self._driver.delete(SESSION_RUN_NS, f"{run_id}/{session_id}")
            return session
        raise ConflictError(f"session {session_id} kept changing; try again")

    async def migrate(self, *, dry_run: bool = False) -> int:
        """Rewrite every session record of an older format in the current one (compare-and-set,
        so a concurrent heartbeat is never lost; it is retried). Returns how many were (with
        ``dry_run``: would be) rewritten. Reading never needs this: old records are migrated in
        memory whenever they are read."""
        count = 0
        cursor: str | None = None
        while True:
            page = [e async for e in self._driver.scan(SESSION_NS, after=cursor, limit=256)]
            for entry in page:
                stored: StoredSession = self._ser.loads(
                    entry.value, StoredSession, at=(SESSION_NS, entry.key)
                )
                session, old = upgrade_session(stored)
                if session.id != entry.key:
                    raise CorruptionError(
                        f"the session record at {entry.key!r:.200} is {session.id!r:.200}: it was "
                        "copied or moved from another key"
                    )
                if not old:
                    continue
                count += 1
                if dry_run:
                    continue
                try:
                    await self._driver.put(
                        SESSION_NS,
                        session.id,
                        self._ser.dumps(session, at=(SESSION_NS, session.id)),
                        if_version=entry.version,
                    )
                except ConflictError:
                    # a writer of this version rewrote it in the current format meanwhile
                    continue
            if len(page) < 256:
                return count
            cursor = page[-1].key

    def _cutoff(self, older_than: timedelta) -> datetime:
        if not isinstance(older_than, timedelta) or older_than < timedelta(0):
            raise ValidationError(f"older_than must be a non-negative timedelta, got {older_than!r:.60}")
        return self._clock.now() - older_than

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

        The session record is written first, then the key record naming it, create-only: a key
        always names a stored session. A caller that loses the race for the key withdraws the
        session it wrote (nothing names it) and returns the winner's. A crash between the two
        writes leaves a session without a key, which goes stale and is swept like any other.
        (Stores written by earlier versions wrote the key first: a key whose session record is
        missing gets that record written by whoever reads it, create-only.)"""
        key = validate_key(key)
        now = self._clock.now()
        fresh = Session(
            id=new_id(), created_at=now, last_seen_at=now, name=name, metadata=dict(metadata or {})
        )
        data = self._ser.dumps(fresh, at=(SESSION_NS, fresh.id))
        link = SessionKey(key, fresh.id)
        index_entry = self._index_entry(fresh)
        await self._driver.put(SESSION_STATUS_NS, index_entry, MARK)
        await self._driver.put(SESSION_NS, fresh.id, data, if_absent=True)
        try:
            await self._driver.put(
                SESSION_KEY_NS, key, self._ser.dumps(link, at=(SESSION_KEY_NS, key)), if_absent=True
            )
        except ConflictError:
            # another caller holds the key: withdraw this session, which nothing names
            await self._driver.delete(SESSION_NS, fresh.id)
            await self._driver.delete(SESSION_STATUS_NS, index_entry)
            found = await self.by_key(key)
            return found, False
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
