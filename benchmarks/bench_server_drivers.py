"""Server drivers (PostgreSQL, MySQL/MariaDB, Redis, MongoDB) next to their raw client doing the
same work in the same run, printed as ratios (driver / raw; 1.00 = as fast as the raw client).

Operations: put (plain, and compare-and-set), get, scan (pages of 100 entries), and a 64 MiB blob
streamed in and out. The raw peer writes the same bytes into an equivalent table or key layout
with the same client library and the same durability setting (PostgreSQL ``synchronous_commit``),
but without Keepup's validation, versions, conditions or digest checks. Each number is the best
of ``--rounds`` rounds, driver and raw interleaved so both see the same machine load.

A server is used when its ``KEEPUP_TEST_*_URL`` is set and answers; every run uses fresh
prefixes/tables and removes them afterwards.

    .venv/bin/python benchmarks/bench_server_drivers.py
    .venv/bin/python benchmarks/bench_server_drivers.py --only postgres,redis --ops 5000 --rounds 5
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from runtime_persistence.storage.stores import open_store

VALUE = os.urandom(100)
NS = "bench"
BLOB_MIB = 64
CHUNK = 1 << 20
SERVERS = {
    "postgres": "KEEPUP_TEST_POSTGRES_URL",
    "mysql": "KEEPUP_TEST_MYSQL_URL",
    "redis": "KEEPUP_TEST_REDIS_URL",
    "mongodb": "KEEPUP_TEST_MONGODB_URL",
}


def key(i: int) -> str:
    return f"key/{i:08d}"


@dataclass
class Row:
    server: str
    op: str
    ours: float
    raw: float
    unit: str
    peer: str

    @property
    def ratio(self) -> float:
        return self.ours / self.raw


def timed(fn: Callable[[], float]) -> float:
    """``fn`` returns how much work it did (ops or MiB); the rate per second."""
    start = time.perf_counter()
    work = fn()
    return work / (time.perf_counter() - start)


def interleaved(rounds: int, ours: Callable[[], float], raw: Callable[[], float]) -> tuple[float, float]:
    o: list[float] = []
    r: list[float] = []
    for _ in range(rounds):
        o.append(timed(ours))
        r.append(timed(raw))
    return max(o), max(r)


def blob_source() -> Iterator[bytes]:
    seed = os.urandom(CHUNK)
    for i in range(BLOB_MIB):
        yield i.to_bytes(8, "big") + seed[8:]


class Raw:
    """The raw client's side of each measurement (one subclass per server)."""

    peer = ""

    def put(self, i: int) -> None:
        raise NotImplementedError

    def cas(self, i: int, version: int) -> None:
        raise NotImplementedError

    def get(self, i: int) -> None:
        raise NotImplementedError

    def scan(self, after: str) -> int:
        raise NotImplementedError

    def blob_write(self, chunks: Iterator[bytes]) -> None:
        raise NotImplementedError

    def blob_read(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class RawPostgres(Raw):
    def __init__(self, url: str, relaxed: bool) -> None:
        import psycopg

        self.peer = "psycopg, autocommit" + (", synchronous_commit=off" if relaxed else "")
        self.conn = psycopg.connect(url, autocommit=True)
        if relaxed:
            self.conn.execute("SET synchronous_commit TO off")
        self.t = f"kb{secrets.token_hex(4)}_raw"
        self.conn.execute(
            f"CREATE TABLE {self.t} (ns text, k bytea, v bytea, ver bigint, PRIMARY KEY (ns, k))"
        )
        self.conn.execute(f"CREATE TABLE {self.t}_c (id bigint, seq int, data bytea, PRIMARY KEY (id, seq))")
        self.conn.execute(f"ALTER TABLE {self.t}_c ALTER COLUMN data SET STORAGE EXTERNAL")

    def put(self, i: int) -> None:
        self.conn.execute(
            f"INSERT INTO {self.t} VALUES (%s, %b, %b, 1) "
            f"ON CONFLICT (ns, k) DO UPDATE SET v = EXCLUDED.v, ver = {self.t}.ver + 1",
            (NS, key(i).encode(), VALUE),
        )

    def cas(self, i: int, version: int) -> None:
        self.conn.execute(
            f"UPDATE {self.t} SET v = %b, ver = ver + 1 WHERE ns = %s AND k = %b AND ver = %s",
            (VALUE, NS, key(i).encode(), version),
        )

    def get(self, i: int) -> None:
        self.conn.execute(
            f"SELECT v, ver FROM {self.t} WHERE ns = %s AND k = %b", (NS, key(i).encode())
        ).fetchone()

    def scan(self, after: str) -> int:
        rows = self.conn.execute(
            f"SELECT k, v, ver FROM {self.t} WHERE ns = %s AND k > %b ORDER BY k LIMIT 100",
            (NS, after.encode()),
        ).fetchall()
        return len(rows)

    def blob_write(self, chunks: Iterator[bytes]) -> None:
        with self.conn.transaction():
            blob = secrets.randbits(62)
            for seq, chunk in enumerate(chunks):
                self.conn.execute(f"INSERT INTO {self.t}_c VALUES (%s, %s, %b)", (blob, seq, chunk))
        self.last = blob

    def blob_read(self) -> int:
        size = 0
        for seq in range(BLOB_MIB):
            row = self.conn.execute(
                f"SELECT data FROM {self.t}_c WHERE id = %s AND seq = %s", (self.last, seq), binary=True
            ).fetchone()
            size += len(row[0])
        return size

    def close(self) -> None:
        self.conn.execute(f"DROP TABLE {self.t}")
        self.conn.execute(f"DROP TABLE {self.t}_c")
        self.conn.close()


class RawMysql(Raw):
    peer = "pymysql, autocommit"

    def __init__(self, url: str) -> None:
        import pymysql

        parts = urlsplit(url)
        self.conn = pymysql.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=parts.username or "root",
            password=parts.password or "",
            database=parts.path.lstrip("/"),
            autocommit=True,
            binary_prefix=True,
        )
        self.cur = self.conn.cursor()
        self.t = f"kb{secrets.token_hex(4)}_raw"
        self.cur.execute(
            f"CREATE TABLE {self.t} (ns VARCHAR(63), k VARBINARY(512), v LONGBLOB, ver BIGINT, "
            "PRIMARY KEY (ns, k)) ENGINE=InnoDB"
        )
        self.cur.execute(
            f"CREATE TABLE {self.t}_c (id BIGINT, seq INT, data MEDIUMBLOB, PRIMARY KEY (id, seq)) ENGINE=InnoDB"
        )

    def put(self, i: int) -> None:
        self.cur.execute(
            f"INSERT INTO {self.t} VALUES (%s, %s, %s, 1) ON DUPLICATE KEY UPDATE v = VALUES(v), ver = ver + 1",
            (NS, key(i).encode(), VALUE),
        )

    def cas(self, i: int, version: int) -> None:
        self.cur.execute(
            f"UPDATE {self.t} SET v = %s, ver = ver + 1 WHERE ns = %s AND k = %s AND ver = %s",
            (VALUE, NS, key(i).encode(), version),
        )

    def get(self, i: int) -> None:
        self.cur.execute(f"SELECT v, ver FROM {self.t} WHERE ns = %s AND k = %s", (NS, key(i).encode()))
        self.cur.fetchone()

    def scan(self, after: str) -> int:
        self.cur.execute(
            f"SELECT k, v, ver FROM {self.t} WHERE ns = %s AND k > %s ORDER BY k LIMIT 100",
            (NS, after.encode()),
        )
        return len(self.cur.fetchall())

    def blob_write(self, chunks: Iterator[bytes]) -> None:
        blob = secrets.randbits(62)
        self.conn.begin()
        for seq, chunk in enumerate(chunks):
            self.cur.execute(f"INSERT INTO {self.t}_c VALUES (%s, %s, %s)", (blob, seq, chunk))
        self.conn.commit()
        self.last = blob

    def blob_read(self) -> int:
        size = 0
        for seq in range(BLOB_MIB):
            self.cur.execute(f"SELECT data FROM {self.t}_c WHERE id = %s AND seq = %s", (self.last, seq))
            size += len(self.cur.fetchone()[0])
        return size

    def close(self) -> None:
        self.cur.execute(f"DROP TABLE {self.t}")
        self.cur.execute(f"DROP TABLE {self.t}_c")
        self.conn.close()


