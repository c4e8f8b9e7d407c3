"""Export and import carry sessions (with their message logs, keys and runs), tasks (the
hierarchy and logs) and events when asked: a lossless round trip through SQLite and PostgreSQL,
sync and async; the records that belong with the threads asked for; and a damaged, truncated or
forged file refused before any record is written."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from runtime_core import (
    ConflictError,
    CorruptionError,
    Event,
    Run,
    RunStatus,
    TaskStatus,
    ValidationError,
    new_id,
)
from runtime_persistence import Checkpoints
from runtime_persistence.checkpoint._export_format import SECTIONS_VERSION, FrameWriter
from runtime_persistence.checkpoint.export import ExportReport, import_threads, import_threads_async
from runtime_persistence.session import Events, MessageLog, RunRecords, Sessions, Tasks
from runtime_persistence.session.transfer import export_all, export_all_async, import_all, import_all_async
from runtime_persistence.storage.drivers.memory import MemoryDriver
from runtime_persistence.storage.threaded import AsyncThreadDriver
from runtime_persistence.testing import TestStore, store_fixture
from runtime_persistence.testing.blocking import blocking, unwrap

section_target = store_fixture("sqlite", "postgres", modes=("sync", "async"))
section_mode = store_fixture("memory", modes=("sync", "async"))
NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)
NAMESPACES = (
    "thread",
    "session",
    "session.key",
    "session.message",
    "session.status",
    "session.thread",
    "session.run",
    "run",
    "run.thread",
    "run.status",
    "task",
    "task.child",
    "task.log",
    "event",
    "event.topic",
)


def _fresh(like: TestStore) -> TestStore:
    """An empty memory store in the mode of ``like``."""
    if not like.is_async:
        return TestStore(name="memory", driver=MemoryDriver(), url=None, in_process=True)
    assert like.portal is not None
    driver = blocking(AsyncThreadDriver(MemoryDriver()), like.portal)
    return TestStore(
        name="memory", driver=driver, url=None, in_process=True, mode="async", portal=like.portal
    )


def _export(store: TestStore, dest: Any, **options: Any) -> ExportReport:
    cps = store.make(Checkpoints)
    if not store.is_async:
        return export_all(cps, dest, **options)
    assert store.portal is not None
    return store.portal.call(export_all_async(unwrap(cps), dest, **options))


def _import(store: TestStore, src: Any, *, plain: bool = False) -> ExportReport:
    cps = store.make(Checkpoints)
    if not store.is_async:
        return (import_threads if plain else import_all)(cps, src)
    assert store.portal is not None
    return store.portal.call((import_threads_async if plain else import_all_async)(unwrap(cps), src))


def _populate(s: TestStore) -> dict[str, Any]:
    cps, sessions, log = s.make(Checkpoints), s.make(Sessions), s.make(MessageLog)
    runs, tasks, events = s.make(RunRecords), s.make(Tasks), s.make(Events)
    main = cps.create_thread("main")
    cps.save(main.id, {"messages": ["hi"]})
    other = cps.create_thread("other")
    cps.save(other.id, {"n": 1})
    a = sessions.get_or_create("chat-42", "chat", metadata={"who": "ada"})[0]
    sessions.link(a.id, thread_id=main.id)
    log.append(a.id, [{"role": "user", "content": "hi", "at": NOW}])
    log.append(a.id, [{"role": "assistant", "content": "hello"}, b"\x00raw"])
    run = runs.create(
        Run(id=new_id(), thread_id=main.id, agent="coder", status=RunStatus.RUNNING, started_at=NOW)
    )
    sessions.link(a.id, run_id=run.id)
    sessions.close(a.id)
    b = sessions.open("elsewhere")
    sessions.link(b.id, thread_id=other.id)
    log.append(b.id, ["other log"])
    root = tasks.create("plan")
    child = tasks.create("build", parent_id=root.id, thread_id=main.id, run_id=run.id)
    tasks.transition(child.id, TaskStatus.RUNNING)
    tasks.log(child.id, "started")
    tasks.log(child.id, "halfway", level="warning")
    unrelated = tasks.create("chores", thread_id=other.id)
    e1 = events.append(
        Event(id=new_id(), topic="chat/1", created_at=NOW, payload={"x": [1, 2]}, thread_id=main.id)
    )
    e2 = events.append(Event(id=new_id(), topic="sys", created_at=NOW, sender="broker"))
    return {
        "main": main.id,
        "other": other.id,
        "a": a.id,
        "b": b.id,
        "run": run.id,
        "root": root.id,
        "child": child.id,
        "unrelated": unrelated.id,
        "events": [e1.id, e2.id],
    }


def _records(s: TestStore) -> dict[str, Any]:
    sessions, log, runs, tasks, events = (
        s.make(Sessions),
        s.make(MessageLog),
        s.make(RunRecords),
        s.make(Tasks),
        s.make(Events),
    )
    every_session = sorted(sessions.list(limit=100), key=lambda x: x.id)
    every_task = tasks.load_all()
    return {
        "sessions": every_session,
        "messages": {x.id: log.last(x.id) for x in every_session},
        "runs": sorted(runs.list(limit=100), key=lambda r: r.id),
        "tasks": every_task,
        "logs": {t.id: [(g.at, g.message, g.level) for g in tasks.logs(t.id)] for t in every_task},
        "events": [events.get(e.key) for e in s.driver.scan("event")],
    }


def test_sessions_tasks_and_events_round_trip(section_target: TestStore) -> None:
    source = _fresh(section_target)
    made = _populate(source)
    buf = io.BytesIO()
    report = _export(source, buf)
    # "messages" counts stored chunks of message logs: the two small appends to a's log share one
    assert report.records == {"session": 2, "messages": 2, "run": 1, "task": 3, "task_log": 2, "event": 2}
    imported = _import(section_target, io.BytesIO(buf.getvalue()))
    assert imported.records == report.records and imported.threads == 2
    assert _records(section_target) == _records(source)
    # the indexes the repositories keep came with the records
    sessions, tasks, runs = (
        section_target.make(Sessions),
        section_target.make(Tasks),
        section_target.make(RunRecords),
    )
    assert [x.id for x in sessions.of_thread(made["main"])] == [made["a"]]
    assert [x.id for x in sessions.of_run(made["run"])] == [made["a"]]
    assert sessions.by_key("chat-42").id == made["a"]
    assert [t.id for t in tasks.children(made["root"])] == [made["child"]]
    assert [r.id for r in runs.list(thread_id=made["main"])] == [made["run"]]
    # and back out of the server store into another fresh one
    again = io.BytesIO()
    assert _export(section_target, again).records == report.records
    copy = _fresh(section_target)
    _import(copy, io.BytesIO(again.getvalue()))
    assert _records(copy) == _records(source)


def test_the_records_of_the_threads_asked_for(section_mode: TestStore) -> None:
    source = _fresh(section_mode)
    made = _populate(source)
    buf = io.BytesIO()
    report = _export(source, buf, thread_ids=[made["main"]], include=["sessions", "tasks", "events"])
    assert report.records == {"session": 1, "messages": 1, "run": 1, "task": 2, "task_log": 2, "event": 1}
    target = _fresh(section_mode)
    _import(target, io.BytesIO(buf.getvalue()))
    got = _records(target)
    assert [x.id for x in got["sessions"]] == [made["a"]]
    assert [t.id for t in got["tasks"]] == [made["root"], made["child"]]  # the ancestor came along
    assert [e.id for e in got["events"]] == made["events"][:1]
    only_tasks = io.BytesIO()
    assert set(_export(source, only_tasks, include=["tasks"]).records) == {"task", "task_log"}


def test_without_include_only_threads_travel_as_before(section_mode: TestStore) -> None:
    source = _fresh(section_mode)
    _populate(source)
    buf = io.BytesIO()
    assert _export(source, buf, include=()).records == {}
    target = _fresh(section_mode)
    _import(target, io.BytesIO(buf.getvalue()), plain=True)  # a version 2 file, read as before
    assert _records(target)["sessions"] == []


def _assert_nothing_written(store: TestStore) -> None:
    for ns in NAMESPACES:
        assert list(store.driver.scan(ns)) == [], ns


@pytest.mark.parametrize("where", ["section", "truncated", "tail"])
def test_a_damaged_or_truncated_export_writes_no_record(where: str, section_mode: TestStore) -> None:
    source = _fresh(section_mode)
    made = _populate(source)
    buf = io.BytesIO()
    _export(source, buf)
    data = bytearray(buf.getvalue())
    if where == "section":  # a byte inside the event frames, after every thread
        data[data.rindex(b"chat/1") + 2] ^= 0x01
    elif where == "truncated":
        data = data[: data.rindex(made["b"].encode())]
    else:
        data = data[:-7]
    target = _fresh(section_mode)
    with pytest.raises(CorruptionError):
        _import(target, io.BytesIO(bytes(data)))
    _assert_nothing_written(target)


def test_a_file_with_sections_is_refused_by_a_plain_import(section_mode: TestStore) -> None:
    source = _fresh(section_mode)
    _populate(source)
    buf = io.BytesIO()
    _export(source, buf)
    target = _fresh(section_mode)
    with pytest.raises(ValidationError, match="also carries sessions, tasks, events"):
        _import(target, io.BytesIO(buf.getvalue()), plain=True)
    _assert_nothing_written(target)


SID = "01a1ffeb-d338-710a-9613-78f257a0d338"
TID = "01a1ffeb-d338-710a-9613-78f257a0d339"


def _session(sid: str = SID, **changes: Any) -> dict[str, Any]:
    return {
        "k": "session",
        "session": {"id": sid, "created_at": NOW, "last_seen_at": NOW, **changes},
        "keys": [],
    }


def _task(tid: str = TID, **changes: Any) -> dict[str, Any]:
    return {"k": "task", "task": {"id": tid, "title": "t", "created_at": NOW, "updated_at": NOW, **changes}}


def _forged(*frames: dict[str, Any], with_: tuple[str, ...] = ("sessions", "tasks", "events")) -> bytes:
    out = FrameWriter()
    data = out.start()
    data += out.frame(
        "header",
        format="keepup-export",
        version=SECTIONS_VERSION,
        threads=[],
        checkpoints=0,
        **{"with": list(with_)},
    )
    for frame in frames:
        data += out.frame(frame["k"], **{k: v for k, v in frame.items() if k != "k"})
    return data + out.end()


@pytest.mark.parametrize(
    "frames",
    [
        [_session("not an id")],
        [_session(status="sleeping")],
        [_session(), _session()],  # twice
        [_session(), {"k": "messages", "session_id": TID, "seq": 0, "items": ["x"]}],  # another session
        [
            _session(),
            {"k": "messages", "session_id": SID, "seq": 1, "items": ["x"]},
            {"k": "messages", "session_id": SID, "seq": 1, "items": ["y"]},
        ],  # seq not increasing
        [{"k": "messages", "session_id": SID, "seq": 0, "items": ["x"]}],  # before any session
        [_session(), {"k": "messages", "session_id": SID, "seq": 0, "items": []}],
        [{**_session(), "keys": [""]}],
        [{**_session(), "keys": ["k"]}, {**_session(TID), "keys": ["k"]}],  # one key, two sessions
        [{"k": "run", "run": {"id": TID}}],
        [_task(parent_id=SID)],  # a parent the file does not carry
        [_task(), _task()],
        [{"k": "task_log", "log": {"task_id": TID, "at": NOW, "message": "m", "level": "info"}}],
        [{"k": "event", "event": {"id": TID, "topic": "", "created_at": NOW}}],
        [
            {"k": "event", "event": {"id": TID, "topic": "t", "created_at": NOW}},
            {"k": "event", "event": {"id": TID, "topic": "t", "created_at": NOW}},
        ],
    ],
)
def test_forged_section_frames_are_refused_and_nothing_is_written(
    frames: list[dict[str, Any]], section_mode: TestStore
) -> None:
    target = _fresh(section_mode)
    with pytest.raises(CorruptionError):
        _import(target, io.BytesIO(_forged(*frames)))
    _assert_nothing_written(target)


def test_a_frame_of_a_section_the_header_does_not_name_is_refused(section_mode: TestStore) -> None:
    target = _fresh(section_mode)
    with pytest.raises(CorruptionError):
        _import(target, io.BytesIO(_forged(_task(), with_=("sessions",))))
    _assert_nothing_written(target)


def test_records_the_target_holds_or_links_to_its_own_threads_are_conflicts(section_mode: TestStore) -> None:
    target = _fresh(section_mode)
    made = _populate(target)
    before = {ns: list(target.driver.scan(ns)) for ns in NAMESPACES}
    linking = _session(thread_ids=[made["main"]])  # the target's own thread, not in the file
    for frames in ([linking], [_task(thread_id=made["other"])], [_session(made["a"])]):
        with pytest.raises(ConflictError):
            _import(target, io.BytesIO(_forged(*frames)))
    assert {ns: list(target.driver.scan(ns)) for ns in NAMESPACES} == before
