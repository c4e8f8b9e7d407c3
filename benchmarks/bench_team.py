"""A team on one PostgreSQL: 1, 2, 4, 8 and 16 worker processes saving checkpoints at once, each
through its own connection pool, Keepup (``Checkpoints`` over ``postgresql://…?pool_size=P``) beside
LangGraph's ``PostgresSaver`` (over a ``psycopg_pool.ConnectionPool(max_size=P)``) doing the same
work: every process runs ``--threads`` threads, each extending its own thread of checkpoints by one
chat message per save. Optionally the same through PgBouncer in transaction mode: ``--pgbouncer
URL`` (one already running, e.g. ``postgresql://postgres@127.0.0.1:6432/test``) or ``--pgbouncer
start``, which starts Debian's ``pgbouncer`` on a free port in transaction mode with
``--pgbouncer-pool`` server connections (``runtime_persistence.testing.pgbouncer``).

Each measurement starts every process, lets each open its pool and create its threads, then
releases them together and counts the saves completed in ``--seconds`` (process start-up and
connection set-up are not timed). Rounds interleave the peers and rotate which goes first; the
report is saves/second per worker count (median, min-max over the rounds), the Keepup/peer ratio,
and the load average.

    KEEPUP_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python benchmarks/bench_team.py --rounds 5 --seconds 3
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stats import Ratio, load_average

WORKERS = (1, 2, 4, 8, 16)
MESSAGE = "x" * 200


def _with(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in params] + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _database(url: str, name: str) -> str:
    """``url`` pointing at the database ``name`` (no query: a plain libpq URL)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}", query=""))


def _keepup_worker(url: str, threads: int, ready: Any, go: Any, stop: Any, out: Any) -> None:
    from runtime_persistence import Checkpoints, open_store

    driver = open_store(url)
    cps = Checkpoints(driver)
    ids = [cps.create_thread().id for _ in range(threads)]
    counts = [0] * threads

    def run(i: int) -> None:
        messages: list[str] = []
        go.wait()
        while not stop.is_set():
            messages.append(MESSAGE)
            cps.save(ids[i], {"messages": messages})
            counts[i] += 1

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    ready.release()
    for t in pool:
        t.join()
    out.put(sum(counts))
    driver.close()


def _langgraph_worker(
    conninfo: str, pool_size: int, threads: int, prepare: bool, ready: Any, go: Any, stop: Any, out: Any
) -> None:
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    pool = ConnectionPool(
        conninfo,
        min_size=pool_size,
        max_size=pool_size,
        # LangGraph's documented set-up prepares every statement (0); never through PgBouncer
        kwargs={"autocommit": True, "prepare_threshold": 0 if prepare else None, "row_factory": dict_row},
        open=True,
    )
    saver = PostgresSaver(pool)  # type: ignore[arg-type]
    counts = [0] * threads

    def run(i: int) -> None:
        thread_id = f"w{os.getpid()}-{i}-{secrets.token_hex(4)}"
        config: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        messages: list[str] = []
        go.wait()
        step = 0
        while not stop.is_set():
            messages.append(MESSAGE)
            cp = empty_checkpoint()
            step += 1
            cp["channel_values"] = {"messages": list(messages)}
            cp["channel_versions"] = {"messages": step}
            config = saver.put(config, cp, {"step": step, "source": "loop"}, {"messages": step})
            counts[i] += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    ready.release()
    for t in workers:
        t.join()
    out.put(sum(counts))
    pool.close()


