"""The PostgreSQL driver's migration lock is transaction-scoped (``pg_advisory_xact_lock``): many
processes opening one fresh store at once migrate it exactly once, directly and through PgBouncer
in transaction mode, where a session lock would be taken and released on different server
connections (it leaked, and the next opener waited forever)."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import psycopg
from runtime_persistence import open_store
from runtime_persistence.storage.drivers import _postgres_sql as pg
from runtime_persistence.testing import isolated_url
from runtime_persistence.testing.pgbouncer import start_pgbouncer

OPENERS = 10


def _open(url: str, barrier: Any, out: Any) -> None:
    try:
        barrier.wait(timeout=60)
        driver = open_store(url)
        driver.put("ns", f"k{mp.current_process().pid}", b"v")
        driver.close()
        out.put("ok")
    except BaseException as exc:  # reported to the parent, which fails the test with it
        out.put(f"{type(exc).__name__}: {exc}")


def _open_at_once(url: str, processes: int, timeout: float = 60.0) -> list[str]:
    """What each of ``processes`` processes opening ``url`` at the same moment reported; a
    process still waiting after ``timeout`` seconds is killed and reported as hung."""
    ctx = mp.get_context("fork")  # the parent holds no connection; children start in milliseconds
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_open, args=(url, barrier, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    results: list[str] = []
    deadline = time.monotonic() + timeout
    for _ in procs:
        try:
            results.append(out.get(timeout=max(0.1, deadline - time.monotonic())))
        except Exception:
            results.append("hung: still opening the store")
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.kill()
            p.join()
    return results


def _recorded(direct_url: str) -> list[int]:
    prefix = dict(parse_qsl(urlsplit(direct_url).query))["prefix"]
    table = pg.table_names(prefix, None)["migrations"]
    with psycopg.connect(pg.libpq_url(direct_url)) as conn:
        return [int(v) for (v,) in conn.execute(f"SELECT version FROM {table} ORDER BY version")]


def _destroy(url: str) -> None:
    driver: Any = open_store(url)
    driver.destroy()
    driver.close()


def test_concurrent_first_opens_migrate_exactly_once(tmp_path: Path) -> None:
    url = isolated_url("postgres", tmp_path)
    try:
        assert _open_at_once(url, OPENERS) == ["ok"] * OPENERS
        assert _recorded(url) == list(range(1, len(pg.migrations()) + 1))
    finally:
        _destroy(url)


def test_concurrent_first_opens_through_pgbouncer_in_transaction_mode(tmp_path: Path) -> None:
    url = isolated_url("postgres", tmp_path)
    direct = url.split("?", 1)[0]
    query = url.split("?", 1)[1]
    try:
        with start_pgbouncer(direct, pool_mode="transaction", pool_size=4) as bouncer:
            through = f"{bouncer}?{query}&prepare=0&pool_size=1"
            assert _open_at_once(through, OPENERS) == ["ok"] * OPENERS
            # openers after them are not blocked by a lock left behind on a pooled connection
            assert _open_at_once(through, 2, timeout=30) == ["ok"] * 2
            assert _recorded(url) == list(range(1, len(pg.migrations()) + 1))
            driver: Any = open_store(through)
            try:
                assert len(list(driver.scan("ns"))) == OPENERS + 2  # every opener wrote through it
            finally:
                driver.close()
    finally:
        _destroy(url)
