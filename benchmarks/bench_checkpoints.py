"""Checkpoint saves and reads next to LangGraph's savers, in one run, on the same machine load.

Peers (benchmark-only dependencies, ``uv sync --all-groups``): ``langgraph-checkpoint-sqlite``'s
``SqliteSaver`` and ``langgraph-checkpoint-postgres``'s ``PostgresSaver``, plus a raw sqlite3
``INSERT`` + ``COMMIT`` of the same encoded state at ``synchronous=FULL`` (the floor of a durable
SQLite write). Every figure is the median ratio Keepup / peer over ``--rounds`` interleaved rounds
(``_stats.rounds`` rotates which side runs first), with its min-max, and the load average is
printed with each section. Never best-of.

State: about 10 KB, the last ten 1 KB chat messages and a step counter.

Rows (targets from issue 12):

* SQLite durable save vs ``SqliteSaver.put``: >= 1.2x; vs the raw INSERT + COMMIT: >= 0.8x;
* SQLite get by id at 10,000 checkpoints, a fresh ``Checkpoints`` object per round (no cached
  location, record or blob; each sampled id read once) vs ``SqliteSaver.get_tuple`` with the
  checkpoint id: >= 1.0x; and Keepup's own rate at 100,000 / at 1,000: >= 0.9 (flat);
* SQLite latest of a thread of 10,000 vs ``SqliteSaver.get_tuple`` of the thread: >= 1.0x;
* list(limit=10) at 10,000 vs ``SqliteSaver.list``: >= 1.0x (issue 4);
* PostgreSQL durable save vs ``PostgresSaver.put``: >= 1.0x;
* 8 processes saving on one PostgreSQL (each its own thread), total saves/s vs the peer's 8
  processes: >= 1.5x;
* PostgreSQL get by id at 10,000, fresh object vs ``PostgresSaver.get_tuple`` (issue 4: >= 5x);
* bytes: a 500-turn conversation vs storing the full state every turn (issue 4: <= 10%).

Threads are filled with relaxed durability (and the peer's with ``synchronous=OFF``): reads do
not depend on how the rows were fsynced, and a 100,000-checkpoint fill stays short.

    .venv/bin/python benchmarks/bench_checkpoints.py
    KEEPUP_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python benchmarks/bench_checkpoints.py
    .venv/bin/python benchmarks/bench_checkpoints.py --only sqlite-save --rounds 7
    .venv/bin/python benchmarks/bench_checkpoints.py --large 0     # skip the 100,000 thread
"""

from __future__ import annotations

import argparse
import multiprocessing
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

from _stats import Ratio, load_average, median, rounds
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
SECTIONS = ("sqlite-save", "sqlite-reads", "postgres", "postgres-procs", "bytes")


def state_at(i: int) -> dict[str, Any]:
    """About 10 KB: the last ten 1 KB messages and the step."""
    return {
        "messages": [
            {"role": "user" if j % 2 else "assistant", "content": f"{j}:{POOL[j % 64]}"}
            for j in range(max(0, i - 9), i + 1)
        ],
        "step": i,
    }


def report(what: str, ours: list[float], peer: list[float], target: str) -> Ratio:
    ratio = Ratio.of(ours, peer)
    print(
        f"  {what:<58} {median(ours):>10,.0f} {median(peer):>10,.0f} ops/s   {ratio}   ({target})",
        flush=True,
    )
    return ratio


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

    def by_id(self, checkpoint_id: str) -> dict[str, Any]:
        return {
            "configurable": {"thread_id": self.thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}
        }


class Counter:
    """The next state index of a writer (every round continues where the last one stopped)."""

    def __init__(self) -> None:
        self.i = 0

    def take(self, n: int) -> range:
        start = self.i
        self.i += n
        return range(start, start + n)


