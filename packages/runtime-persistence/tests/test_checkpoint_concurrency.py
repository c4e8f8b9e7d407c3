"""Optimistic concurrency on the thread head: 8 processes x 500 saves onto one thread give no
silent fork, and every acknowledged checkpoint reads back; concurrent async saves onto one head:
exactly one wins."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime_core import Checkpoint, ConflictError
from runtime_persistence import Checkpoints
from runtime_persistence.checkpoint import AsyncCheckpoints
from runtime_persistence.storage.drivers.memory import MemoryDriver
from runtime_persistence.storage.stores import open_store
from runtime_persistence.testing import TestStore, open_test_store
from runtime_persistence.testing.blocking import unwrap

PROCESSES = int(os.environ.get("KEEPUP_CONCURRENCY_PROCESSES", "8"))
SAVES = int(os.environ.get("KEEPUP_CONCURRENCY_SAVES", "500"))


def _saver(url: str, thread_id: str, worker: int, saves: int, out: Any) -> None:
    driver = open_store(url)
    cps = Checkpoints(driver)
    acked: list[str] = []
    conflicts = 0
    while len(acked) < saves:
        head = cps.get_thread(thread_id).head
        try:
            cp = cps.save(thread_id, {"worker": worker, "n": len(acked)}, parent_id=head)
        except ConflictError:
            conflicts += 1
            continue
        acked.append(cp.id)
    driver.close()
    out.put((worker, acked, conflicts))


@pytest.fixture(params=["sqlite", "file", "postgres", "mysql", "redis"])
def race_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestStore]:
    with open_test_store(request.param, tmp_path) as store:
        yield store


def _check_linear(cps: Checkpoints, thread_id: str, acked: set[str]) -> None:
    listed = cps.list(thread_id, limit=10_000)
    assert len(listed) == len(acked)  # nothing unacknowledged is visible, nothing acknowledged lost
    assert {c.id for c in listed} == acked
    for newer, older in itertools.pairwise(listed):
        assert newer.parent_id == older.id  # one chain: no silent fork
    assert listed[-1].parent_id is None


def test_two_threads_racing_in_one_process_never_fork() -> None:
    cps = Checkpoints(MemoryDriver())
    t = cps.create_thread()
    acked: set[str] = set()
    lock = threading.Lock()

    def run() -> None:
        done = 0
        while done < 200:
            head = cps.get_thread(t.id).head
            try:
                cp = cps.save(t.id, {"n": done}, parent_id=head)
            except ConflictError:
                continue
            with lock:
                acked.add(cp.id)
            done += 1

    workers = [threading.Thread(target=run) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    _check_linear(cps, t.id, acked)


@pytest.mark.slow
def test_many_processes_saving_onto_one_thread_never_fork(race_store: TestStore) -> None:
    assert race_store.url is not None
    cps = Checkpoints(race_store.driver)
    t = cps.create_thread()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_saver, args=(race_store.url, t.id, w, SAVES, out)) for w in range(PROCESSES)]
    for p in procs:
        p.start()
    results = [out.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    acked = {cp_id for _, ids, _ in results for cp_id in ids}
    assert len(acked) == PROCESSES * SAVES
    _check_linear(cps, t.id, acked)
    fresh = Checkpoints(race_store.driver)
    for _, ids, _ in results:
        for cp_id in ids:
            assert fresh.get(cp_id).thread_id == t.id


@pytest.fixture(params=["sqlite", "postgres"])
def async_race_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestStore]:
    with open_test_store(f"{request.param}+async", tmp_path) as store:
        yield store


def test_concurrent_async_saves_onto_one_head_let_exactly_one_win(async_race_store: TestStore) -> None:
    portal = async_race_store.portal
    assert portal is not None
    cps = AsyncCheckpoints(unwrap(async_race_store.driver))
    writers = 8

    async def race() -> tuple[str, Checkpoint, list[Checkpoint | BaseException]]:
        thread = await cps.create_thread()
        first = await cps.save(thread.id, {"n": 0})
        results = await asyncio.gather(
            *(cps.save(thread.id, {"writer": w}, parent_id=first.id) for w in range(writers)),
            return_exceptions=True,
        )
        return thread.id, first, list(results)

    thread_id, first, results = portal.call(race())
    won = [r for r in results if isinstance(r, Checkpoint)]
    lost = [r for r in results if isinstance(r, ConflictError)]
    assert len(won) == 1 and len(lost) == writers - 1, results
    latest = portal.call(cps.latest(thread_id))
    assert latest is not None and latest.id == won[0].id and latest.parent_id == first.id
    assert [c.id for c in portal.call(cps.list(thread_id))] == [won[0].id, first.id]