def _measure(target: Any, args: tuple[Any, ...], processes: int, seconds: float) -> float:
    # fork: the workers inherit the imported libraries (no connection is open in the parent), so
    # start-up costs milliseconds even on a loaded machine; nothing of it is timed anyway
    ctx = mp.get_context("fork")
    ready, go, stop, out = ctx.Semaphore(0), ctx.Event(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, ready, go, stop, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    for _ in procs:
        if not ready.acquire(timeout=120):
            raise SystemExit("a worker did not start")
    go.set()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    total = sum(out.get(timeout=120) for _ in procs)
    elapsed = time.perf_counter() - started
    for p in procs:
        p.join(timeout=60)
    return float(total / elapsed)


def _report(
    targets: dict[str, str], workers: list[int], results: dict[tuple[str, str, int], list[float]], done: int
) -> None:
    def cell(v: list[float]) -> str:
        return f"{statistics.median(v):.0f} ({min(v):.0f}-{max(v):.0f})"

    for target_name in targets:
        print(f"\n{target_name}: saves/second, median (min-max) over {done} rounds")
        print(
            f"{'workers':>8} {'keepup':>18} {'langgraph':>18} {'keepup/langgraph':>34} {'keepup/worker':>14}"
        )
        for n in workers:
            ours = results[(target_name, "keepup", n)]
            theirs = results[(target_name, "langgraph", n)]
            print(
                f"{n:>8} {cell(ours):>18} {cell(theirs):>18} {Ratio.of(ours, theirs)!s:>34} "
                f"{statistics.median(ours) / n:>14.0f}"
            )
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=2, help="saving threads per process")
    parser.add_argument("--pool-size", type=int, default=2, help="the most connections one process opens")
    parser.add_argument("--workers", default=",".join(map(str, WORKERS)))
    parser.add_argument(
        "--pgbouncer",
        default=os.environ.get("KEEPUP_BENCH_PGBOUNCER_URL", ""),
        help="a PgBouncer URL in transaction mode, or 'start' to start one",
    )
    parser.add_argument(
        "--pgbouncer-pool", type=int, default=8, help="server connections of a started PgBouncer"
    )
    opts = parser.parse_args()
    url = os.environ.get("KEEPUP_TEST_POSTGRES_URL")
    if not url:
        raise SystemExit("set KEEPUP_TEST_POSTGRES_URL")
    import psycopg
    import runtime_persistence  # noqa: F401 (imported once here; forked workers inherit it)
    from langgraph.checkpoint.base import empty_checkpoint  # noqa: F401
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg_pool import ConnectionPool  # noqa: F401

    workers = [int(w) for w in opts.workers.split(",")]
    # a database of its own, so LangGraph's fixed table names meet nobody else's (and no
    # search_path is needed, which PgBouncer in transaction mode would not keep)
    db = f"bench_team_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db}")
        max_conn = conn.execute("SHOW max_connections").fetchone()
    with psycopg.connect(_database(url, db), autocommit=True) as conn:
        PostgresSaver(conn).setup()  # type: ignore[arg-type]
    targets = {"direct": _database(url, db)}
    stack = contextlib.ExitStack()
    if opts.pgbouncer == "start":
        from runtime_persistence.testing.pgbouncer import start_pgbouncer

        bouncer = stack.enter_context(
            start_pgbouncer(url, pool_mode="transaction", pool_size=opts.pgbouncer_pool)
        )
        targets["pgbouncer"] = _database(bouncer, db)
        print(f"started PgBouncer in transaction mode, {opts.pgbouncer_pool} server connections")
    elif opts.pgbouncer:
        targets["pgbouncer"] = _database(opts.pgbouncer, db)
    print(
        f"{load_average()}; PostgreSQL max_connections {max_conn[0] if max_conn else '?'}; "
        f"{opts.threads} threads and a pool of {opts.pool_size} per process; {opts.seconds}s per run"
    )
    results: dict[tuple[str, str, int], list[float]] = {}
    try:
        for r in range(opts.rounds):
            for target_name, target_url in targets.items():
                for n in workers:
                    prefix = f"bt{secrets.token_hex(4)}_"
                    prepare = target_name == "direct"  # PgBouncer 1.18 loses prepared statements
                    keepup_url = _with(
                        target_url,
                        prefix=prefix,
                        pool_size=str(opts.pool_size),
                        prepare="1" if prepare else "0",
                    )
                    peers = {
                        "keepup": (_keepup_worker, (keepup_url, opts.threads)),
                        "langgraph": (
                            _langgraph_worker,
                            (target_url, opts.pool_size, opts.threads, prepare),
                        ),
                    }
                    names = list(peers)
                    order = names[r % 2 :] + names[: r % 2]
                    for name in order:
                        fn, args = peers[name]
                        rate = _measure(fn, args, n, opts.seconds)
                        results.setdefault((target_name, name, n), []).append(rate)
                    from runtime_persistence import open_store

                    drv: Any = open_store(_with(targets["direct"], prefix=prefix))
                    drv.destroy()
                    drv.close()
            print(f"round {r + 1} done; {load_average()}", flush=True)
            _report(targets, workers, results, r + 1)
    finally:
        stack.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {db} WITH (FORCE)")
    print(f"\n{load_average()}")


if __name__ == "__main__":
    main()
