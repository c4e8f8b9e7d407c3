"""The session DB as a product, on every available driver: links to threads and runs, purge by
retention (never an active session), the record format version with forward migration from the
old format, the sweeper (also deleting linked threads and runs when asked), and several sweeping
processes racing while clients heartbeat."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from runtime_core import (
    ConflictError,
    CorruptionError,
    ManualClock,
    NotFoundError,
    Run,
    RunStatus,
    SessionStatus,
    SystemClock,
    new_id,
)
from runtime_persistence import (
    AsyncSessionSweeper,
    Checkpoints,
    RunRecords,
    Sessions,
    SessionSweeper,
    SweeperThread,
)
from runtime_persistence.session.sessions import SESSION_NS, SESSION_STATUS_NS
from runtime_persistence.storage.serialization import EnvelopeSerializer
from runtime_persistence.storage.stores import open_store
from runtime_persistence.testing import TestStore, store_fixture
from runtime_persistence.testing.blocking import blocking, unwrap

session_db = store_fixture(modes=("sync", "async"))
race_db = store_fixture("sqlite", "redis")  # the short race; the slow one runs on every server too
race_db_all = store_fixture("sqlite", "file", "postgres", "mysql", "redis")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sessions(session_db: TestStore, clock: ManualClock) -> Sessions:
    made: Sessions = session_db.make(Sessions, clock=clock)
    return made


def _sweeper(store: TestStore, sessions: Sessions, **kwargs: Any) -> SessionSweeper:
    """A sweeper in the store's mode (the async one behind the blocking proxy)."""
    if not store.is_async:
        return SessionSweeper(sessions, **kwargs)
    assert store.portal is not None
    made = AsyncSessionSweeper(unwrap(sessions), **{k: unwrap(v) for k, v in kwargs.items()})
    proxy: SessionSweeper = blocking(made, store.portal)
    return proxy


def test_a_session_links_its_threads_and_runs(sessions: Sessions) -> None:
    s = sessions.open("agent")
    thread, run = new_id(), new_id()
    sessions.link(s.id, thread_id=thread)
    linked = sessions.link(s.id, thread_id=thread, run_id=run)  # the thread twice: once
    assert (linked.thread_ids, linked.run_ids) == ((thread,), (run,))
    assert sessions.get(s.id) == linked
    assert [x.id for x in sessions.of_thread(thread)] == [s.id]
    assert [x.id for x in sessions.of_run(run)] == [s.id]
    assert sessions.of_thread(new_id()) == []
    sessions.close(s.id)
    with pytest.raises(ConflictError):
        sessions.link(s.id, thread_id=new_id())


def test_close_and_stale_record_when_the_session_ended(sessions: Sessions, clock: ManualClock) -> None:
    a, b = sessions.open(), sessions.open()
    clock.advance(60)
    assert sessions.close(a.id).ended_at == clock.now()
    clock.advance(60)
    assert sessions.cleanup_stale(timedelta(seconds=90)) == [b.id]
    assert sessions.get(b.id).ended_at == clock.now()
    assert sessions.get(a.id).ended_at == a.created_at + timedelta(seconds=60)


def test_purge_deletes_only_sessions_that_ended_long_enough_ago(
    sessions: Sessions, clock: ManualClock, session_db: TestStore
) -> None:
    old_active = sessions.open("never heartbeats but is never swept")
    closed = sessions.open()
    sessions.close(closed.id)
    clock.advance(3600)
    recent = sessions.open()
    sessions.close(recent.id)
    purged = sessions.purge(timedelta(minutes=30))
    assert [s.id for s in purged] == [closed.id]
    assert sessions.purge(timedelta(minutes=30)) == []  # a second purge finds nothing
    with pytest.raises(NotFoundError):
        sessions.get(closed.id)
    assert sessions.get(old_active.id).status is SessionStatus.ACTIVE
    assert sessions.get(recent.id).status is SessionStatus.CLOSED
    assert sorted(e.key for e in session_db.driver.scan(SESSION_STATUS_NS)) == sorted(
        [f"active/{old_active.id}", f"closed/{recent.id}"]
    )
    with pytest.raises(ConflictError):
        sessions.delete(old_active.id)


def _v1_record(session_id: str, status: str, seen: datetime) -> dict[str, Any]:
    """A session record as the first release wrote it (no format version, links or ended_at)."""
    return {
        "id": session_id,
        "created_at": seen - timedelta(hours=1),
        "last_seen_at": seen,
        "name": "from v1",
        "status": status,
        "metadata": {"user": "ann"},
    }


