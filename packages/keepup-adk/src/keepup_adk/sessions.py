"""Google ADK's ``BaseSessionService`` over a Keepup store.

Layout (namespaces of this adapter, over the driver contract):

* ``adk.session``: one record per ADK session, key = its app, user and id (length-prefixed, so
  no id can be mistaken for another): the session-scoped state, the last update time and the
  Keepup message log that holds its events. Created create-only (a second ``create_session``
  with the same id raises ``AlreadyExistsError`` in every process) and changed by
  compare-and-set, so concurrent state deltas are merged, never lost.
* ``adk.state``: the ``app:`` state of each app and the ``user:`` state of each app and user,
  merged by compare-and-set.
* ``adk.event``: one entry per stored event id (create-only), so an event appended twice, by a
  retry in this process or another, is stored once.
* the events themselves: the session's :class:`runtime_persistence.AsyncMessageLog`, one JSON
  text per event, so ``num_recent_events`` reads only the newest events.

``temp:`` state is never stored, as in ADK. Values are kept as JSON (``pydantic``'s encoding of
rich values), as ADK's database services keep them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.sessions.base_session_service import (
    BaseSessionService,
    GetSessionConfig,
    ListSessionsResponse,
)
from google.adk.sessions.session import Session
from google.adk.sessions.state import State
from pydantic_core import to_jsonable_python
from runtime_core import AsyncDriver, ConflictError, CorruptionError, Serializer, new_id
from runtime_persistence import AsyncMessageLog
from runtime_persistence.storage.serialization import EnvelopeSerializer

from keepup_adk._store import StoreHandle

__all__ = ["KeepupSessionService"]

SESSION_NS = "adk.session"
STATE_NS = "adk.state"
EVENT_NS = "adk.event"
_PAGE = 500
_TRIES = 1000


class _SessionRecord(msgspec.Struct, frozen=True):
    app_name: str
    user_id: str
    id: str
    log_id: str
    state: str  # JSON object
    last_update_time: float


class _StateRecord(msgspec.Struct, frozen=True):
    place: str
    state: str  # JSON object


def _part(value: str) -> str:
    return f"{len(value)}:{value}"


def _session_key(app_name: str, user_id: str, session_id: str) -> str:
    return _part(app_name) + _part(user_id) + session_id


def _app_key(app_name: str) -> str:
    return "app/" + _part(app_name)


def _user_key(app_name: str, user_id: str) -> str:
    return "user/" + _part(app_name) + _part(user_id)


def _split_deltas(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(app, user, session) deltas of ``state``, prefixes removed, ``temp:`` keys dropped."""
    app: dict[str, Any] = {}
    user: dict[str, Any] = {}
    session: dict[str, Any] = {}
    for key, value in state.items():
        if key.startswith(State.APP_PREFIX):
            app[key.removeprefix(State.APP_PREFIX)] = value
        elif key.startswith(State.USER_PREFIX):
            user[key.removeprefix(State.USER_PREFIX)] = value
        elif not key.startswith(State.TEMP_PREFIX):
            session[key] = value
    return app, user, session


def _json(state: dict[str, Any]) -> dict[str, Any]:
    encoded: dict[str, Any] = to_jsonable_python(state)
    return encoded


