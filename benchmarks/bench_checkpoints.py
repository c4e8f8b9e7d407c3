"""Checkpoint store next to LangGraph's savers, in one run, on the same machine load.

Peers (benchmark-only dependencies, ``uv sync --all-groups``): ``langgraph-checkpoint-sqlite``'s
``SqliteSaver`` and ``langgraph-checkpoint-postgres``'s ``PostgresSaver``.

Workload: one thread of ``--checkpoints`` (10,000) checkpoints of about 10 KB each (a window of the
last ten 1 KB messages and a step counter), written by both stores in interleaved blocks.

Measured (targets from issue 4):

* save: Keepup ``Checkpoints.save`` on SQLite (durable: WAL, synchronous=FULL) vs ``SqliteSaver.put``
  (its own setup: WAL, Python's default synchronous=FULL): target >= 1.0x;
* latest at 10,000 checkpoints vs latest at 1,000 (Keepup): target >= 0.8x (constant time);
* list(limit=10) at 10,000 vs ``SqliteSaver.list`` with ``checkpoint_ns`` (its fastest form):
  target >= 1.0x, and list at 10,000 vs at 1,000 (constant in thread length);
* PostgreSQL get by id at 10,000 vs ``PostgresSaver.get_tuple`` with a checkpoint id: target >= 5x,
  reported cold (a fresh store object, every id read once) and warm (ids read again);
* bytes: a 500-turn conversation of 1 KB messages on SQLite vs storing the full state every turn
  (the same SQLite driver, one value per turn): target <= 10%.

    .venv/bin/python benchmarks/bench_checkpoints.py
    KEEPUP_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python benchmarks/bench_checkpoints.py
    .venv/bin/python benchmarks/bench_checkpoints.py --checkpoints 2000 --small 500   # quicker
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from runtime_persistence import Checkpoints
from runtime_persistence.storage.serialization import dumps
from runtime_persistence.storage.stores import open_store

try:
    from langgraph.checkpoint.base.id import uuid6
    from langgraph.checkpoint.sqlite import SqliteSaver
except ImportError:  # pragma: no cover - the bench group is not installed
    sys.exit("install the benchmark peers first: uv sync --all-groups")

RNG = random.Random(7)
POOL = ["".join(RNG.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(1000)) for _ in range(64)]


def state_at(i: int) -> dict[str, Any]:
    """About 10 KB: the last ten 1 KB messages and the step."""
    return {
        "messages": [
            {"role": "user" if j % 2 else "assistant", "content": f"{j}:{POOL[j % 64]}"}
            for j in range(max(0, i - 9), i + 1)
        ],
        "step": i,
    }


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def best(fn: Callable[[], int], rounds: int = 3) -> float:
    """Best ops/second over ``rounds`` runs of ``fn`` (which returns how many ops it did)."""
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        n = fn()
        out.append(rate(n, time.perf_counter() - start))
    return max(out)


class Results:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, float | None, str]] = []

    def add(self, what: str, ours: str, peer: str, ratio: float | None, target: str) -> None:
        self.rows.append((what, ours, peer, ratio, target))
        shown = "-" if ratio is None else f"{ratio:.2f}"
        print(f"  {what:<52} {ours:>16} {peer:>16}  ratio {shown:>6}  ({target})", flush=True)


# --- LangGraph peers ------------------------------------------------------------------------------
def lg_checkpoint(i: int) -> dict[str, Any]:
    state = state_at(i)
    versions = {k: i + 1 for k in state}
    return {
        "v": 2,
        "id": str(uuid6()),
        "ts": datetime.now(UTC).isoformat(),
        "channel_values": state,
        "channel_versions": versions,
        "versions_seen": {},
        "pending_sends": [],
        "updated_channels": None,
    }


class LangGraphThread:
    """A thread written through a LangGraph saver, remembering its checkpoint ids."""

    def __init__(self, saver: Any, thread_id: str) -> None:
        self.saver = saver
        self.thread_id = thread_id
        self.parent: str | None = None
        self.ids: list[str] = []

    def put(self, i: int) -> None:
        cp = lg_checkpoint(i)
        config: dict[str, Any] = {"configurable": {"thread_id": self.thread_id, "checkpoint_ns": ""}}
        if self.parent:
            config["configurable"]["checkpoint_id"] = self.parent
        self.saver.put(config, cp, {"source": "loop", "step": i}, cp["channel_versions"])
        self.parent = cp["id"]
        self.ids.append(cp["id"])

    @property
    def config(self) -> dict[str, Any]:
        return {"configurable": {"thread_id": self.thread_id, "checkpoint_ns": ""}}


# --- sections -----------------------------------------------------------------------------------
def fill(
    n: int, ours: Callable[[int], None], peer: Callable[[int], None], block: int = 250
) -> tuple[float, float]:
    """Write ``n`` checkpoints with each store, interleaved in blocks; return (ours/s, peer/s)."""
    t_ours = t_peer = 0.0
    for start in range(0, n, block):
        stop = min(n, start + block)
        t0 = time.perf_counter()
        for i in range(start, stop):
            ours(i)
        t1 = time.perf_counter()
        for i in range(start, stop):
            peer(i)
        t_peer += time.perf_counter() - t1
        t_ours += t1 - t0
    return rate(n, t_ours), rate(n, t_peer)


def sqlite_section(args: argparse.Namespace, res: Results, tmp: Path) -> None:
    n, small, reps = args.checkpoints, args.small, args.reps
    print(f"SQLite: one thread of {n:,} checkpoints of ~{len(dumps(state_at(20))) / 1024:.1f} KB", flush=True)
    ours_store = open_store(f"sqlite:///{tmp / 'keepup.db'}")
    cps = Checkpoints(ours_store)
    big = cps.create_thread("big")
    little = cps.create_thread("small")
    conn = sqlite3.connect(str(tmp / "langgraph.db"), check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    (sync,) = conn.execute("PRAGMA synchronous").fetchone()
    print(f"  SqliteSaver connection: journal_mode={mode}, synchronous={sync} (2 = FULL)", flush=True)
    lg_big = LangGraphThread(saver, "big")
    lg_small = LangGraphThread(saver, "small")

    ours_rate, peer_rate = fill(n, lambda i: cps.save(big.id, state_at(i)) and None, lg_big.put)
    res.add(
        f"save, durable, {n:,} checkpoints (ops/s)",
        f"{ours_rate:,.0f}",
        f"{peer_rate:,.0f}",
        ours_rate / peer_rate,
        "target >= 1.0",
    )
    fill(small, lambda i: cps.save(little.id, state_at(i)) and None, lg_small.put)

    def latest_of(thread_id: str) -> Callable[[], int]:
        def run() -> int:
            for _ in range(reps):
                cps.latest(thread_id)
            return reps

        return run

    def lg_latest(t: LangGraphThread) -> Callable[[], int]:
        def run() -> int:
            for _ in range(reps):
                t.saver.get_tuple(t.config)
            return reps

        return run

    l_big, l_small = best(latest_of(big.id)), best(latest_of(little.id))
    res.add(
        f"latest at {n:,} vs at {small:,} (ops/s)",
        f"{l_big:,.0f}",
        f"{l_small:,.0f}",
        l_big / l_small,
        "target >= 0.8",
    )
    lg_big_latest = best(lg_latest(lg_big))
    res.add(
        f"latest at {n:,} vs SqliteSaver.get_tuple (ops/s)",
        f"{l_big:,.0f}",
        f"{lg_big_latest:,.0f}",
        l_big / lg_big_latest,
        "reference",
    )

    def list_of(thread_id: str) -> Callable[[], int]:
        def run() -> int:
            for _ in range(reps):
                assert len(cps.list(thread_id, limit=10)) == 10
            return reps

        return run

    def lg_list(t: LangGraphThread) -> Callable[[], int]:
        def run() -> int:
            for _ in range(reps):
                assert len(list(t.saver.list(t.config, limit=10))) == 10
            return reps

        return run

    ls_big, ls_small = best(list_of(big.id)), best(list_of(little.id))
    lg_ls_big, lg_ls_small = best(lg_list(lg_big)), best(lg_list(lg_small))
    res.add(
        f"list(limit=10) at {n:,} vs SqliteSaver.list (ops/s)",
        f"{ls_big:,.0f}",
        f"{lg_ls_big:,.0f}",
        ls_big / lg_ls_big,
        "target >= 1.0",
    )
    res.add(
        f"list(limit=10) at {n:,} vs at {small:,} (ops/s)",
        f"{ls_big:,.0f}",
        f"{ls_small:,.0f}",
        ls_big / ls_small,
        "constant: ~1.0",
    )
    res.add(
        f"SqliteSaver.list at {n:,} vs at {small:,} (ops/s)",
        f"{lg_ls_big:,.0f}",
        f"{lg_ls_small:,.0f}",
        lg_ls_big / lg_ls_small,
        "peer, for reference",
    )
    conn.close()
    ours_store.close()


@contextmanager
def _pg_schema(url: str) -> Iterator[str]:
    import psycopg

    schema = f"bench_lg_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), ("options", f"-csearch_path={schema}")]
    try:
        yield urlunsplit(parts._replace(query=urlencode(query)))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def postgres_section(args: argparse.Namespace, res: Results, url: str) -> None:
    from langgraph.checkpoint.postgres import PostgresSaver

    n, reps = args.checkpoints, args.reps
    print(f"PostgreSQL: one thread of {n:,} checkpoints", flush=True)
    parts = urlsplit(url)
    ours_url = urlunsplit(
        parts._replace(query=urlencode([*parse_qsl(parts.query), ("prefix", f"kb{secrets.token_hex(4)}_")]))
    )
    driver = open_store(ours_url)
    try:
        with _pg_schema(url) as lg_url, PostgresSaver.from_conn_string(lg_url) as saver:
            saver.setup()
            cps = Checkpoints(driver)
            thread = cps.create_thread("pg")
            lg = LangGraphThread(saver, "pg")
            ids: list[str] = []
            ours_rate, peer_rate = fill(n, lambda i: ids.append(cps.save(thread.id, state_at(i)).id), lg.put)
            res.add(
                f"PostgreSQL save, {n:,} checkpoints (ops/s)",
                f"{ours_rate:,.0f}",
                f"{peer_rate:,.0f}",
                ours_rate / peer_rate,
                "reference",
            )
            sample = random.Random(3).sample(range(n), min(reps, n))

            def ours_cold() -> int:
                fresh = Checkpoints(driver)  # no cached locations, records or blobs
                for k in sample:
                    fresh.get(ids[k])
                return len(sample)

            warm_store = Checkpoints(driver)
            for k in sample:
                warm_store.get(ids[k])

            def ours_warm() -> int:
                for k in sample:
                    warm_store.get(ids[k])
                return len(sample)

            def peer_get() -> int:
                for k in sample:
                    cfg = {
                        "configurable": {"thread_id": "pg", "checkpoint_ns": "", "checkpoint_id": lg.ids[k]}
                    }
                    assert saver.get_tuple(cfg) is not None
                return len(sample)

            cold, warm, peer = best(ours_cold, 2), best(ours_warm, 2), best(peer_get, 2)
            res.add(
                f"PostgreSQL get by id at {n:,}, cold (ops/s)",
                f"{cold:,.0f}",
                f"{peer:,.0f}",
                cold / peer,
                "target >= 5",
            )
            res.add(
                f"PostgreSQL get by id at {n:,}, warm (ops/s)",
                f"{warm:,.0f}",
                f"{peer:,.0f}",
                warm / peer,
                "target >= 5",
            )
    finally:
        destroy = getattr(driver, "destroy", None)
        if destroy is not None:
            destroy()
        driver.close()


def _db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def storage_section(args: argparse.Namespace, res: Results, tmp: Path) -> None:
    turns = args.turns
    print(
        f"Bytes: a {turns}-turn conversation (one user and one assistant message of 1 KB per turn)",
        flush=True,
    )

    def conversation(t: int) -> dict[str, Any]:
        msgs = []
        for j in range(2 * t):
            msgs.append({"role": "assistant" if j % 2 else "user", "content": f"{j}:{POOL[j % 64]}"})
        return {"messages": msgs, "step": t}

    ours_path = tmp / "conv-keepup.db"
    full_path = tmp / "conv-full.db"
    ours = open_store(f"sqlite:///{ours_path}", durability="relaxed")
    full = open_store(f"sqlite:///{full_path}", durability="relaxed")
    cps = Checkpoints(ours)
    thread = cps.create_thread()
    logical_full = 0
    for t in range(1, turns + 1):
        state = conversation(t)
        cps.save(thread.id, state)
        data = dumps(state)
        logical_full += len(data)
        full.put("full", f"{t:06d}", data) if len(data) <= full.max_value_size else full.put_blob(data)
    logical_ours = sum(
        len(e.value)
        for ns in ("ckpt", "ckpt.id", "ckpt.blob", "thread", "thread.head")
        for e in ours.scan(ns)
    )
    logical_ours += sum(info.size for info in ours.list_blobs())
    latest = cps.latest(thread.id)
    assert latest is not None and latest.state == conversation(turns)
    ours.close()
    full.close()
    on_disk_ours, on_disk_full = _db_bytes(ours_path), _db_bytes(full_path)
    res.add(
        "bytes stored (logical values)",
        f"{logical_ours:,}",
        f"{logical_full:,}",
        logical_ours / logical_full,
        "target <= 0.10",
    )
    res.add(
        "bytes on disk (SQLite files)",
        f"{on_disk_ours:,}",
        f"{on_disk_full:,}",
        on_disk_ours / on_disk_full,
        "target <= 0.10",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoints", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--reps", type=int, default=2_000)
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--only", choices=["sqlite", "postgres", "bytes"], default=None)
    args = parser.parse_args()
    res = Results()
    with tempfile.TemporaryDirectory(prefix="keepup-bench-ckpt-") as tmp_name:
        tmp = Path(tmp_name)
        if args.only in (None, "sqlite"):
            sqlite_section(args, res, tmp)
        if args.only in (None, "postgres"):
            url = os.environ.get("KEEPUP_TEST_POSTGRES_URL")
            if url:
                postgres_section(args, res, url)
            else:
                print("PostgreSQL: skipped (KEEPUP_TEST_POSTGRES_URL is not set)")
        if args.only in (None, "bytes"):
            storage_section(args, res, tmp)


if __name__ == "__main__":
    main()
