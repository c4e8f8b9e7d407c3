"""KeepupSession beside the OpenAI Agents SDK's own SQLiteSession, in one run, interleaved.

Both keep history in a SQLite file on the same disk (the SDK's ``SQLiteSession(id, path)``
against ``KeepupSession(id, "sqlite:///path")``, durable by default in both). Measured, per
round, on a fresh session for each variant:

* add: ``add_items`` of one user and one assistant item, ``--ops`` times;
* get last 10: ``get_items(limit=10)`` on a history of ``--history`` items, ``--ops`` times;
* get all: ``get_items()`` on the same history, ``--ops`` // 10 times.

With ``KEEPUP_TEST_POSTGRES_URL`` set, ``KeepupSession`` on PostgreSQL runs too (there is no SDK
peer on a server; it is reported against SQLiteSession for scale). Every figure is the median
over ``--rounds`` (at least 5) interleaved rounds, with min-max, and the load average is printed;
see benchmarks/_stats.py.

    .venv/bin/python benchmarks/bench_openai_agents.py
    KEEPUP_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python benchmarks/bench_openai_agents.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stats import Ratio, load_average, median, rounds
from agents.memory import SQLiteSession
from keepup_openai_agents import KeepupSession
from runtime_persistence import open_store_async


def user(i: int) -> dict[str, Any]:
    return {"role": "user", "content": f"question {i}: " + "x" * 200}


def assistant(i: int) -> dict[str, Any]:
    return {
        "id": f"msg_{i}",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": f"answer {i}: " + "y" * 400, "annotations": []}],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--history", type=int, default=200)
    args = parser.parse_args()
    if args.rounds < 5:
        parser.error("--rounds must be at least 5")
    loop = asyncio.new_event_loop()
    tmp = Path(tempfile.mkdtemp(prefix="bench-agents-"))
    factories: dict[str, Callable[[str], Any]] = {
        "SQLiteSession (SDK)": lambda sid: SQLiteSession(sid, tmp / "sdk.db"),
        "KeepupSession, SQLite": lambda sid: KeepupSession(sid, f"sqlite:///{tmp / 'keepup.db'}"),
    }
    pg_url = os.environ.get("KEEPUP_TEST_POSTGRES_URL")
    pg_driver = None
    if pg_url:
        prefix = f"bench{secrets.token_hex(4)}_"
        pg_driver = loop.run_until_complete(open_store_async(f"{pg_url}?prefix={prefix}"))
        driver = pg_driver
        factories["KeepupSession, PostgreSQL"] = lambda sid: KeepupSession(sid, driver)

    def run(make: Callable[[], Awaitable[int]]) -> Callable[[], int]:
        return lambda: loop.run_until_complete(make())

    counter = iter(range(1_000_000))

    def add_variant(factory: Callable[[str], Any]) -> Callable[[], int]:
        async def go() -> int:
            session = factory(f"add-{next(counter)}")
            for i in range(args.ops):
                await session.add_items([user(i), assistant(i)])
            await _close(session)
            return args.ops

        return run(go)

    prepared: dict[str, Any] = {}
    for name, factory in factories.items():
        session = factory("history")
        for i in range(0, args.history, 2):
            loop.run_until_complete(session.add_items([user(i), assistant(i)]))
        prepared[name] = session

    def get_variant(name: str, limit: int | None, count: int) -> Callable[[], int]:
        async def go() -> int:
            session = prepared[name]
            for _ in range(count):
                items = await session.get_items(limit=limit)
                assert len(items) == (limit or args.history)
            return count

        return run(go)

    print(load_average())
    print(f"{args.rounds} rounds, {args.ops} operations per round, history of {args.history} items")
    results: dict[str, dict[str, list[float]]] = {
        "add (2 items)": rounds({n: add_variant(f) for n, f in factories.items()}, args.rounds),
        "get last 10": rounds({n: get_variant(n, 10, args.ops) for n in factories}, args.rounds),
        "get all": rounds({n: get_variant(n, None, max(1, args.ops // 10)) for n in factories}, args.rounds),
    }
    peer = "SQLiteSession (SDK)"
    print("\n| operation | variant | ops/s (median, min-max) | ratio to SQLiteSession |")
    print("|---|---|---|---|")
    for op, per_variant in results.items():
        for name, values in per_variant.items():
            ratio = "" if name == peer else str(Ratio.of(values, per_variant[peer]))
            print(
                f"| {op} | {name} | {median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f}) | {ratio} |"
            )
    print(load_average())
    for session in prepared.values():
        loop.run_until_complete(_close(session))
    if pg_driver is not None:
        destroy = getattr(pg_driver, "destroy", None)
        if destroy is not None:
            loop.run_until_complete(destroy())
        loop.run_until_complete(pg_driver.close())


async def _close(session: Any) -> None:
    result = session.close()
    if asyncio.iscoroutine(result):
        await result


if __name__ == "__main__":
    main()
