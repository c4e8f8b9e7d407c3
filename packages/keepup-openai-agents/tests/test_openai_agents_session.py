"""KeepupSession behaves like the SDK's own SQLiteSession: the same scripts run on both, side by
side, and must give the same results, on SQLite, plain files, PostgreSQL, MySQL and Redis; and
writers in several processes lose no items."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from agents.memory import Session, SessionSettings, SQLiteSession
from keepup_openai_agents import KeepupSession
from runtime_core import ValidationError
from runtime_persistence.testing import TestStore, open_test_store

BACKENDS = ["sqlite", "file", "postgres", "mysql", "redis"]

Script = Callable[[Callable[..., Any]], Awaitable[list[Any]]]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestStore]:
    with open_test_store(request.param, tmp_path) as opened:
        yield opened


def side_by_side(store: TestStore, tmp_path: Path, script: Script) -> tuple[list[Any], list[Any]]:
    """Run ``script`` once with SQLiteSession and once with KeepupSession; each run gets a
    factory ``make(session_id, **options)`` of sessions on one fresh store."""
    assert store.url is not None
    url = store.url

    async def run(make: Callable[..., Any]) -> list[Any]:
        return await script(make)

    sqlite_path = tmp_path / "sdk.db"
    theirs = asyncio.run(run(lambda sid, **kw: SQLiteSession(sid, sqlite_path, **kw)))
    ours = asyncio.run(run(lambda sid, **kw: KeepupSession(sid, url, **kw)))
    return theirs, ours


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, Any]:
    return {
        "id": f"msg_{text}",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


TOOL_CALL = {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": '{"q": "é ✓"}'}
TOOL_RESULT = {"type": "function_call_output", "call_id": "c1", "output": "42"}


async def _close(session: Any) -> None:
    result = session.close()
    if asyncio.iscoroutine(result):
        await result


def test_keepup_session_implements_the_sdk_session_protocol(tmp_path: Path) -> None:
    session = KeepupSession("s", f"sqlite:///{tmp_path / 'k.db'}")
    assert isinstance(session, Session)
    assert session.session_settings == SessionSettings()


def test_add_get_and_limits_match_sqlite_session(store: TestStore, tmp_path: Path) -> None:
    async def script(make: Callable[..., Any]) -> list[Any]:
        s = make("conversation")
        out: list[Any] = [await s.get_items(), await s.get_items(limit=3)]
        await s.add_items([user("hi"), assistant("hello")])
        await s.add_items([])
        await s.add_items(
            [user("weather?"), TOOL_CALL, TOOL_RESULT, assistant("sunny"), {"n": 1.5, "x": None}]
        )
        for limit in (None, 0, 1, 2, 3, 7, 8, 100, -1, -5):
            out.append(await s.get_items(limit=limit))
        await _close(s)
        return out

    theirs, ours = side_by_side(store, tmp_path, script)
    assert ours == theirs
    assert len(ours[2]) == 7


def test_items_only_the_json_module_reads_come_back_like_sqlite_session(tmp_path: Path) -> None:
    """Planted bug: items are read with a decoder that refuses what ``json.dumps`` writes for
    non-finite floats and numbers past a float's range (``NaN``, ``1e400``)."""

    async def script(make: Callable[..., Any]) -> list[Any]:
        s = make("odd numbers")
        await s.add_items([{"n": float("inf"), "m": -float("inf")}, {"big": 10**400}, user("ok")])
        out = [await s.get_items(), await s.pop_item(), await s.get_items(limit=1)]
        await _close(s)
        return out

    with open_test_store("sqlite", tmp_path) as sqlite_store:
        theirs, ours = side_by_side(sqlite_store, tmp_path, script)
    assert ours == theirs
    assert ours[0][0] == {"n": float("inf"), "m": -float("inf")} and ours[0][1] == {"big": 10**400}