class RawRedis(Raw):
    peer = "redis-py SET/GET, ZRANGEBYLEX+HMGET"

    def __init__(self, url: str) -> None:
        import redis

        self.r = redis.Redis.from_url(url)
        self.p = f"kb{secrets.token_hex(4)}_raw:".encode()

    def put(self, i: int) -> None:
        self.r.set(self.p + key(i).encode(), VALUE)

    def cas(self, i: int, version: int) -> None:
        self.r.set(self.p + key(i).encode(), VALUE)

    def get(self, i: int) -> None:
        self.r.get(self.p + key(i).encode())

    def index(self, n: int) -> None:
        pipe = self.r.pipeline(transaction=False)
        for i in range(n):
            pipe.zadd(self.p + b"idx", {key(i).encode(): 0})
            pipe.hset(self.p + b"vals", key(i).encode(), VALUE)
        pipe.execute()

    def scan(self, after: str) -> int:
        keys = self.r.zrangebylex(self.p + b"idx", b"(" + after.encode(), b"+", start=0, num=100)
        if keys:
            self.r.hmget(self.p + b"vals", keys)
        return len(keys)

    def blob_write(self, chunks: Iterator[bytes]) -> None:
        pipe = self.r.pipeline(transaction=False)
        for seq, chunk in enumerate(chunks):
            pipe.set(self.p + b"c:" + str(seq).encode(), chunk)
            if seq % 8 == 7:
                pipe.execute()
        pipe.execute()

    def blob_read(self) -> int:
        size = 0
        for start in range(0, BLOB_MIB, 8):
            for data in self.r.mget([self.p + b"c:" + str(s).encode() for s in range(start, start + 8)]):
                size += len(data)
        return size

    def close(self) -> None:
        for name in self.r.scan_iter(match=self.p + b"*", count=1000):
            self.r.unlink(name)
        self.r.close()


