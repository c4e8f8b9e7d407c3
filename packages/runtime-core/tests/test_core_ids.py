"""Time-sortable ids: UUIDv7 format, ordering (also within one millisecond), timestamps."""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
from runtime_core import ValidationError, id_timestamp, new_id, validate_id

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_new_id_is_a_lowercase_rfc9562_uuid_version_7() -> None:
    value = new_id()
    assert UUID7.match(value)
    parsed = uuid.UUID(value)
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert str(parsed) == value


def test_ids_sort_by_creation_as_plain_strings() -> None:
    ids = [new_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def _now_ms() -> int:
    # Never pass a time in the future to new_id in tests: ids stay monotonic per process, so a
    # future time would hold every later id of the process at that time.
    return time.time_ns() // 1_000_000


def test_ids_made_in_the_same_millisecond_keep_their_order() -> None:
    ms = _now_ms()
    ids = [new_id(now_ms=ms) for _ in range(300)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 300
    # the counter field (rand_a) grows by one per id while the millisecond stays the same
    stamps = [id_timestamp(i) for i in ids]
    counters = [int(i.replace("-", "")[13:16], 16) for i in ids]
    for a, b, ca, cb in zip(stamps, stamps[1:], counters, counters[1:], strict=False):
        assert b > a or cb == ca + 1


def test_more_than_4096_ids_in_one_millisecond_borrow_the_next_millisecond_and_stay_ordered() -> None:
    ms = _now_ms()
    ids = [new_id(now_ms=ms) for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5000
    assert id_timestamp(ids[-1]) > id_timestamp(ids[0])


def test_a_clock_going_backwards_does_not_break_ordering() -> None:
    ms = _now_ms()
    first = new_id(now_ms=ms)
    second = new_id(now_ms=ms - 5_000)
    assert second > first


def test_ids_from_many_threads_are_unique() -> None:
    out: list[list[str]] = [[] for _ in range(4)]

    def work(i: int) -> None:
        out[i].extend(new_id() for _ in range(2000))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for chunk in out for i in chunk]
    assert len(set(every)) == len(every)
    for chunk in out:
        assert chunk == sorted(chunk)


def test_id_timestamp_is_the_encoded_millisecond_in_utc() -> None:
    ms = 1_735_689_600_123  # 2025-01-01T00:00:00.123Z
    value = str(uuid.UUID(int=ms << 80 | 0x7 << 76 | 0x123 << 64 | 0b10 << 62 | 42))
    assert validate_id(value) == value
    assert id_timestamp(value) == datetime(2025, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)
    assert id_timestamp(value).tzinfo is UTC


def test_id_timestamp_of_a_fresh_id_is_now() -> None:
    before = datetime.now(UTC)
    stamp = id_timestamp(new_id())
    after = datetime.now(UTC)
    # earlier tests may have borrowed a few milliseconds ahead; never more than a second
    assert before.timestamp() - 0.001 <= stamp.timestamp() <= after.timestamp() + 1


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not-an-id",
        str(uuid.uuid4()),  # version 4
        "0190C8E2-7B4A-7C3D-8E9F-0123456789AB",  # upper case
        "0190c8e2-7b4a-7c3d-0e9f-0123456789ab",  # wrong variant
        "0190c8e2-7b4a-7c3d-8e9f-0123456789ab ",
        "0190c8e27b4a7c3d8e9f0123456789ab",
        None,
        42,
    ],
)
def test_validate_id_refuses_anything_but_a_uuid7_string(bad: object) -> None:
    with pytest.raises(ValidationError, match="must be a UUIDv7 string"):
        validate_id(bad)


def test_validate_id_names_what_was_checked_and_returns_the_id() -> None:
    good = new_id()
    assert validate_id(good) == good
    with pytest.raises(ValidationError, match=r"^thread id must be"):
        validate_id("x", "thread id")


def test_id_timestamp_refuses_a_malformed_id() -> None:
    with pytest.raises(ValidationError):
        id_timestamp("nope")


@pytest.mark.parametrize("bad", [-1, 1 << 48, 1.5, True, "1"])
def test_new_id_refuses_an_out_of_range_time(bad: object) -> None:
    with pytest.raises(ValidationError, match="now_ms"):
        new_id(now_ms=bad)  # type: ignore[arg-type]
