"""The workers of the conformance suite's multi-process tests, apart from the suite so that a
spawned worker imports only this module and the store it opens: not pytest, not the suite, not
the other test helpers (about 0.4 s of CPU each, eight times per test)."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

from runtime_core import ConflictError

from runtime_persistence.storage.stores import open_store

__all__ = ["NS", "cas_increment_worker", "create_once_worker", "run_workers"]

NS = "conformance"


def run_workers(target: Any, url: str, procs: int, arg: int) -> list[tuple[str, int]]:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    queue: Any = ctx.Queue()
    workers = [ctx.Process(target=target, args=(url, start, queue, i, arg)) for i in range(procs)]
    for w in workers:
        w.start()
    start.set()
    results: list[tuple[str, int]] = []
    deadline = time.monotonic() + 300
    try:
        for _ in workers:
            results.append(queue.get(timeout=max(1.0, deadline - time.monotonic())))
    finally:
        for w in workers:
            w.join(timeout=30)
            if w.is_alive():
                w.kill()
    return results


def cas_increment_worker(url: str, start: Any, queue: Any, index: int, count: int) -> None:
    try:
        driver = open_store(url)
        start.wait()
        done = 0
        while done < count:
            entry = driver.get(NS, "counter")
            try:
                if entry is None:
                    driver.put(NS, "counter", b"1", if_absent=True)
                else:
                    driver.put(NS, "counter", str(int(entry.value) + 1).encode(), if_version=entry.version)
            except ConflictError:
                continue
            done += 1
        driver.close()
        queue.put(("ok", done))
    except BaseException as exc:
        queue.put((f"error: {exc!r}", index))


def create_once_worker(url: str, start: Any, queue: Any, index: int, _unused: int) -> None:
    try:
        driver = open_store(url)
        start.wait()
        try:
            driver.put(NS, "only-one", str(index).encode(), if_absent=True)
            queue.put(("won", index))
        except ConflictError:
            queue.put(("conflict", index))
        driver.close()
    except BaseException as exc:
        queue.put((f"error: {exc!r}", index))