class RawMongo(Raw):
    peer = "pymongo, w=majority j=true"

    def __init__(self, url: str) -> None:
        import pymongo
        from pymongo.write_concern import WriteConcern

        self.client: Any = pymongo.MongoClient(url)
        db = self.client.get_default_database("keepup", write_concern=WriteConcern(w="majority", j=True))
        self.c = db[f"kb{secrets.token_hex(4)}_raw"]
        self.chunks = db[f"{self.c.name}_c"]

    def put(self, i: int) -> None:
        self.c.update_one({"_id": key(i)}, {"$set": {"v": VALUE}, "$inc": {"ver": 1}}, upsert=True)

    def cas(self, i: int, version: int) -> None:
        self.c.update_one({"_id": key(i), "ver": version}, {"$set": {"v": VALUE}, "$inc": {"ver": 1}})

    def get(self, i: int) -> None:
        self.c.find_one({"_id": key(i)})

    def scan(self, after: str) -> int:
        return len(list(self.c.find({"_id": {"$gt": after}}).sort("_id", 1).limit(100)))

    def blob_write(self, chunks: Iterator[bytes]) -> None:
        self.last = secrets.token_hex(8)
        for seq, chunk in enumerate(chunks):
            self.chunks.insert_one({"u": self.last, "n": seq, "data": chunk})

    def blob_read(self) -> int:
        return sum(len(d["data"]) for d in self.chunks.find({"u": self.last}).sort("n", 1))

    def close(self) -> None:
        self.c.drop()
        self.chunks.drop()
        self.client.close()


def with_prefix(url: str, prefix: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode([*parse_qsl(parts.query), ("prefix", prefix)])))