# --- SQLite ---------------------------------------------------------------------------------------
def sqlite_save(args: argparse.Namespace, tmp: Path) -> None:
    print(
        f"SQLite durable save of ~{len(dumps(state_at(20))) / 1024:.1f} KB, {args.batch} saves per round",
        flush=True,
    )
    store = open_store(f"sqlite:///{tmp / 'save-keepup.db'}")
    cps = Checkpoints(store)
    thread = cps.create_thread("save")
    conn = sqlite3.connect(str(tmp / "save-langgraph.db"), check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    (sync,) = conn.execute("PRAGMA synchronous").fetchone()
    print(f"  SqliteSaver connection: journal_mode={mode}, synchronous={sync} (2 = FULL)", flush=True)
    lg = LangGraphThread(saver, "save")
    raw = sqlite3.connect(str(tmp / "save-raw.db"), isolation_level=None)
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute("PRAGMA synchronous = FULL")
    raw.execute("CREATE TABLE state (id INTEGER PRIMARY KEY, value BLOB NOT NULL)")
    counters = {name: Counter() for name in ("keepup", "peer", "raw")}

    def ours() -> int:
        for i in counters["keepup"].take(args.batch):
            cps.save(thread.id, state_at(i))
        return args.batch

    def peer() -> int:
        for i in counters["peer"].take(args.batch):
            lg.put(i)
        return args.batch

    def floor() -> int:
        for i in counters["raw"].take(args.batch):
            raw.execute("INSERT INTO state (value) VALUES (?)", (dumps(state_at(i)),))  # autocommit
        return args.batch

    result = rounds({"keepup": ours, "peer": peer, "raw": floor}, args.rounds)
    print(f"  {load_average()}", flush=True)
    report("save, durable vs SqliteSaver.put", result["keepup"], result["peer"], "target >= 1.2")
    report(
        "save, durable vs raw INSERT + COMMIT, synchronous=FULL",
        result["keepup"],
        result["raw"],
        "target >= 0.8",
    )
    conn.close()
    raw.close()
    store.close()


class FilledSqlite:
    """One thread of ``n`` checkpoints in a Keepup SQLite store and in a SqliteSaver database."""

    def __init__(self, tmp: Path, n: int) -> None:
        self.n = n
        self.path = tmp / f"reads-{n}-keepup.db"
        fill_store = open_store(f"sqlite:///{self.path}", durability="relaxed")
        cps = Checkpoints(fill_store)
        self.thread_id = cps.create_thread(f"reads-{n}").id
        self.ids = [cps.save(self.thread_id, state_at(i)).id for i in range(n)]
        fill_store.close()
        self.store = open_store(f"sqlite:///{self.path}")
        self.conn = sqlite3.connect(str(tmp / f"reads-{n}-langgraph.db"), check_same_thread=False)
        self.saver = SqliteSaver(self.conn)
        self.saver.setup()
        self.conn.execute("PRAGMA synchronous = OFF")
        self.lg = LangGraphThread(self.saver, f"reads-{n}")
        for i in range(n):
            self.lg.put(i)
        self.conn.execute("PRAGMA synchronous = FULL")

    def close(self) -> None:
        self.conn.close()
        self.store.close()


def sqlite_reads(args: argparse.Namespace, tmp: Path) -> None:
    sizes = sorted({args.small, args.checkpoints, *([args.large] if args.large else [])})
    print(f"SQLite reads: threads of {', '.join(f'{s:,}' for s in sizes)} checkpoints", flush=True)
    filled: dict[int, FilledSqlite] = {}
    for size in sizes:
        start = time.perf_counter()
        filled[size] = FilledSqlite(tmp, size)
        print(f"  filled {size:,} in {time.perf_counter() - start:.0f} s", flush=True)
    sample_rng = random.Random(3)

    def get_variants(f: FilledSqlite) -> tuple[Callable[[], int], Callable[[], int]]:
        picks = sample_rng.sample(range(f.n), min(args.reps, f.n))

        def ours() -> int:
            fresh = Checkpoints(f.store)  # no cached locations, records or blobs
            for k in picks:
                fresh.get(f.ids[k])
            return len(picks)

        def peer() -> int:
            for k in picks:
                assert f.saver.get_tuple(f.lg.by_id(f.lg.ids[k])) is not None
            return len(picks)

        return ours, peer

    variants: dict[str, Callable[[], int]] = {}
    for size, f in filled.items():
        variants[f"get-{size}"], variants[f"peer-get-{size}"] = get_variants(f)
    big = filled[args.checkpoints]
    latest_store = Checkpoints(big.store)

    def latest() -> int:
        for _ in range(args.reps):
            latest_store.latest(big.thread_id)
        return args.reps

    def peer_latest() -> int:
        for _ in range(args.reps):
            assert big.saver.get_tuple(big.lg.config) is not None
        return args.reps

    def listing() -> int:
        for _ in range(args.reps // 10):
            assert len(latest_store.list(big.thread_id, limit=10)) == 10
        return args.reps // 10

    def peer_listing() -> int:
        for _ in range(args.reps // 10):
            assert len(list(big.saver.list(big.lg.config, limit=10))) == 10
        return args.reps // 10

    variants |= {"latest": latest, "peer-latest": peer_latest, "list": listing, "peer-list": peer_listing}
    result = rounds(variants, args.rounds)
    print(f"  {load_average()}", flush=True)
    n = args.checkpoints
    for size in sizes:
        report(
            f"get by id at {size:,}, fresh object vs SqliteSaver.get_tuple",
            result[f"get-{size}"],
            result[f"peer-get-{size}"],
            "target >= 1.0" if size == n else "reference",
        )
    if args.large:
        report(
            f"get by id, Keepup at {args.large:,} vs at {args.small:,} (flat)",
            result[f"get-{args.large}"],
            result[f"get-{args.small}"],
            "target >= 0.9",
        )
        report(
            f"get_tuple, SqliteSaver at {args.large:,} vs at {args.small:,}",
            result[f"peer-get-{args.large}"],
            result[f"peer-get-{args.small}"],
            "peer, for reference",
        )
    report(
        f"latest at {n:,} vs SqliteSaver.get_tuple of the thread",
        result["latest"],
        result["peer-latest"],
        "target >= 1.0",
    )
    report(
        f"list(limit=10) at {n:,} vs SqliteSaver.list", result["list"], result["peer-list"], "target >= 1.0"
    )
    for f in filled.values():
        f.close()


# --- PostgreSQL -----------------------------------------------------------------------------------
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


def _ours_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(
        parts._replace(query=urlencode([*parse_qsl(parts.query), ("prefix", f"kb{secrets.token_hex(4)}_")]))
    )


@contextmanager
def _pg_stores(url: str) -> Iterator[tuple[str, Any, str]]:
    """(Keepup URL with a fresh table prefix, its driver, the peer's URL on a fresh schema)."""
    from langgraph.checkpoint.postgres import PostgresSaver

    ours_url = _ours_url(url)
    driver = open_store(ours_url)
    try:
        with _pg_schema(url) as lg_url:
            with PostgresSaver.from_conn_string(lg_url) as saver:
                saver.setup()
            yield ours_url, driver, lg_url
    finally:
        destroy = getattr(driver, "destroy", None)
        if destroy is not None:
            destroy()
        driver.close()


def postgres_section(args: argparse.Namespace, url: str) -> None:
    from langgraph.checkpoint.postgres import PostgresSaver

    n, batch = args.pg_checkpoints, max(10, args.batch // 4)
    print(f"PostgreSQL: durable saves ({batch} per round), then get by id on a thread of {n:,}", flush=True)
    with _pg_stores(url) as (_, driver, lg_url), PostgresSaver.from_conn_string(lg_url) as saver:
        cps = Checkpoints(driver)
        thread = cps.create_thread("pg")
        lg = LangGraphThread(saver, "pg")
        counters = {"keepup": Counter(), "peer": Counter()}
        ids: list[str] = []

        def ours() -> int:
            for i in counters["keepup"].take(batch):
                ids.append(cps.save(thread.id, state_at(i)).id)
            return batch

        def peer() -> int:
            for i in counters["peer"].take(batch):
                lg.put(i)
            return batch

        result = rounds({"keepup": ours, "peer": peer}, args.rounds)
        print(f"  {load_average()}", flush=True)
        report(
            "PostgreSQL save, durable vs PostgresSaver.put", result["keepup"], result["peer"], "target >= 1.0"
        )
        while len(ids) < n:
            ids.append(cps.save(thread.id, state_at(len(ids))).id)
        while len(lg.ids) < n:
            lg.put(len(lg.ids))
        picks = random.Random(3).sample(range(n), min(args.reps // 4, n))

        def ours_get() -> int:
            fresh = Checkpoints(driver)
            for k in picks:
                fresh.get(ids[k])
            return len(picks)

        def peer_get() -> int:
            for k in picks:
                assert saver.get_tuple(lg.by_id(lg.ids[k])) is not None
            return len(picks)

        result = rounds({"keepup": ours_get, "peer": peer_get}, args.rounds)
        print(f"  {load_average()}", flush=True)
        report(
            f"PostgreSQL get by id at {n:,}, fresh object vs get_tuple",
            result["keepup"],
            result["peer"],
            "target >= 5",
        )


def _pg_worker(
    kind: str, url: str, index: int, count: int, ready: Any, go: Any, out: Any
) -> None:  # runs in a child process
    try:
        if kind == "keepup":
            store = open_store(url)
            cps = Checkpoints(store)
            tid = cps.create_thread(f"proc-{index}-{secrets.token_hex(3)}").id
            save: Callable[[int], object] = lambda i: cps.save(tid, state_at(i))  # noqa: E731
            close: Callable[[], object] = store.close
        else:
            from langgraph.checkpoint.postgres import PostgresSaver

            manager = PostgresSaver.from_conn_string(url)
            saver = manager.__enter__()
            lg = LangGraphThread(saver, f"proc-{index}-{secrets.token_hex(3)}")
            save = lg.put
            close = lambda: manager.__exit__(None, None, None)  # noqa: E731
        save(0)  # connect and warm up outside the timed part
        ready.put(index)
        go.wait()
        start = time.perf_counter()
        for i in range(1, count + 1):
            save(i)
        out.put((start, time.perf_counter()))
        close()
    except BaseException as exc:  # report instead of leaving the parent waiting
        out.put(repr(exc))


def _procs_round(kind: str, url: str, procs: int, count: int) -> float:
    ctx = multiprocessing.get_context("fork")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    workers = [
        ctx.Process(target=_pg_worker, args=(kind, url, k, count, ready, go, out)) for k in range(procs)
    ]
    for w in workers:
        w.start()
    for _ in workers:
        ready.get(timeout=120)
    go.set()
    spans = [out.get(timeout=600) for _ in workers]
    for w in workers:
        w.join()
    errors = [s for s in spans if isinstance(s, str)]
    if errors:
        raise RuntimeError(f"a {kind} worker failed: {errors[0]}")
    return procs * count / (max(end for _, end in spans) - min(start for start, _ in spans))


def postgres_procs_section(args: argparse.Namespace, url: str) -> None:
    procs, count = args.procs, max(10, args.batch // 4)
    print(
        f"PostgreSQL: {procs} processes, each saving {count} checkpoints to its own thread, per round",
        flush=True,
    )
    with _pg_stores(url) as (ours_url, _, lg_url):
        result: dict[str, list[float]] = {"keepup": [], "peer": []}
        for r in range(args.rounds):
            for kind in ("keepup", "peer") if r % 2 == 0 else ("peer", "keepup"):
                result[kind].append(
                    _procs_round(kind, ours_url if kind == "keepup" else lg_url, procs, count)
                )
        print(f"  {load_average()}", flush=True)
        report(
            f"{procs} processes, total saves/s vs PostgresSaver's",
            result["keepup"],
            result["peer"],
            "target >= 1.5",
        )


# --- bytes ----------------------------------------------------------------------------------------
def _db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def storage_section(args: argparse.Namespace, tmp: Path) -> None:
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
    print(
        f"  bytes stored (values): {logical_ours:,} vs {logical_full:,}: {logical_ours / logical_full:.3f} (target <= 0.10)"
    )
    print(
        f"  bytes on disk (SQLite files): {on_disk_ours:,} vs {on_disk_full:,}: {on_disk_ours / on_disk_full:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per measurement (>= 5)")
    parser.add_argument("--batch", type=int, default=200, help="SQLite saves per round")
    parser.add_argument("--reps", type=int, default=1_000, help="reads per round")
    parser.add_argument("--checkpoints", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000, help="0 skips the flatness row")
    parser.add_argument("--pg-checkpoints", type=int, default=10_000)
    parser.add_argument("--procs", type=int, default=8)
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--only", choices=SECTIONS, action="append", default=None)
    args = parser.parse_args()
    only = set(args.only or SECTIONS)
    url = os.environ.get("KEEPUP_TEST_POSTGRES_URL")
    with tempfile.TemporaryDirectory(prefix="keepup-bench-ckpt-") as tmp_name:
        tmp = Path(tmp_name)
        if "sqlite-save" in only:
            sqlite_save(args, tmp)
        if "sqlite-reads" in only:
            sqlite_reads(args, tmp)
        for section, run in (("postgres", postgres_section), ("postgres-procs", postgres_procs_section)):
            if section in only:
                if url:
                    run(args, url)
                else:
                    print(f"{section}: skipped (KEEPUP_TEST_POSTGRES_URL is not set)")
        if "bytes" in only:
            storage_section(args, tmp)


if __name__ == "__main__":
    main()
