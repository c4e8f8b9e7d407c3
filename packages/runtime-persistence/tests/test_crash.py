"""Crash safety: a process saving checkpoints is killed with SIGKILL at hundreds of random moments;
after each kill the store opens, every acknowledged checkpoint is intact and nothing reads as
corrupt.

The child reports each checkpoint id through a pipe only after ``save`` returned, so an id the
parent holds is an acknowledged (durable) checkpoint."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from runtime_persistence import Checkpoints
from runtime_persistence.storage.stores import open_store
from runtime_persistence.testing import isolated_url

KILLS = int(os.environ.get("KEEPUP_CRASH_KILLS", "200"))


def _expected_state(n: int) -> dict[str, Any]:
    # a growing list (chunked, sharing blobs), a medium value (a blob) and small ones (inline)
    return {
        "messages": [{"role": "user", "content": f"{i}:" + "m" * 200} for i in range(n % 70)],
        "doc": f"doc-{n}-" + "d" * 1500,
        "n": n,
    }


def _child(url: str, thread_id: str, start: int, conn: Any) -> None:
    driver = open_store(url)
    cps = Checkpoints(driver)
    conn.send_bytes(b"ready")
    n = start
    while True:
        cp = cps.save(thread_id, _expected_state(n), metadata={"n": n})
        if n % 7 == 0:
            cps.put_writes(cp.id, "task", {"result": f"r{n}"})
        conn.send_bytes(f"{cp.id} {n}".encode())
        n += 1


def _verify(url: str, thread_id: str, acked: dict[str, int], fresh: list[str]) -> None:
    driver = open_store(url)
    try:
        cps = Checkpoints(driver)
        head = cps.latest(thread_id)
        assert head is not None
        assert head.state == _expected_state(head.metadata["n"])
        sample = fresh + random.sample(sorted(acked), min(10, len(acked)))
        for cp_id in sample:
            cp = cps.get(cp_id)
            assert cp.state == _expected_state(acked[cp_id])
        listed = cps.list(thread_id, limit=25)
        for newer, older in itertools.pairwise(listed):
            assert newer.parent_id == older.id
        for cp in listed:
            assert cp.state == _expected_state(cp.metadata["n"])
    finally:
        driver.close()


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "window"), [("sqlite", 0.06), ("file", 0.25)])
def test_sigkill_at_random_moments_loses_no_acknowledged_checkpoint(
    backend: str, window: float, tmp_path: Path
) -> None:
    """``window``: kills land uniformly in the first ``window`` seconds of saving (a few saves'
    worth on that backend), so they hit every phase of a save."""
    url = isolated_url(backend, tmp_path)
    driver = open_store(url)
    thread_id = Checkpoints(driver).create_thread("crash").id
    driver.close()
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(4)
    acked: dict[str, int] = {}
    next_n = 0
    kills_mid_save = 0
    for _ in range(KILLS):
        parent_end, child_end = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(url, thread_id, next_n, child_end))
        proc.start()
        child_end.close()
        assert parent_end.poll(30), "the child did not open the store"
        assert parent_end.recv_bytes() == b"ready"
        time.sleep(rng.uniform(0.0, window))
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        assert proc.exitcode == -signal.SIGKILL
        fresh: list[str] = []
        while parent_end.poll():
            try:
                cp_id, n = parent_end.recv_bytes().decode().split()
            except EOFError:
                break
            acked[cp_id] = int(n)
            fresh.append(cp_id)
            next_n = int(n) + 1
        kills_mid_save += 1 if fresh else 0
        parent_end.close()
        if acked:
            _verify(url, thread_id, acked, fresh)
    assert kills_mid_save > KILLS // 3  # many kills landed between saves in progress
    driver = open_store(url)
    try:
        cps = Checkpoints(driver)
        listed = {c.id: c for c in cps.list(thread_id, limit=10_000)}
        assert set(acked) <= set(listed)
        for cp_id, n in acked.items():
            assert listed[cp_id].state == _expected_state(n)
    finally:
        driver.close()