class KeepupSessionService(BaseSessionService):
    """ADK sessions in a Keepup store. ``store`` is a store URL (opened on first use, on the
    running event loop; :meth:`close` closes it) or an async driver you opened and close.

    Behaves like ADK's ``InMemorySessionService`` (state scopes ``app:``, ``user:``, session and
    ``temp:``, state deltas, events, ``GetSessionConfig``), and also survives restarts and is
    shared by every process on the store.

    ``serializer``: seals every record (sessions, shared state, events); by default the plain
    envelope serializer. On an encrypted store pass the runtime's (``runtime.serializer``, the
    one with its keyring): records are then encrypted, and a plaintext or misplaced one is
    refused with CorruptionError."""

    def __init__(self, store: str | AsyncDriver, *, serializer: Serializer | None = None) -> None:
        self._store = StoreHandle(store)
        self._ser: Serializer = serializer if serializer is not None else EnvelopeSerializer()

    async def close(self) -> None:
        await self._store.close()

    # ------------------------------------------------------------------------------- sessions
    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        driver = await self._store.driver()
        session_id = (session_id.strip() if session_id else None) or str(uuid.uuid4())
        app_delta, user_delta, session_state = _split_deltas(state or {})
        now = time.time()
        record = _SessionRecord(
            app_name, user_id, session_id, new_id(), json.dumps(_json(session_state)), now
        )
        key = _session_key(app_name, user_id, session_id)
        try:
            await driver.put(SESSION_NS, key, self._ser.dumps(record, at=(SESSION_NS, key)), if_absent=True)
        except ConflictError:
            raise AlreadyExistsError(f"Session with id {session_id} already exists.") from None
        if app_delta:
            await self._merge(_app_key(app_name), app_delta)
        if user_delta:
            await self._merge(_user_key(app_name, user_id), user_delta)
        session = Session(
            app_name=app_name, user_id=user_id, id=session_id, state=session_state, last_update_time=now
        )
        return await self._with_scoped_state(session)

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        session_id = session_id.strip() if session_id else session_id
        found = await self._read(app_name, user_id, session_id)
        if found is None:
            return None
        record = found[0]
        log = AsyncMessageLog(await self._store.driver(), serializer=self._ser)
        wanted = config.num_recent_events if config else None
        texts = [] if wanted == 0 else await log.last(record.log_id, wanted)
        events = [Event.model_validate_json(text) for text in texts]
        if config is not None and config.after_timestamp is not None:
            i = len(events) - 1
            while i >= 0 and events[i].timestamp >= config.after_timestamp:
                i -= 1
            if i >= 0:
                events = events[i + 1 :]
        session = Session(
            app_name=app_name,
            user_id=user_id,
            id=session_id,
            state=json.loads(record.state),
            events=events,
            last_update_time=record.last_update_time,
        )
        return await self._with_scoped_state(session)

    async def list_sessions(self, *, app_name: str, user_id: str | None = None) -> ListSessionsResponse:
        driver = await self._store.driver()
        prefix = _part(app_name) + (_part(user_id) if user_id is not None else "")
        sessions: list[Session] = []
        after: str | None = None
        while True:
            page = [e async for e in driver.scan(SESSION_NS, prefix=prefix, after=after, limit=_PAGE)]
            for entry in page:
                record = self._decode(entry.key, entry.value)
                session = Session(
                    app_name=record.app_name,
                    user_id=record.user_id,
                    id=record.id,
                    state=json.loads(record.state),
                    last_update_time=record.last_update_time,
                )
                sessions.append(await self._with_scoped_state(session))
            if len(page) < _PAGE:
                break
            after = page[-1].key
        sessions.sort(key=lambda s: (s.last_update_time, s.user_id, s.id))
        return ListSessionsResponse(sessions=sessions)

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        session_id = session_id.strip() if session_id else session_id
        found = await self._read(app_name, user_id, session_id)
        if found is None:
            return
        driver = await self._store.driver()
        record = found[0]
        await driver.delete(SESSION_NS, _session_key(app_name, user_id, session_id))
        await AsyncMessageLog(driver, serializer=self._ser).clear(record.log_id)
        while True:
            page = [e async for e in driver.scan(EVENT_NS, prefix=f"{record.log_id}/", limit=_PAGE)]
            if not page:
                return
            for entry in page:
                await driver.delete(EVENT_NS, entry.key)

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        return await self._state(_user_key(app_name, user_id))

    # --------------------------------------------------------------------------------- events
    async def append_event(self, session: Session, event: Event) -> Event:
        if event.partial:
            return event
        found = await self._read(session.app_name, session.user_id, session.id)
        if found is None:
            raise SessionNotFoundError(f"Session {session.id} not found.")
        record = found[0]
        driver = await self._store.driver()
        # one entry per event id, create-only, holding the event as stored (temp: keys trimmed):
        # an equal event appended again, here or in any other process, is stored once
        trimmed = self._trim_temp_delta_state(event.model_copy(deep=True))
        marker = f"{record.log_id}/{event.id}"
        try:
            await driver.put(
                EVENT_NS,
                marker,
                self._ser.dumps(trimmed.model_dump_json(exclude_none=True), at=(EVENT_NS, marker)),
                if_absent=True,
            )
        except ConflictError:
            stored = await driver.get(EVENT_NS, marker)
            if (
                stored is not None
                and Event.model_validate_json(self._ser.loads(stored.value, str, at=(EVENT_NS, marker)))
                == event
            ):
                return event
        await super().append_event(session=session, event=event)
        session.last_update_time = event.timestamp
        stored_text = event.model_dump_json(exclude_none=True)  # temp: keys trimmed by the base
        await AsyncMessageLog(driver, serializer=self._ser).append(record.log_id, [stored_text])
        app_delta, user_delta, session_delta = _split_deltas(
            event.actions.state_delta if event.actions and event.actions.state_delta else {}
        )
        if app_delta:
            await self._merge(_app_key(session.app_name), app_delta)
        if user_delta:
            await self._merge(_user_key(session.app_name, session.user_id), user_delta)
        timestamp = event.timestamp

        def update(current: _SessionRecord) -> _SessionRecord:
            state = json.loads(current.state)
            state.update(_json(session_delta))
            return msgspec.structs.replace(current, state=json.dumps(state), last_update_time=timestamp)

        await self._change(session.app_name, session.user_id, session.id, update)
        return event

    # ------------------------------------------------------------------------------ internals
    def _decode(self, key: str, data: bytes) -> _SessionRecord:
        record: _SessionRecord = self._ser.loads(data, _SessionRecord, at=(SESSION_NS, key))
        if _session_key(record.app_name, record.user_id, record.id) != key:
            raise CorruptionError(f"ADK session record {key!r:.80} does not belong under that key")
        return record

    async def _read(self, app_name: str, user_id: str, session_id: str) -> tuple[_SessionRecord, int] | None:
        driver = await self._store.driver()
        key = _session_key(app_name, user_id, session_id)
        entry = await driver.get(SESSION_NS, key)
        if entry is None:
            return None
        return self._decode(key, entry.value), entry.version

    async def _change(
        self, app_name: str, user_id: str, session_id: str, fn: Callable[[_SessionRecord], _SessionRecord]
    ) -> None:
        driver = await self._store.driver()
        key = _session_key(app_name, user_id, session_id)
        for _ in range(_TRIES):
            found = await self._read(app_name, user_id, session_id)
            if found is None:
                raise SessionNotFoundError(f"Session {session_id} not found.")
            try:
                await driver.put(
                    SESSION_NS, key, self._ser.dumps(fn(found[0]), at=(SESSION_NS, key)), if_version=found[1]
                )
            except ConflictError:
                continue
            return
        raise ConflictError(f"ADK session {session_id} kept changing; try again")

    def _decode_state(self, place: str, data: bytes) -> dict[str, Any]:
        record: _StateRecord = self._ser.loads(data, _StateRecord, at=(STATE_NS, place))
        if record.place != place:
            raise CorruptionError(f"ADK state record {place!r:.80} does not belong under that key")
        state: dict[str, Any] = json.loads(record.state)
        return state

    async def _state(self, place: str) -> dict[str, Any]:
        entry = await (await self._store.driver()).get(STATE_NS, place)
        return {} if entry is None else self._decode_state(place, entry.value)

    async def _merge(self, place: str, delta: dict[str, Any]) -> None:
        """Merge ``delta`` into the state at ``place`` by compare-and-set (no update is lost)."""
        driver = await self._store.driver()
        encoded = _json(delta)
        for _ in range(_TRIES):
            entry = await driver.get(STATE_NS, place)
            current = {} if entry is None else self._decode_state(place, entry.value)
            current.update(encoded)
            value = self._ser.dumps(_StateRecord(place, json.dumps(current)), at=(STATE_NS, place))
            try:
                if entry is None:
                    await driver.put(STATE_NS, place, value, if_absent=True)
                else:
                    await driver.put(STATE_NS, place, value, if_version=entry.version)
            except ConflictError:
                continue
            return
        raise ConflictError(f"ADK state {place!r:.80} kept changing; try again")

    async def _with_scoped_state(self, session: Session) -> Session:
        for key, value in (await self._state(_app_key(session.app_name))).items():
            session.state[State.APP_PREFIX + key] = value
        for key, value in (await self._state(_user_key(session.app_name, session.user_id))).items():
            session.state[State.USER_PREFIX + key] = value
        return session
