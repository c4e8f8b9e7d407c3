"""Driver throughput next to the raw client doing the same work in the same run.

For every driver that is available here (memory, file, SQLite always; PostgreSQL, MySQL/MariaDB
and Redis when KEEPUP_TEST_*_URL is set and the server answers), measure put, get and scan
throughput of the Keepup driver and of the raw client writing/reading the same bytes at the same
durability, and print the ratio driver/raw. Each measurement is the best of ``--rounds`` rounds,
driver and raw interleaved, so both see the same machine load.

Targets (issue 3): SQLite durable put >= 0.9x raw sqlite3 at the same synchronous level; SQLite
get >= 0.5x a raw select.

    .venv/bin/python benchmarks/bench_drivers.py            # all available drivers
    .venv/bin/python benchmarks/bench_drivers.py --only sqlite --rounds 5
"""

from __future__ import annotations

import argparse
import os
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from runtime_persistence.storage.stores import open_store

VALUE = os.urandom(100)
NS = "bench"


def key(i: int) -> str:
    return f"key/{i:08d}"


def best_rate(fn: Callable[[], int], rounds: int) -> float:
    """Best ops/second over ``rounds`` runs of ``fn`` (which returns how many ops it did)."""
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        ops = fn()
        rates.append(ops / (time.perf_counter() - start))
    return max(rates)


class Row:
    def __init__(self, driver: str, op: str, ours: float, raw: float, peer: str) -> None:
        self.driver, self.op, self.ours, self.raw, self.peer = driver, op, ours, raw, peer

    @property
    def ratio(self) -> float:
        return self.ours / self.raw


def interleaved(rounds: int, ours: Callable[[], int], raw: Callable[[], int]) -> tuple[float, float]:
    o: list[float] = []
    r: list[float] = []
    for _ in range(rounds):
        o.append(best_rate(ours, 1))
        r.append(best_rate(raw, 1))
    return max(o), max(r)


# SQLite --------------------------------------------------------------------------------------------
def bench_sqlite(rounds: int, durable_n: int, fast_n: int) -> list[Row]:
    tmp = Path(tempfile.mkdtemp(prefix="keepup-bench-"))
    return [
        *_bench_sqlite_mode(tmp, "durable", "FULL", durable_n, rounds),
        *_bench_sqlite_mode(tmp, "relaxed", "NORMAL", fast_n, rounds),
    ]


