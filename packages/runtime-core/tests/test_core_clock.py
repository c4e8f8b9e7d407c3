"""The injectable clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from runtime_core import Clock, ManualClock, SystemClock, utc_now


def test_system_clock_reads_aware_utc_and_a_monotonic_counter() -> None:
    clock = SystemClock()
    assert isinstance(clock, Clock)
    now = clock.now()
    assert now.tzinfo is UTC
    assert abs((now - datetime.now(UTC)).total_seconds()) < 5
    a = clock.monotonic()
    b = clock.monotonic()
    assert b >= a
    assert abs(a - time.monotonic()) < 5


def test_utc_now_is_aware() -> None:
    assert utc_now().tzinfo is UTC


def test_manual_clock_moves_only_when_told() -> None:
    start = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
    clock = ManualClock(start)
    assert isinstance(clock, Clock)
    assert clock.now() == start
    assert clock.monotonic() == 0.0
    clock.advance(timedelta(minutes=2))
    clock.advance(0.5)
    assert clock.now() == start + timedelta(minutes=2, seconds=0.5)
    assert clock.monotonic() == 120.5


def test_manual_clock_defaults_to_a_fixed_aware_time() -> None:
    assert ManualClock().now() == datetime(2025, 1, 1, tzinfo=UTC)


def test_manual_clock_refuses_to_go_backwards_or_to_start_naive() -> None:
    clock = ManualClock()
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    assert clock.monotonic() == 0.0
    with pytest.raises(ValueError, match="aware"):
        ManualClock(datetime(2025, 1, 1))