def test_old_format_records_migrate_forward_with_their_data(
    session_db: TestStore, clock: ManualClock
) -> None:
    ser = EnvelopeSerializer()
    seen = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ids = {"active": new_id(), "closed": new_id()}
    for status, sid in ids.items():
        session_db.driver.put(SESSION_NS, sid, ser.dumps(_v1_record(sid, status, seen)))
        session_db.driver.put(SESSION_STATUS_NS, f"{status}/{sid}", b"\x01")
    sessions: Sessions = session_db.make(Sessions, clock=clock)
    closed = sessions.get(ids["closed"])
    assert (closed.name, closed.metadata, closed.status) == ("from v1", {"user": "ann"}, SessionStatus.CLOSED)
    assert closed.ended_at == seen and closed.format_version == 2 and closed.thread_ids == ()
    assert sessions.get(ids["active"]).ended_at is None
    assert sessions.migrate(dry_run=True) == 2
    assert sessions.migrate() == 2
    assert sessions.migrate() == 0
    raw = ser.loads(
        session_db.driver.get(SESSION_NS, ids["closed"]).value,  # type: ignore[union-attr]
        at=(SESSION_NS, ids["closed"]),
    )
    assert raw["format_version"] == 2 and raw["ended_at"] == seen and raw["metadata"] == {"user": "ann"}
    assert sessions.touch(ids["active"]).status is SessionStatus.ACTIVE  # a migrated session lives on


def test_a_record_of_a_newer_format_is_refused_not_guessed(session_db: TestStore, clock: ManualClock) -> None:
    sid = new_id()
    record = {**_v1_record(sid, "active", datetime(2026, 1, 1, tzinfo=UTC)), "format_version": 99}
    session_db.driver.put(SESSION_NS, sid, EnvelopeSerializer().dumps(record))
    sessions: Sessions = session_db.make(Sessions, clock=clock)
    with pytest.raises(CorruptionError, match="upgrade keepup"):
        sessions.get(sid)


def test_the_sweeper_marks_then_purges_and_a_dry_run_changes_nothing(
    sessions: Sessions, session_db: TestStore, clock: ManualClock
) -> None:
    quiet = sessions.open()
    closed = sessions.open()
    sessions.close(closed.id)
    clock.advance(7200)
    live = sessions.open()
    sweeper = _sweeper(session_db, sessions, stale_after=timedelta(hours=1), purge_after=timedelta(hours=1))
    plan = sweeper.sweep(dry_run=True)
    assert (plan.dry_run, plan.marked_stale, plan.purged) == (True, (quiet.id,), (closed.id,))
    assert sessions.get(quiet.id).status is SessionStatus.ACTIVE
    report = sweeper.sweep()
    assert (report.marked_stale, report.purged) == ((quiet.id,), (closed.id,))
    clock.advance(3600)
    sessions.touch(live.id)
    assert sweeper.sweep().purged == (quiet.id,)
    assert [s.id for s in sessions.list()] == [live.id]


def test_the_sweeper_deletes_linked_threads_and_runs_only_when_asked(
    session_db: TestStore, clock: ManualClock
) -> None:
    sessions: Sessions = session_db.make(Sessions, clock=clock)
    checkpoints: Checkpoints = session_db.make(Checkpoints, clock=clock)
    runs: RunRecords = session_db.make(RunRecords)
    kept_thread = checkpoints.create_thread("kept").id
    gone_thread = checkpoints.create_thread("gone").id
    checkpoints.save(gone_thread, {"n": 1})
    run = runs.create(
        Run(
            id=new_id(),
            thread_id=gone_thread,
            agent="a",
            status=RunStatus.COMPLETED,
            started_at=clock.now(),
            ended_at=clock.now(),
        )
    )
    s1, s2 = sessions.open(), sessions.open()
    sessions.link(s1.id, thread_id=kept_thread)
    sessions.link(s2.id, thread_id=gone_thread, run_id=run.id)
    sessions.close(s1.id)
    sessions.close(s2.id)
    clock.advance(7200)
    keep = _sweeper(session_db, sessions, stale_after=timedelta(hours=1), purge_after=timedelta(0))
    assert keep.sweep().purged == tuple(sorted([s1.id, s2.id]))
    assert checkpoints.get_thread(kept_thread).id == kept_thread  # not asked: kept
    s3 = sessions.open()
    sessions.link(s3.id, thread_id=gone_thread, run_id=run.id)
    sessions.close(s3.id)
    both = _sweeper(
        session_db,
        sessions,
        stale_after=timedelta(hours=1),
        purge_after=timedelta(0),
        delete_linked=True,
        checkpoints=checkpoints,
        runs=runs,
    )
    report = both.sweep()
    assert (report.purged, report.threads_deleted, report.runs_deleted) == (
        (s3.id,),
        (gone_thread,),
        (run.id,),
    )
    with pytest.raises(NotFoundError):
        checkpoints.get_thread(gone_thread)
    with pytest.raises(NotFoundError):
        runs.get(run.id)
    assert checkpoints.get_thread(kept_thread).id == kept_thread


