"""KeepupSessionService behaves like ADK's InMemorySessionService: the same scripts run on both,
side by side, and must give the same results on every store; and writers in several processes
lose no event and no state delta."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events import Event, EventActions
from google.adk.sessions import InMemorySessionService
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig
from google.adk.sessions.session import Session
from google.genai import types
from keepup_adk import KeepupSessionService
from runtime_persistence.testing import TestStore, open_test_store

Script = Callable[[BaseSessionService], Awaitable[list[Any]]]


def side_by_side(store: TestStore, script: Script) -> tuple[list[Any], list[Any]]:
    assert store.url is not None
    url = store.url

    async def ours() -> list[Any]:
        service = KeepupSessionService(url)
        try:
            return await script(service)
        finally:
            await service.close()

    return asyncio.run(script(InMemorySessionService())), asyncio.run(ours())


def view(session: Session | None, *, times: bool = False) -> Any:
    """What a caller sees of a session (its update time only when it comes from an event)."""
    if session is None:
        return None
    seen = {
        "app": session.app_name,
        "user": session.user_id,
        "id": session.id,
        "state": session.state,
        "events": [e.model_dump(mode="json", exclude_none=True) for e in session.events],
    }
    if times:
        seen["last_update_time"] = session.last_update_time
    return seen


def event(
    n: int, *, delta: dict[str, Any] | None = None, text: str = "", partial: bool | None = None
) -> Event:
    return Event(
        id=f"event-{n}",
        invocation_id="inv-1",
        author="agent" if n % 2 else "user",
        timestamp=1_700_000_000.0 + n,
        content=types.Content(role="model", parts=[types.Part(text=text or f"message {n}")]),
        actions=EventActions(state_delta=delta or {}),
        partial=partial,
    )


async def _error(call: Awaitable[Any]) -> str:
    try:
        await call
    except Exception as exc:
        return type(exc).__name__
    return "no error"


def test_create_get_and_scoped_state_match_in_memory(adk_store: TestStore) -> None:
    async def script(svc: BaseSessionService) -> list[Any]:
        out: list[Any] = [await svc.get_session(app_name="app", user_id="ann", session_id="s1")]
        created = await svc.create_session(
            app_name="app",
            user_id="ann",
            session_id=" s1 ",
            state={"key": "value", "app:theme": "dark", "user:lang": "fr", "temp:scratch": 1},
        )
        out.append(view(created))
        out.append(view(await svc.get_session(app_name="app", user_id="ann", session_id="s1")))
        out.append(await _error(svc.create_session(app_name="app", user_id="ann", session_id="s1")))
        other = await svc.create_session(app_name="app", user_id="bob", state={"mine": True})
        out.append(sorted(other.state.items()))
        out.append(bool(other.id))
        out.append(await svc.get_user_state(app_name="app", user_id="ann"))
        out.append(await svc.get_user_state(app_name="app", user_id="nobody"))
        out.append(view(await svc.get_session(app_name="other", user_id="ann", session_id="s1")))
        return out

    theirs, ours = side_by_side(adk_store, script)
    assert ours == theirs
    assert ours[1]["state"] == {"key": "value", "app:theme": "dark", "user:lang": "fr"}


def test_events_and_state_deltas_match_in_memory(adk_store: TestStore) -> None:
    async def script(svc: BaseSessionService) -> list[Any]:
        session = await svc.create_session(app_name="app", user_id="ann", session_id="chat")
        out: list[Any] = []
        first = await svc.append_event(
            session, event(1, delta={"step": 1, "app:count": 1, "user:name": "Ann", "temp:t": "x"})
        )
        out.append(first.model_dump(mode="json", exclude_none=True))
        out.append(view(session, times=True))  # the caller's session object, temp: state included
        await svc.append_event(session, event(2, delta={"step": 2, "nested": {"a": [1, 2.5, None]}}))
        await svc.append_event(session, event(3, partial=True))  # partial events are not stored
        await svc.append_event(session, event(2, delta={"step": 2, "nested": {"a": [1, 2.5, None]}}))
        out.append(view(await svc.get_session(app_name="app", user_id="ann", session_id="chat"), times=True))
        later = await svc.create_session(app_name="app", user_id="ann", session_id="later")
        out.append(later.state)
        out.append(await svc.get_user_state(app_name="app", user_id="ann"))
        return out

    theirs, ours = side_by_side(adk_store, script)
    assert ours == theirs
    assert len(ours[2]["events"]) == 2
    assert ours[2]["state"] == {
        "step": 2,
        "nested": {"a": [1, 2.5, None]},
        "app:count": 1,
        "user:name": "Ann",
    }


def test_get_session_config_matches_in_memory(adk_store: TestStore) -> None:
    async def script(svc: BaseSessionService) -> list[Any]:
        session = await svc.create_session(app_name="app", user_id="ann", session_id="long")
        for n in range(1, 8):
            await svc.append_event(session, event(n))
        out = []
        for config in (
            GetSessionConfig(num_recent_events=3),
            GetSessionConfig(num_recent_events=0),
            GetSessionConfig(num_recent_events=100),
            GetSessionConfig(after_timestamp=1_700_000_005.0),
            GetSessionConfig(after_timestamp=1_800_000_000.0),
            GetSessionConfig(num_recent_events=4, after_timestamp=1_700_000_006.0),
            None,
        ):
            got = await svc.get_session(app_name="app", user_id="ann", session_id="long", config=config)
            assert got is not None
            out.append([e.id for e in got.events])
        return out

    theirs, ours = side_by_side(adk_store, script)
    assert ours == theirs
    assert ours[0] == ["event-5", "event-6", "event-7"]


def test_list_and_delete_match_in_memory(adk_store: TestStore) -> None:
    async def script(svc: BaseSessionService) -> list[Any]:
        for user, sid, n in (("ann", "a", 3), ("bob", "b", 1), ("ann", "c", 2), ("ann", "a/b:c", 4)):
            session = await svc.create_session(
                app_name="app", user_id=user, session_id=sid, state={"sid": sid}
            )
            await svc.append_event(session, event(n, delta={"user:seen": sid}))
        await svc.create_session(app_name="app2", user_id="ann", session_id="elsewhere")
        out: list[Any] = []
        for user in ("ann", None, "nobody"):
            listed = await svc.list_sessions(app_name="app", user_id=user)
            out.append([view(s, times=True) for s in listed.sessions])
        await svc.delete_session(app_name="app", user_id="ann", session_id="a")
        await svc.delete_session(app_name="app", user_id="ann", session_id="never")
        out.append(view(await svc.get_session(app_name="app", user_id="ann", session_id="a")))
        gone = Session(app_name="app", user_id="ann", id="a")
        out.append(await _error(svc.append_event(gone, event(9))))
        again = await svc.create_session(app_name="app", user_id="ann", session_id="a")
        out.append(view(again))
        out.append([s.id for s in (await svc.list_sessions(app_name="app", user_id="ann")).sessions])
        return out

    theirs, ours = side_by_side(adk_store, script)
    assert ours == theirs
    assert [s["id"] for s in ours[0]] == ["c", "a", "a/b:c"]
    assert ours[4] == "SessionNotFoundError"


def test_binary_parts_and_function_calls_round_trip_like_in_memory(adk_store: TestStore) -> None:
    async def script(svc: BaseSessionService) -> list[Any]:
        session = await svc.create_session(app_name="app", user_id="ann", session_id="bin")
        rich = Event(
            id="rich",
            invocation_id="inv",
            author="agent",
            timestamp=1_700_000_100.0,
            content=types.Content(
                role="model",
                parts=[
                    types.Part(inline_data=types.Blob(mime_type="image/png", data=b"\x89PNG\x00\xff")),
                    types.Part(function_call=types.FunctionCall(name="lookup", args={"q": "é"})),
                ],
            ),
        )
        await svc.append_event(session, rich)
        got = await svc.get_session(app_name="app", user_id="ann", session_id="bin")
        assert got is not None
        return [got.events == [rich], view(got)]

    theirs, ours = side_by_side(adk_store, script)
    assert ours == theirs
    assert ours[0] is True


def test_errors_are_adk_errors() -> None:
    assert issubclass(AlreadyExistsError, Exception) and issubclass(SessionNotFoundError, ValueError)


# ------------------------------------------------------------------ writers in several processes
def _append_in_child(url: str, writer: int, count: int, start: Any, out: Any) -> None:
    async def run() -> None:
        svc = KeepupSessionService(url)
        session = await svc.get_session(app_name="app", user_id="ann", session_id="shared")
        assert session is not None
        for i in range(count):
            delta = {f"w{writer}": i, f"app:w{writer}": i, f"user:w{writer}": i}
            await svc.append_event(session, event(1000 * writer + i, delta=delta))
        await svc.close()

    start.wait(30)
    try:
        asyncio.run(run())
        out.put(writer)
    except Exception as exc:
        out.put(repr(exc))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres", "redis"])
def test_writers_in_three_processes_lose_no_event_and_no_state_delta(backend: str, tmp_path: Path) -> None:
    writers, count = 3, 10
    with open_test_store(backend, tmp_path) as store:
        assert store.url is not None
        url = store.url

        async def create() -> None:
            svc = KeepupSessionService(url)
            await svc.create_session(app_name="app", user_id="ann", session_id="shared")
            await svc.close()

        asyncio.run(create())
        ctx = multiprocessing.get_context("spawn")
        start, out = ctx.Event(), ctx.Queue()
        procs = [
            ctx.Process(target=_append_in_child, args=(url, w, count, start, out)) for w in range(writers)
        ]
        for p in procs:
            p.start()
        start.set()
        assert sorted(str(out.get(timeout=180)) for _ in procs) == [str(w) for w in range(writers)]
        for p in procs:
            p.join(60)

        async def read() -> Session | None:
            svc = KeepupSessionService(url)
            try:
                return await svc.get_session(app_name="app", user_id="ann", session_id="shared")
            finally:
                await svc.close()

        session = asyncio.run(read())
    assert session is not None
    assert sorted(e.id for e in session.events) == sorted(
        f"event-{1000 * w + i}" for w in range(writers) for i in range(count)
    )
    for w in range(writers):
        assert (
            session.state[f"w{w}"] == session.state[f"app:w{w}"] == session.state[f"user:w{w}"] == count - 1
        )
