"""The session DB on every available driver: open, get, touch, close, list, stale cleanup."""

from __future__ import annotations

from datetime import timedelta

import pytest
from runtime_core import (
    ConflictError,
    CorruptionError,
    ManualClock,
    NotFoundError,
    SessionStatus,
    SessionStore,
    ValidationError,
    new_id,
)
from runtime_persistence import Sessions
from runtime_persistence.session.sessions import SESSION_NS, SESSION_STATUS_NS
from runtime_persistence.testing import TestStore, store_fixture

session_store = store_fixture(modes=("sync", "async"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sessions(session_store: TestStore, clock: ManualClock) -> Sessions:
    sessions: Sessions = session_store.make(Sessions, clock=clock)
    return sessions


def test_sessions_implement_the_core_protocol(sessions: Sessions) -> None:
    assert isinstance(sessions, SessionStore)


def test_an_opened_session_reads_back_active(sessions: Sessions, clock: ManualClock) -> None:
    opened = sessions.open("cli", metadata={"user": "ann", "tags": [1, 2]})
    assert opened.status is SessionStatus.ACTIVE
    assert opened.created_at == opened.last_seen_at == clock.now()
    assert sessions.get(opened.id) == opened


def test_unknown_session_ids_raise_not_found(sessions: Sessions) -> None:
    for op in (sessions.get, sessions.touch, sessions.close):
        with pytest.raises(NotFoundError):
            op(new_id())


def test_bad_input_is_refused_before_anything_is_written(
    sessions: Sessions, session_store: TestStore
) -> None:
    with pytest.raises(ValidationError):
        sessions.open("bad\x00name")
    with pytest.raises(ValidationError):
        sessions.open("ok", metadata={"x": object()})
    with pytest.raises(ValidationError):
        sessions.get("not-an-id")
    with pytest.raises(ValidationError):
        sessions.list(limit=-1)
    with pytest.raises(ValidationError):
        sessions.cleanup_stale(timedelta(seconds=-1))
    assert list(session_store.driver.scan(SESSION_NS)) == []
    assert list(session_store.driver.scan(SESSION_STATUS_NS)) == []


def test_touch_moves_last_seen_at(sessions: Sessions, clock: ManualClock) -> None:
    s = sessions.open()
    clock.advance(42)
    touched = sessions.touch(s.id)
    assert touched.last_seen_at == s.created_at + timedelta(seconds=42)
    assert sessions.get(s.id).last_seen_at == touched.last_seen_at


def test_close_is_final_and_idempotent(sessions: Sessions) -> None:
    s = sessions.open()
    closed = sessions.close(s.id)
    assert closed.status is SessionStatus.CLOSED
    assert sessions.close(s.id) == closed
    with pytest.raises(ConflictError):
        sessions.touch(s.id)


def test_list_is_newest_first_with_status_filter_and_limit(sessions: Sessions) -> None:
    made = [sessions.open(f"s{i}") for i in range(5)]
    sessions.close(made[1].id)
    sessions.close(made[3].id)
    assert [s.id for s in sessions.list()] == [s.id for s in reversed(made)]
    assert [s.id for s in sessions.list(limit=2)] == [made[4].id, made[3].id]
    assert [s.id for s in sessions.list(status=SessionStatus.CLOSED)] == [made[3].id, made[1].id]
    assert [s.id for s in sessions.list(status=SessionStatus.ACTIVE)] == [made[4].id, made[2].id, made[0].id]
    assert sessions.list(limit=0) == []


def test_cleanup_marks_only_sessions_not_seen_for_long_enough(sessions: Sessions, clock: ManualClock) -> None:
    old, fresh, closed = sessions.open("old"), sessions.open("fresh"), sessions.open("closed")
    sessions.close(closed.id)
    clock.advance(timedelta(minutes=10))
    sessions.touch(fresh.id)
    assert sessions.cleanup_stale(timedelta(minutes=5)) == [old.id]
    assert sessions.get(old.id).status is SessionStatus.STALE
    assert sessions.get(fresh.id).status is SessionStatus.ACTIVE
    assert sessions.get(closed.id).status is SessionStatus.CLOSED
    assert [s.id for s in sessions.list(status=SessionStatus.STALE)] == [old.id]
    assert sessions.cleanup_stale(timedelta(minutes=5)) == []  # marked once


def test_a_touch_after_cleanup_won_raises_conflict(sessions: Sessions, clock: ManualClock) -> None:
    s = sessions.open()
    clock.advance(timedelta(hours=1))
    assert sessions.cleanup_stale(timedelta(minutes=1)) == [s.id]
    with pytest.raises(ConflictError):
        sessions.touch(s.id)
    assert sessions.get(s.id).status is SessionStatus.STALE


def test_cleanup_racing_a_touch_rereads_and_keeps_the_touched_session(
    session_store: TestStore, clock: ManualClock
) -> None:
    """Cleanup reads the session as idle, a touch lands before its compare-and-set: the CAS
    loses, cleanup re-reads, sees the fresh heartbeat, and leaves the session active."""
    s = session_store.make(Sessions, clock=clock).open()
    clock.advance(timedelta(hours=1))
    cleaner = session_store.make_with_writer_between(
        Sessions, SESSION_NS, lambda toucher: toucher.touch(s.id), clock=clock
    )
    assert cleaner.cleanup_stale(timedelta(minutes=1)) == []
    assert cleaner.get(s.id).status is SessionStatus.ACTIVE
    assert [x.id for x in cleaner.list(status=SessionStatus.ACTIVE)] == [s.id]


def test_a_damaged_session_record_raises_corruption(sessions: Sessions, session_store: TestStore) -> None:
    s = sessions.open()
    entry = session_store.driver.get(SESSION_NS, s.id)
    assert entry is not None
    damaged = bytearray(entry.value)
    damaged[len(damaged) // 2] ^= 0x01
    session_store.driver.put(SESSION_NS, s.id, bytes(damaged))
    with pytest.raises(CorruptionError):
        sessions.get(s.id)
