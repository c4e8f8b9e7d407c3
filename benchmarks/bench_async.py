"""The async API beside the sync one, in one run, interleaved (issue "One logic, sync and async").

1. PostgreSQL, 64 concurrent writers: 64 asyncio tasks on one event loop (``AsyncCheckpoints``
   over the native ``AsyncPostgresDriver``) beside 64 OS threads on the sync API
   (``Checkpoints`` over ``PostgresDriver``) and beside one thread doing the same saves in turn.
   Each writer appends ``--saves`` checkpoints of about 10 KB to its own thread; both drivers get
   the same connection pool size (``--pool``). Reported: saves per second of each, and the
   median ratio (with min-max over the rounds) of async to 64 threads and to one thread.
2. SQLite, the cost of async: one writer saving (durable) and reading back, through
   ``AsyncCheckpoints`` on the worker-thread driver beside ``Checkpoints`` on the same file.

Every figure is the median over ``--rounds`` (at least 5) interleaved rounds, with min-max, and the
load average is printed; see benchmarks/_stats.py.

    .venv/bin/python benchmarks/bench_async.py
    KEEPUP_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python benchmarks/bench_async.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stats import Ratio, load_average, median, rounds
from runtime_persistence import AsyncCheckpoints, Checkpoints, open_store, open_store_async

POOL = ["".join(secrets.choice("abcdefghij ") for _ in range(1000)) for _ in range(16)]


def state_at(i: int) -> dict[str, Any]:
    """About 10 KB: the last ten 1 KB messages and the step."""
    return {
        "messages": [{"role": "user", "content": f"{j}:{POOL[j % 16]}"} for j in range(max(0, i - 9), i + 1)],
        "step": i,
    }


class AsyncSide:
    """An event loop on its own thread, holding the async store, so rounds can interleave with
    the sync variants in one process."""

    def __init__(self, url: str, options: dict[str, Any]) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.driver = self.run(open_store_async(url, **options))
        self.cps = AsyncCheckpoints(self.driver)

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.run(self.driver.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()


def postgres_section(url: str, args: argparse.Namespace) -> None:
    prefix = f"kb{secrets.token_hex(4)}_"
    sep = "&" if "?" in url else "?"
    store_url = f"{url}{sep}prefix={prefix}&pool_size={args.pool}"
    sync_cps = Checkpoints(open_store(store_url))
    side = AsyncSide(store_url, {})
    writers = 64

    def threads_for(cps: Any, n: int) -> list[str]:
        return [cps.create_thread(f"w{i}").id for i in range(n)]

    async def async_threads(n: int) -> list[str]:
        return [(await side.cps.create_thread(f"a{i}")).id for i in range(n)]

    def run_async() -> int:
        ids = side.run(async_threads(writers))

        async def writer(thread_id: str) -> None:
            for i in range(args.saves):
                await side.cps.save(thread_id, state_at(i))

        async def all_writers() -> None:
            await asyncio.gather(*(writer(t) for t in ids))

        side.run(all_writers())
        return writers * args.saves

    def run_threads() -> int:
        ids = threads_for(sync_cps, writers)

        def writer(thread_id: str) -> None:
            for i in range(args.saves):
                sync_cps.save(thread_id, state_at(i))

        pool = [threading.Thread(target=writer, args=(t,)) for t in ids]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return writers * args.saves

    def run_one_thread() -> int:
        for thread_id in threads_for(sync_cps, writers):
            for i in range(args.saves):
                sync_cps.save(thread_id, state_at(i))
        return writers * args.saves

    variants: dict[str, Callable[[], int]] = {
        "async, 64 tasks": run_async,
        "sync, 64 threads": run_threads,
        "sync, 1 thread": run_one_thread,
    }
    try:
        results = rounds(variants, args.rounds)
    finally:
        side.close()
        destroy = getattr(sync_cps.driver, "destroy", None)
        if destroy is not None:
            destroy()
        sync_cps.driver.close()
    print(f"\nPostgreSQL, 64 concurrent writers x {args.saves} saves, pool {args.pool} ({load_average()})")
    for name, values in results.items():
        print(f"  {name:<18} {median(values):8.0f} saves/s (min {min(values):.0f}, max {max(values):.0f})")
    print(f"  async / 64 threads : {Ratio.of(results['async, 64 tasks'], results['sync, 64 threads'])}")
    print(f"  async / 1 thread   : {Ratio.of(results['async, 64 tasks'], results['sync, 1 thread'])}")


def sqlite_section(args: argparse.Namespace, tmp: Path) -> None:
    url = f"sqlite:///{tmp / 'bench.db'}"
    sync_cps = Checkpoints(open_store(url))
    side = AsyncSide(url, {})
    sync_thread = sync_cps.create_thread("sync").id
    async_thread = side.run(side.cps.create_thread("async")).id
    counter = {"sync": 0, "async": 0}

    def sync_saves() -> int:
        for _ in range(args.sqlite_saves):
            counter["sync"] += 1
            sync_cps.save(sync_thread, state_at(counter["sync"]))
        return args.sqlite_saves

    def async_saves() -> int:
        async def go() -> None:
            for _ in range(args.sqlite_saves):
                counter["async"] += 1
                await side.cps.save(async_thread, state_at(counter["async"]))

        side.run(go())
        return args.sqlite_saves

    def sync_latest() -> int:
        for _ in range(args.sqlite_saves):
            sync_cps.latest(sync_thread)
        return args.sqlite_saves

    def async_latest() -> int:
        async def go() -> None:
            for _ in range(args.sqlite_saves):
                await side.cps.latest(async_thread)

        side.run(go())
        return args.sqlite_saves

    try:
        saves = rounds({"sync": sync_saves, "async": async_saves}, args.rounds)
        latest = rounds({"sync": sync_latest, "async": async_latest}, args.rounds)
    finally:
        side.close()
        sync_cps.driver.close()
    print(f"\nSQLite, one writer, {args.sqlite_saves} ops per round ({load_average()})")
    print(f"  save   async / sync: {Ratio.of(saves['async'], saves['sync'])}")
    print(f"  latest async / sync: {Ratio.of(latest['async'], latest['sync'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--saves", type=int, default=10, help="saves per writer per round (PostgreSQL)")
    parser.add_argument("--pool", type=int, default=8, help="connection pool size of both drivers")
    parser.add_argument("--sqlite-saves", type=int, default=200)
    args = parser.parse_args()
    if args.rounds < 5:
        parser.error("at least 5 rounds: a median of fewer says little")
    print(f"bench_async: {load_average()}")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_section(args, Path(tmp))
    url = os.environ.get("KEEPUP_TEST_POSTGRES_URL")
    if url:
        postgres_section(url, args)
    else:
        print("\nPostgreSQL: skipped (KEEPUP_TEST_POSTGRES_URL is not set)")


if __name__ == "__main__":
    main()