def test_pop_and_clear_match_sqlite_session(store: TestStore, tmp_path: Path) -> None:
    async def script(make: Callable[..., Any]) -> list[Any]:
        s = make("conversation")
        out: list[Any] = [await s.pop_item()]
        await s.add_items([user("1"), user("2")])
        await s.add_items([user("3")])
        out += [await s.pop_item(), await s.pop_item(), await s.get_items()]
        await s.add_items([user("4")])
        out.append(await s.get_items())
        await s.clear_session()
        out += [await s.get_items(), await s.pop_item(), await s.get_items(limit=2)]
        await s.clear_session()
        await s.add_items([user("after clear")])
        out += [await s.get_items(), await s.pop_item(), await s.pop_item()]
        await _close(s)
        return out

    theirs, ours = side_by_side(store, tmp_path, script)
    assert ours == theirs
    assert ours[1] == user("3")


def test_session_settings_limit_is_the_default_like_sqlite_session(store: TestStore, tmp_path: Path) -> None:
    async def script(make: Callable[..., Any]) -> list[Any]:
        s = make("limited", session_settings=SessionSettings(limit=2))
        await s.add_items([user(str(i)) for i in range(5)])
        out = [await s.get_items(), await s.get_items(limit=4), await s.get_items(limit=None)]
        await _close(s)
        return out

    theirs, ours = side_by_side(store, tmp_path, script)
    assert ours == theirs
    assert ours[0] == [user("3"), user("4")]


def test_sessions_on_one_store_keep_their_own_items_and_survive_reopening(
    store: TestStore, tmp_path: Path
) -> None:
    async def script(make: Callable[..., Any]) -> list[Any]:
        a, b = make("alice"), make("bob")
        await a.add_items([user("a1")])
        await b.add_items([user("b1"), user("b2")])
        await a.add_items([user("a2")])
        await b.clear_session()
        await _close(a)
        await _close(b)
        out = []
        for sid in ("alice", "bob", "Alice"):
            again = make(sid)
            out.append(await again.get_items())
            await _close(again)
        return out

    theirs, ours = side_by_side(store, tmp_path, script)
    assert ours == theirs
    assert ours[0] == [user("a1"), user("a2")]


def test_an_item_json_cannot_hold_raises_type_error_and_stores_nothing(
    store: TestStore, tmp_path: Path
) -> None:
    async def script(make: Callable[..., Any]) -> list[Any]:
        s = make("bad")
        await s.add_items([user("kept")])
        out: list[Any] = []
        try:
            await s.add_items([user("lost"), {"value": object()}])
        except TypeError as exc:
            out.append(type(exc).__name__)
        out.append(await s.get_items())
        await _close(s)
        return out

    theirs, ours = side_by_side(store, tmp_path, script)
    assert ours == theirs == ["TypeError", [user("kept")]]


def test_a_closed_session_refuses_work_like_sqlite_session(store: TestStore, tmp_path: Path) -> None:
    async def script(make: Callable[..., Any]) -> list[Any]:
        s = make("closing")
        await s.add_items([user("x")])
        await _close(s)
        out = []
        for call in (lambda: s.add_items([user("y")]), s.get_items, s.pop_item, s.clear_session):
            try:
                await call()
                out.append("ok")
            except RuntimeError:
                out.append("RuntimeError")
        return out

    theirs, ours = side_by_side(store, tmp_path, script)
    assert ours == theirs == ["RuntimeError"] * 4


def test_a_session_id_keepup_cannot_key_is_refused(tmp_path: Path) -> None:
    async def run() -> None:
        s = KeepupSession("x\x00y", f"sqlite:///{tmp_path / 'k.db'}")
        with pytest.raises(ValidationError):
            await s.add_items([user("x")])
        await s.close()

    asyncio.run(run())


# ------------------------------------------------------------------ writers in several processes
WRITERS, COUNT = 4, 15


