"""The session message log on every available driver: append, last n, pop, clear, bad input,
damaged records, and appends from several processes at once."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from runtime_core import ConflictError, CorruptionError, ValidationError, new_id
from runtime_persistence import MessageLog, open_store
from runtime_persistence.session._message_records import MessageChunk, message_key
from runtime_persistence.session.messages import MESSAGE_NS
from runtime_persistence.storage.serialization import EnvelopeSerializer
from runtime_persistence.testing import TestStore, open_test_store, store_fixture

log_store = store_fixture(modes=("sync", "async"))


@pytest.fixture
def log(log_store: TestStore) -> MessageLog:
    made: MessageLog = log_store.make(MessageLog)
    return made


def test_a_log_never_written_is_empty(log: MessageLog) -> None:
    sid = new_id()
    assert log.last(sid) == []
    assert log.last(sid, 5) == []
    assert log.pop(sid) is None
    assert log.pop(sid, default="none") == "none"
    log.clear(sid)


def test_appended_items_read_back_in_order_as_plain_values(log: MessageLog) -> None:
    sid = new_id()
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    items: list[Any] = [{"role": "user", "content": "hi"}, "text", 3, None, [1, 2], {"at": when}]
    assert log.append(sid, items[:2]) == 2
    assert log.append(sid, items[2:]) == 4
    assert log.append(sid, []) == 0
    assert log.last(sid) == items


def test_last_n_returns_the_newest_items_oldest_first_across_appends(log: MessageLog) -> None:
    sid = new_id()
    for start in range(0, 30, 3):
        log.append(sid, [start, start + 1, start + 2])
    assert log.last(sid, 0) == []
    assert log.last(sid, 1) == [29]
    assert log.last(sid, 4) == [26, 27, 28, 29]
    assert log.last(sid, 25) == list(range(5, 30))
    assert log.last(sid, 1000) == list(range(30))


def test_pop_removes_the_newest_item_one_at_a_time(log: MessageLog) -> None:
    sid = new_id()
    log.append(sid, ["a", "b"])
    log.append(sid, ["c"])
    assert log.pop(sid) == "c"
    assert log.pop(sid) == "b"
    assert log.last(sid) == ["a"]
    log.append(sid, ["d"])
    assert log.last(sid) == ["a", "d"]
    assert log.pop(sid) == "d"
    assert log.pop(sid) == "a"
    assert log.pop(sid) is None


def test_clear_empties_one_log_and_leaves_the_others(log: MessageLog) -> None:
    mine, other = new_id(), new_id()
    for i in range(5):
        log.append(mine, [i, i])
    log.append(other, ["kept"])
    log.clear(mine)
    assert log.last(mine) == []
    assert log.pop(mine) is None
    assert log.last(other) == ["kept"]
    log.append(mine, ["again"])
    assert log.last(mine) == ["again"]


def test_a_long_log_is_read_whole_across_pages(log: MessageLog) -> None:
    sid = new_id()
    for i in range(600):
        log.append(sid, [i])
    assert log.last(sid) == list(range(600))
    assert log.last(sid, 300) == list(range(300, 600))
    log.clear(sid)
    assert log.last(sid) == []


def test_bad_input_is_refused_before_anything_is_written(log: MessageLog) -> None:
    sid = new_id()
    log.append(sid, ["first"])
    with pytest.raises(ValidationError):
        log.append("not-an-id", ["x"])
    with pytest.raises(ValidationError):
        log.append(sid, ["fine", object()])
    with pytest.raises(ValidationError):
        log.append(sid, "a string is not a list of items")
    with pytest.raises(ValidationError):
        log.last(sid, -1)
    with pytest.raises(ValidationError):
        log.pop("../x")
    assert log.last(sid) == ["first"]


def test_a_pop_that_loses_a_race_takes_the_next_item(log_store: TestStore) -> None:
    sid = new_id()
    seed: MessageLog = log_store.make(MessageLog)
    seed.append(sid, ["a", "b", "c"])
    popped: list[Any] = []

    def other_pops_first(other: Any) -> Any:
        if log_store.is_async:

            async def run() -> None:
                popped.append(await other.pop(sid))

            return run()
        popped.append(other.pop(sid))
        return None

    racing: MessageLog = log_store.make_with_writer_between(MessageLog, MESSAGE_NS, other_pops_first)
    assert racing.pop(sid) == "b"
    assert popped == ["c"]
    assert seed.last(sid) == ["a"]


def test_an_append_that_loses_a_race_lands_after_the_winner(log_store: TestStore) -> None:
    sid = new_id()

    def other_appends_first(other: Any) -> Any:
        return other.append(sid, ["winner"])

    racing: MessageLog = log_store.make_with_writer_between(MessageLog, MESSAGE_NS, other_appends_first)
    racing.append(sid, ["loser-1", "loser-2"])
    assert log_store.make(MessageLog).last(sid) == ["winner", "loser-1", "loser-2"]


def test_a_record_moved_under_another_log_is_corruption(log_store: TestStore) -> None:
    log: MessageLog = log_store.make(MessageLog)
    victim, thief = new_id(), new_id()
    log.append(victim, ["secret"])
    assert log.last(victim) == ["secret"]  # remembered by this log object, keyed by its bytes
    entry = next(iter(log_store.driver.scan(MESSAGE_NS, prefix=f"{victim}/")))
    log_store.driver.put(MESSAGE_NS, f"{thief}/{'0' * 12}", entry.value)
    with pytest.raises(CorruptionError):
        log.last(thief)


def test_reading_again_returns_the_same_items_and_never_a_callers_changes(log: MessageLog) -> None:
    sid = new_id()
    log.append(sid, ["text", 1, None])
    log.append(sid, [{"role": "user", "content": "hi"}])
    first = log.last(sid)
    first[3]["content"] = "changed by the caller"
    first.append("not stored")
    assert log.last(sid) == ["text", 1, None, {"role": "user", "content": "hi"}]
    assert log.pop(sid) == {"role": "user", "content": "hi"}
    assert log.last(sid) == log.last(sid, 3) == ["text", 1, None]


def test_items_too_large_for_one_record_are_split_and_all_kept(tmp_path: Path) -> None:
    with open_test_store("sqlite", tmp_path) as store:
        log = MessageLog(store.driver, serializer=EnvelopeSerializer(max_record_size=4096))
        sid = new_id()
        big = ["x" * 1500 for _ in range(5)]
        log.append(sid, big)
        log.append(sid, ["small"])
        assert log.last(sid) == [*big, "small"]
        assert len(list(store.driver.scan(MESSAGE_NS, prefix=f"{sid}/"))) > 2
        with pytest.raises(ValidationError):
            log.append(sid, ["fits", "y" * 5000])
        assert log.last(sid) == [*big, "small"]


def _append_in_child(url: str, sid: str, writer: int, count: int, start: Any, out: Any) -> None:
    driver = open_store(url)
    try:
        log = MessageLog(driver)
        start.wait(30)
        for i in range(count):
            log.append(sid, [f"{writer}-{i}-a", f"{writer}-{i}-b"])
        out.put(writer)
    except ConflictError as exc:  # pragma: no cover - reported to the parent as a failure
        out.put(repr(exc))
    finally:
        driver.close()


@pytest.mark.parametrize("backend", ["sqlite", "file", "postgres", "redis"])
def test_appends_from_four_processes_lose_nothing_and_keep_each_append_together(
    backend: str, tmp_path: Path
) -> None:
    ctx = multiprocessing.get_context("spawn")
    with open_test_store(backend, tmp_path) as store:
        assert store.url is not None
        sid = new_id()
        start, out = ctx.Event(), ctx.Queue()
        procs = [
            ctx.Process(target=_append_in_child, args=(store.url, sid, w, 25, start, out)) for w in range(4)
        ]
        for p in procs:
            p.start()
        start.set()
        results = sorted(out.get(timeout=120) for _ in procs)
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        assert results == [0, 1, 2, 3]
        items = MessageLog(store.driver).last(sid)
        assert len(items) == 4 * 25 * 2
        assert sorted(items) == sorted(f"{w}-{i}-{s}" for w in range(4) for i in range(25) for s in "ab")
        for pos in range(0, len(items), 2):
            assert items[pos].endswith("-a") and items[pos + 1] == items[pos][:-1] + "b"
        for w in range(4):
            mine = [x for x in items if x.startswith(f"{w}-") and x.endswith("-a")]
            assert mine == [f"{w}-{i}-a" for i in range(25)]


def test_consecutive_small_appends_share_a_chunk_and_pop_from_it(log_store: TestStore) -> None:
    log: MessageLog = log_store.make(MessageLog)
    sid = new_id()
    for i in range(10):
        log.append(sid, [f"q{i}", f"a{i}"])
    assert len(list(log_store.driver.scan(MESSAGE_NS, prefix=f"{sid}/"))) == 1  # one row to read back
    assert log.last(sid, 3) == ["a8", "q9", "a9"]
    assert log.pop(sid) == "a9"
    log.append(sid, ["x" * 20_000])  # too large to join: a chunk of its own
    log.append(sid, ["after"])
    assert log.last(sid, 4) == ["a8", "q9", "x" * 20_000, "after"]
    assert len(log.last(sid)) == 21


def test_a_log_written_one_chunk_per_append_reads_and_grows(log_store: TestStore) -> None:
    """Logs written before chunks were packed hold one chunk per append."""
    log: MessageLog = log_store.make(MessageLog)
    sid = new_id()
    ser = EnvelopeSerializer()
    for seq, items in enumerate([["a", "b"], ["c"]]):
        key = message_key(sid, seq)
        log_store.driver.put(
            MESSAGE_NS, key, ser.dumps(MessageChunk(1, sid, seq, items), at=(MESSAGE_NS, key))
        )
    log.append(sid, ["d", "e"])
    assert log.last(sid) == ["a", "b", "c", "d", "e"]
    assert log.last(sid, 2) == ["d", "e"]
    assert log.pop(sid) == "e"
    log.clear(sid)
    assert log.last(sid) == []