def _bench_sqlite_mode(tmp: Path, durability: str, sync: str, n: int, rounds: int) -> list[Row]:
    rows: list[Row] = []
    driver = open_store(f"sqlite:///{tmp / f'ours-{durability}.db'}", durability=durability)
    raw = sqlite3.connect(tmp / f"raw-{durability}.db", isolation_level=None)
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute(f"PRAGMA synchronous = {sync}")
    raw.execute(
        "CREATE TABLE kv (ns TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, "
        "version INTEGER NOT NULL, PRIMARY KEY (ns, key))"
    )
    counter = {"ours": 0, "raw": 0}

    def ours_put() -> int:
        base = counter["ours"]
        for i in range(base, base + n):
            driver.put(NS, key(i), VALUE)
        counter["ours"] += n
        return n

    def raw_put() -> int:
        base = counter["raw"]
        for i in range(base, base + n):
            raw.execute(
                "INSERT INTO kv (ns, key, value, version) VALUES (?, ?, ?, 1)",
                (NS, key(i).encode(), VALUE),
            )
        counter["raw"] += n
        return n

    o, r = interleaved(rounds, ours_put, raw_put)
    rows.append(Row("sqlite", f"put ({durability})", o, r, f"sqlite3 INSERT, WAL, synchronous={sync}"))
    if durability == "relaxed":
        total = counter["ours"]
        gets = [key(i) for i in range(0, total, max(1, total // 20_000))] * 2

        def ours_get() -> int:
            for k in gets:
                driver.get(NS, k)
            return len(gets)

        def raw_get() -> int:
            for k in gets:
                raw.execute(
                    "SELECT value, version FROM kv WHERE ns = ? AND key = ?", (NS, k.encode())
                ).fetchone()
            return len(gets)

        o, r = interleaved(rounds, ours_get, raw_get)
        rows.append(Row("sqlite", "get", o, r, "sqlite3 SELECT by primary key"))
        starts = [key(i) for i in range(0, total - 200, max(1, total // 500))]

        def ours_scan() -> int:
            for s in starts:
                for _ in driver.scan(NS, after=s, limit=100):
                    pass
            return len(starts) * 100

        def raw_scan() -> int:
            for s in starts:
                for _ in raw.execute(
                    "SELECT key, value, version FROM kv WHERE ns = ? AND key > ? ORDER BY key LIMIT 100",
                    (NS, s.encode()),
                ):
                    pass
            return len(starts) * 100

        o, r = interleaved(rounds, ours_scan, raw_scan)
        rows.append(Row("sqlite", "scan (entries)", o, r, "sqlite3 SELECT … ORDER BY key LIMIT 100"))
    driver.close()
    raw.close()
    return rows


# memory --------------------------------------------------------------------------------------------
def bench_memory(rounds: int, n: int) -> list[Row]:
    driver = open_store("memory://")
    peer: dict[tuple[str, str], tuple[bytes, int]] = {}

    def ours_put() -> int:
        for i in range(n):
            driver.put(NS, key(i), VALUE)
        return n

    def raw_put() -> int:
        for i in range(n):
            k = (NS, key(i))
            old = peer.get(k)
            peer[k] = (VALUE, old[1] + 1 if old else 1)
        return n

    rows = [Row("memory", "put", *interleaved(rounds, ours_put, raw_put), "dict assignment")]

    def ours_get() -> int:
        for i in range(n):
            driver.get(NS, key(i))
        return n

    def raw_get() -> int:
        for i in range(n):
            peer.get((NS, key(i)))
        return n

    rows.append(Row("memory", "get", *interleaved(rounds, ours_get, raw_get), "dict lookup"))
    return rows


# file ----------------------------------------------------------------------------------------------
def bench_file(rounds: int, n: int) -> list[Row]:
    tmp = Path(tempfile.mkdtemp(prefix="keepup-bench-file-"))
    driver = open_store(f"file://{tmp / 'ours'}")
    raw_dir = tmp / "raw"
    raw_dir.mkdir()

    def ours_put() -> int:
        for i in range(n):
            driver.put(NS, key(i), VALUE)
        return n

    def raw_put() -> int:
        dfd = os.open(raw_dir, os.O_RDONLY)
        try:
            for i in range(n):
                name = key(i).encode().hex()
                tmp_path = raw_dir / f"{name}.tmp"
                with open(tmp_path, "wb") as f:
                    f.write(VALUE)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp_path, raw_dir / name)
                os.fsync(dfd)
        finally:
            os.close(dfd)
        return n

    rows = [
        Row("file", "put (durable)", *interleaved(rounds, ours_put, raw_put), "write+fsync+rename+fsync dir")
    ]

    def ours_get() -> int:
        for i in range(n):
            driver.get(NS, key(i))
        return n

    def raw_get() -> int:
        for i in range(n):
            (raw_dir / key(i).encode().hex()).read_bytes()
        return n

    rows.append(Row("file", "get", *interleaved(rounds, ours_get, raw_get), "read_bytes"))
    return rows


# servers -------------------------------------------------------------------------------------------
def with_prefix(url: str, prefix: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), ("prefix", prefix)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def open_server(name: str, env: str) -> tuple[Any, str] | None:
    url = os.environ.get(env, "").strip()
    if not url:
        print(f"# {name}: {env} not set, skipped", file=sys.stderr)
        return None
    try:
        return open_store(with_prefix(url, f"kb{secrets.token_hex(4)}_")), url
    except Exception as exc:
        print(f"# {name}: cannot open ({exc!r}), skipped", file=sys.stderr)
        return None


def _driver_pair(
    driver: Any,
    n: int,
    raw_put: Callable[[int], object],
    raw_get: Callable[[int], object],
    name: str,
    peer: str,
    rounds: int,
) -> list[Row]:
    counter = {"ours": 0, "raw": 0}

    def ours_p() -> int:
        base = counter["ours"]
        for i in range(base, base + n):
            driver.put(NS, key(i), VALUE)
        counter["ours"] += n
        return n

    def raw_p() -> int:
        base = counter["raw"]
        for i in range(base, base + n):
            raw_put(i)
        counter["raw"] += n
        return n

    rows = [Row(name, "put", *interleaved(rounds, ours_p, raw_p), peer)]

    def ours_g() -> int:
        for i in range(n):
            driver.get(NS, key(i))
        return n

    def raw_g() -> int:
        for i in range(n):
            raw_get(i)
        return n

    rows.append(Row(name, "get", *interleaved(rounds, ours_g, raw_g), peer))
    return rows


def bench_postgres(rounds: int, n: int) -> list[Row]:
    opened = open_server("postgres", "KEEPUP_TEST_POSTGRES_URL")
    if opened is None:
        return []
    driver, url = opened
    import psycopg

    table = f"kb{secrets.token_hex(4)}_raw"
    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    conn.execute(
        f"CREATE TABLE {table} (ns TEXT NOT NULL, key BYTEA NOT NULL, value BYTEA NOT NULL, "
        "version BIGINT NOT NULL, PRIMARY KEY (ns, key))"
    )
    try:
        return _driver_pair(
            driver,
            n,
            lambda i: conn.execute(
                f"INSERT INTO {table} VALUES (%s, %s, %s, 1)", (NS, key(i).encode(), VALUE)
            ),
            lambda i: conn.execute(
                f"SELECT value, version FROM {table} WHERE ns = %s AND key = %s", (NS, key(i).encode())
            ).fetchone(),
            "postgres",
            "psycopg INSERT/SELECT, autocommit",
            rounds,
        )
    finally:
        conn.execute(f"DROP TABLE {table}")
        conn.close()
        getattr(driver, "destroy", lambda: None)()
        driver.close()


def bench_mysql(rounds: int, n: int) -> list[Row]:
    opened = open_server("mysql", "KEEPUP_TEST_MYSQL_URL")
    if opened is None:
        return []
    driver, url = opened
    import pymysql

    parts = urlsplit(url)
    conn = pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        database=parts.path.lstrip("/") or "test",
        autocommit=True,
    )
    table = f"kb{secrets.token_hex(4)}_raw"
    cur = conn.cursor()
    cur.execute(
        f"CREATE TABLE {table} (ns VARCHAR(64) NOT NULL, k VARBINARY(512) NOT NULL, v LONGBLOB NOT NULL, "
        "version BIGINT NOT NULL, PRIMARY KEY (ns, k)) ENGINE=InnoDB"
    )
    try:
        return _driver_pair(
            driver,
            n,
            lambda i: cur.execute(
                f"INSERT INTO {table} VALUES (%s, %s, %s, 1)", (NS, key(i).encode(), VALUE)
            ),
            lambda i: (
                cur.execute(
                    f"SELECT v, version FROM {table} WHERE ns = %s AND k = %s", (NS, key(i).encode())
                ),
                cur.fetchone(),
            ),
            "mysql",
            "pymysql INSERT/SELECT, autocommit",
            rounds,
        )
    finally:
        cur.execute(f"DROP TABLE {table}")
        conn.close()
        getattr(driver, "destroy", lambda: None)()
        driver.close()


def bench_redis(rounds: int, n: int) -> list[Row]:
    opened = open_server("redis", "KEEPUP_TEST_REDIS_URL")
    if opened is None:
        return []
    driver, url = opened
    import redis

    client = redis.Redis.from_url(url)
    prefix = f"kb{secrets.token_hex(4)}_raw:"
    try:
        return _driver_pair(
            driver,
            n,
            lambda i: client.set(prefix + key(i), VALUE),
            lambda i: client.get(prefix + key(i)),
            "redis",
            "redis-py SET/GET",
            rounds,
        )
    finally:
        for k in client.scan_iter(prefix + "*"):
            client.delete(k)
        client.close()
        getattr(driver, "destroy", lambda: None)()
        driver.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--durable-ops", type=int, default=400)
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--only", default="memory,file,sqlite,postgres,mysql,redis")
    args = parser.parse_args()
    only = set(args.only.split(","))
    rows: list[Row] = []
    if "memory" in only:
        rows += bench_memory(args.rounds, args.ops)
    if "file" in only:
        rows += bench_file(args.rounds, args.durable_ops)
    if "sqlite" in only:
        rows += bench_sqlite(args.rounds, args.durable_ops, args.ops)
    if "postgres" in only:
        rows += bench_postgres(args.rounds, args.durable_ops)
    if "mysql" in only:
        rows += bench_mysql(args.rounds, args.durable_ops)
    if "redis" in only:
        rows += bench_redis(args.rounds, args.ops)
    print(f"{'driver':<9} {'operation':<17} {'keepup ops/s':>13} {'raw ops/s':>12} {'ratio':>6}  peer")
    for row in rows:
        print(
            f"{row.driver:<9} {row.op:<17} {row.ours:>13,.0f} {row.raw:>12,.0f} {row.ratio:>6.2f}  {row.peer}"
        )
    targets = {("sqlite", "put (durable)"): 0.9, ("sqlite", "get"): 0.5}
    for row in rows:
        target = targets.get((row.driver, row.op))
        if target is not None:
            verdict = "meets" if row.ratio >= target else "MISSES"
            print(f"# {row.driver} {row.op}: {row.ratio:.2f}x raw, {verdict} the {target}x target")


if __name__ == "__main__":
    main()