def bench_server(name: str, url: str, durability: str, rounds: int, n: int) -> list[Row]:
    driver: Any = open_store(with_prefix(url, f"kb{secrets.token_hex(4)}_"), durability=durability)
    raw: Raw
    if name == "postgres":
        raw = RawPostgres(url, relaxed=durability == "relaxed")
    elif name == "mysql":
        raw = RawMysql(url)
    elif name == "redis":
        raw = RawRedis(url)
    else:
        raw = RawMongo(url)
    label = f"{name} ({durability})" if name == "postgres" else name
    rows: list[Row] = []
    try:
        counter = {"ours": 0, "raw": 0}

        def ours_put() -> float:
            base = counter["ours"]
            for i in range(base, base + n):
                driver.put(NS, key(i), VALUE)
            counter["ours"] += n
            return n

        def raw_put() -> float:
            base = counter["raw"]
            for i in range(base, base + n):
                raw.put(i)
            counter["raw"] += n
            return n

        rows.append(Row(label, "put", *interleaved(rounds, ours_put, raw_put), "ops/s", raw.peer))
        written = min(counter["ours"], counter["raw"])
        versions = {"ours": 1, "raw": 1}

        def ours_cas() -> float:
            v = versions["ours"]
            for i in range(n):
                driver.put(NS, key(i), VALUE, if_version=v)
            versions["ours"] += 1
            return n

        def raw_cas() -> float:
            v = versions["raw"]
            for i in range(n):
                raw.cas(i, v)
            versions["raw"] += 1
            return n

        cas_peer = "redis-py SET (unconditional: no raw CAS)" if isinstance(raw, RawRedis) else raw.peer
        rows.append(Row(label, "put if_version", *interleaved(rounds, ours_cas, raw_cas), "ops/s", cas_peer))

        def ours_get() -> float:
            for i in range(n):
                driver.get(NS, key(i))
            return n

        def raw_get() -> float:
            for i in range(n):
                raw.get(i)
            return n

        rows.append(Row(label, "get", *interleaved(rounds, ours_get, raw_get), "ops/s", raw.peer))
        if isinstance(raw, RawRedis):
            raw.index(written)
        starts = [key(i) for i in range(0, max(1, written - 100), max(1, written // 100))]

        def ours_scan() -> float:
            return float(sum(sum(1 for _ in driver.scan(NS, after=s, limit=100)) for s in starts))

        def raw_scan() -> float:
            return float(sum(raw.scan(s) for s in starts))

        rows.append(
            Row(label, "scan (entries)", *interleaved(rounds, ours_scan, raw_scan), "entries/s", raw.peer)
        )
        if durability == "durable":
            digests: list[str] = []

            def ours_blob_write() -> float:
                info = driver.put_blob_stream(blob_source())
                digests.append(info.digest)
                return BLOB_MIB

            def raw_blob_write() -> float:
                raw.blob_write(blob_source())
                return BLOB_MIB

            rows.append(
                Row(
                    label,
                    "blob stream in",
                    *interleaved(rounds, ours_blob_write, raw_blob_write),
                    "MiB/s",
                    raw.peer,
                )
            )

            def ours_blob_read() -> float:
                h = hashlib.sha256()
                for part in driver.open_blob(digests[-1]):
                    h.update(part)
                return BLOB_MIB

            def raw_blob_read() -> float:
                raw.blob_read()
                return BLOB_MIB

            rows.append(
                Row(
                    label,
                    "blob stream out",
                    *interleaved(rounds, ours_blob_read, raw_blob_read),
                    "MiB/s",
                    raw.peer,
                )
            )
    finally:
        raw.close()
        driver.destroy()
        driver.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ops", type=int, default=2000, help="operations per round for put/get")
    parser.add_argument("--only", default=",".join(SERVERS))
    args, _ = parser.parse_known_args()  # the nox session passes one argument list to every script
    wanted = {s.strip() for s in args.only.split(",")}
    rows: list[Row] = []
    for name, env in SERVERS.items():
        if name not in wanted:
            continue
        url = os.environ.get(env, "").strip()
        if not url:
            print(f"# {name}: {env} is not set, skipped", file=sys.stderr)
            continue
        modes = ("durable", "relaxed") if name == "postgres" else ("durable",)
        for mode in modes:
            try:
                rows += bench_server(name, url, mode, args.rounds, args.ops)
            except Exception as exc:
                print(f"# {name}: cannot benchmark ({exc!r}), skipped", file=sys.stderr)
    print(f"{'server':<20} {'operation':<16} {'keepup':>10} {'raw':>10} {'unit':<9} {'ratio':>6}  raw peer")
    for row in rows:
        print(
            f"{row.server:<20} {row.op:<16} {row.ours:>10,.0f} {row.raw:>10,.0f} {row.unit:<9} "
            f"{row.ratio:>6.2f}  {row.peer}"
        )


if __name__ == "__main__":
    main()