def _write_in_child(kind: str, where: str, writer: int, count: int, start: Any, out: Any) -> None:
    async def run() -> None:
        session: Any = (
            SQLiteSession("shared", where) if kind == "sqlite-session" else KeepupSession("shared", where)
        )
        for i in range(count):
            await session.add_items([user(f"{writer}-{i}-q"), assistant(f"{writer}-{i}-a")])
        await _close(session)

    start.wait(30)
    try:
        asyncio.run(run())
        out.put(writer)
    except Exception as exc:  # reported to the parent as a failure
        out.put(repr(exc))


def _write_from_processes(kind: str, where: str, writers: int, count: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_write_in_child, args=(kind, where, w, count, start, out)) for w in range(writers)
    ]
    for p in procs:
        p.start()
    start.set()
    results = sorted(str(out.get(timeout=180)) for _ in procs)
    for p in procs:
        p.join(60)
    assert results == [str(w) for w in range(writers)]


def _check_history(items: list[Any], writers: int, count: int) -> None:
    assert len(items) == writers * count * 2
    for pos in range(0, len(items), 2):
        question, answer = items[pos], items[pos + 1]
        tag = question["content"][: -len("-q")]
        assert answer == assistant(f"{tag}-a"), "the two items of one add_items call were separated"
    for w in range(writers):
        mine = [x["content"] for x in items if x.get("role") == "user" and x["content"].startswith(f"{w}-")]
        assert mine == [f"{w}-{i}-q" for i in range(count)]


@pytest.mark.slow
def test_sqlite_session_writers_in_four_processes_lose_no_items(tmp_path: Path) -> None:
    """The SDK's own behaviour, which the next test asks of KeepupSession."""
    sdk_db = str(tmp_path / "sdk.db")
    _write_from_processes("sqlite-session", sdk_db, WRITERS, COUNT)
    _check_history(asyncio.run(SQLiteSession("shared", sdk_db).get_items()), WRITERS, COUNT)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres", "redis"])
def test_keepup_session_writers_in_four_processes_lose_no_items(backend: str, tmp_path: Path) -> None:
    with open_test_store(backend, tmp_path) as store:
        assert store.url is not None
        _write_from_processes("keepup", store.url, WRITERS, COUNT)

        async def read() -> list[Any]:
            session = KeepupSession("shared", store.url or "")
            try:
                return await session.get_items()
            finally:
                await session.close()

        _check_history(asyncio.run(read()), WRITERS, COUNT)


# ------------------------------------------------------------------------- a real run of the SDK
def test_a_runner_with_a_tool_keeps_the_same_history_as_with_sqlite_session(
    store: TestStore, tmp_path: Path
) -> None:
    """Two turns of ``Runner.run`` (a tool call, then a follow-up question) with the SDK's
    scripted model: the history stored and what the model is shown on the second turn are the
    same with KeepupSession as with SQLiteSession."""
    from agents import Agent, Runner, function_tool
    from agents.testing import ScriptedModel, assistant_message, function_call

    @function_tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    async def script(make: Callable[..., Any]) -> list[Any]:
        model = ScriptedModel(
            [
                {"output": [function_call("weather", {"city": "Paris"}, call_id="call-1")]},
                {"output": [assistant_message("It is sunny in Paris.", item_id="m1")]},
                {"output": [assistant_message("You asked about Paris.", item_id="m2")]},
            ]
        )
        agent = Agent(name="assistant", model=model, tools=[weather])
        session = make("run")
        first = await Runner.run(agent, "Weather in Paris?", session=session)
        second = await Runner.run(agent, "Which city did I ask about?", session=session)
        model.assert_complete()
        out = [
            first.final_output,
            second.final_output,
            model.calls[-1].input,
            await session.get_items(),
        ]
        await _close(session)
        return out

    theirs, ours = side_by_side(store, tmp_path, script)
    assert ours == theirs
    assert ours[1] == "You asked about Paris."
    assert any(item.get("type") == "function_call_output" for item in ours[3])
