"""The portal that runs async twins under the sync suites catches a blocking call inside async
code, and its default threshold stretches with the machine's load, not with the code's speed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, Iterator

import pytest
from runtime_persistence.testing.blocking import Portal, blocking, slow_threshold


def test_the_threshold_is_a_second_on_a_quiet_machine_and_stretches_with_load_per_core() -> None:
    assert slow_threshold(load=0.3, cpus=2) == pytest.approx(1.0)
    assert slow_threshold(load=2.0, cpus=2) == pytest.approx(1.0)
    assert slow_threshold(load=20.0, cpus=2) == pytest.approx(10.0)
    assert slow_threshold(0.1, load=12.0, cpus=4) == pytest.approx(0.3)


def test_a_blocking_call_in_a_coroutine_is_recorded_and_an_await_is_not() -> None:
    portal = Portal()
    try:
        threshold = portal.loop.slow_callback_duration
        assert threshold >= 1.0

        async def blocks() -> None:
            time.sleep(threshold * 2)  # the bug the portal is there to catch

        async def awaits() -> None:
            await asyncio.sleep(threshold * 2)

        portal.call(awaits())
        assert portal.slow_callbacks == []
        portal.call(blocks())
        assert len(portal.slow_callbacks) == 1
    finally:
        portal.close()


class _Sink:
    async def consume(self, chunks: AsyncIterable[bytes]) -> int:
        return sum([len(c) async for c in chunks])


def test_a_sync_source_passed_to_async_code_runs_off_the_loop() -> None:
    # what a test's own generator does between items (read the server, sleep) is not the async
    # code under test blocking its loop
    portal = Portal()
    try:
        threshold = portal.loop.slow_callback_duration

        def source() -> Iterator[bytes]:
            for _ in range(2):
                time.sleep(threshold * 1.5)
                yield b"abc"

        assert blocking(_Sink(), portal).consume(source()) == 6
        assert portal.slow_callbacks == []
    finally:
        portal.close()