def test_a_sweeper_thread_runs_in_the_background(session_db: TestStore) -> None:
    if session_db.is_async:
        pytest.skip("the background thread drives the sync sweeper")
    past = ManualClock(datetime.now(UTC) - timedelta(hours=2))
    old: Sessions = session_db.make(Sessions, clock=past)
    stale = old.open()
    sweeper = SessionSweeper(Sessions(session_db.driver), stale_after=timedelta(hours=1))
    reports: list[Any] = []
    with SweeperThread(sweeper, timedelta(milliseconds=20), on_report=reports.append):
        deadline = time.monotonic() + 10
        while not reports and time.monotonic() < deadline:
            time.sleep(0.01)
    assert reports and reports[0].marked_stale == (stale.id,)


# -- several sweepers racing ---------------------------------------------------------------------

RACE_SECONDS = float(os.environ.get("KEEPUP_SWEEP_RACE_SECONDS", "2"))
STALE_AFTER = timedelta(seconds=60)
"""Far above the heartbeat interval (0.05 s) even on a loaded machine, and far below the silence
of the stale sessions (an hour): a live session is never silent that long, a dead one always."""


def _sweeping_process(url: str, seconds: float, out: Any) -> None:
    driver = open_store(url)
    try:
        sweeper = SessionSweeper(
            Sessions(driver, clock=SystemClock()), stale_after=STALE_AFTER, purge_after=timedelta(0)
        )
        marked: list[str] = []
        purged: list[str] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            report = sweeper.sweep()
            marked.extend(report.marked_stale)
            purged.extend(report.purged)
        out.put((marked, purged))
    finally:
        driver.close()


def _race(store: TestStore, seconds: float, dead_count: int, live_count: int) -> None:
    assert store.url is not None
    past = ManualClock(datetime.now(UTC) - timedelta(hours=1))
    dead = [Sessions(store.driver, clock=past).open(f"dead {i}").id for i in range(dead_count)]
    live_sessions = Sessions(store.driver)
    live = [live_sessions.open(f"live {i}").id for i in range(live_count)]
    stop = threading.Event()
    lost: list[str] = []

    def heartbeat() -> None:
        while not stop.is_set():
            for sid in live:
                try:
                    live_sessions.touch(sid)
                except Exception as exc:  # a live session must never be marked or purged
                    lost.append(f"{sid}: {exc}")
            stop.wait(0.05)

    beating = threading.Thread(target=heartbeat)
    beating.start()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_sweeping_process, args=(store.url, seconds, out)) for _ in range(3)]
    try:
        for p in procs:
            p.start()
        results = [out.get(timeout=120 + seconds) for _ in procs]
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
    finally:
        stop.set()
        beating.join()
    marked = [sid for m, _ in results for sid in m]
    purged = [sid for _, p in results for sid in p]
    assert lost == []
    assert sorted(marked) == sorted(dead)  # each stale session marked exactly once, by one sweeper
    assert sorted(purged) == sorted(dead)  # and purged exactly once
    assert {s.id for s in live_sessions.list(limit=1000)} == set(live)
    assert all(live_sessions.get(sid).status is SessionStatus.ACTIVE for sid in live)


def test_three_sweeping_processes_purge_each_stale_session_once_and_no_live_one(race_db: TestStore) -> None:
    _race(race_db, RACE_SECONDS, dead_count=30, live_count=5)


@pytest.mark.slow
def test_three_sweeping_processes_long_race(race_db_all: TestStore) -> None:
    _race(race_db_all, 20.0, dead_count=300, live_count=20)
