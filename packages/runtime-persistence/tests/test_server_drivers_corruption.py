"""Corruption on the server backends is detected, never decoded: stored records and blob chunks
are damaged in place with the server's own client (bits flipped, bytes truncated, chunks
removed), and every read raises CorruptionError: records through the envelope checksum, blobs
through the digest check at the end of the stream."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from runtime_core import CorruptionError, Put
from runtime_persistence.storage.serialization import dumps, loads
from runtime_persistence.testing import TestStore, driver_params, open_test_store, server_url

RECORD_TRIALS = 600  # per server
BLOB_TRIALS = 60  # per server
NS = "corrupt"


def damage(data: bytes, rng: random.Random) -> bytes:
    """Flip one to three bits, or truncate; never returns ``data`` unchanged."""
    if data and rng.random() < 0.4:
        return data[: rng.randrange(len(data))]
    out = bytearray(data)
    if not out:
        return b"\x00"
    for pos in rng.sample(range(len(out) * 8), k=min(len(out) * 8, rng.randint(1, 3))):
        out[pos // 8] ^= 1 << (pos % 8)
    return bytes(out)


class _Sql:
    """Reaches into a PostgreSQL or MySQL store's tables with the raw client."""

    def __init__(self, name: str, driver: Any) -> None:
        url = server_url(name)
        assert url is not None
        if name == "postgres":
            import psycopg

            self.conn: Any = psycopg.connect(url, autocommit=True)
            self.names = {k: v.as_string(None) for k, v in driver._names().items()}
        else:
            import pymysql

            parts = urlsplit(url)
            self.conn = pymysql.connect(
                host=parts.hostname,
                port=parts.port or 3306,
                user=parts.username or "root",
                password=parts.password or "",
                database=parts.path.lstrip("/"),
                autocommit=True,
            )
            self.names = dict(driver._names)

    def _one(self, sql: str, *args: Any) -> Any:
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            row = cur.fetchone()
        return None if row is None else row[0]

    def _run(self, sql: str, *args: Any) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql, args)

    def value(self, key: str) -> bytes:
        return bytes(
            self._one(f"SELECT v FROM {self.names['kv']} WHERE ns = %s AND k = %s", NS, key.encode())
        )

    def set_value(self, key: str, value: bytes) -> None:
        self._run(f"UPDATE {self.names['kv']} SET v = %s WHERE ns = %s AND k = %s", value, NS, key.encode())

    def _upload(self, digest: str) -> int:
        return int(self._one(f"SELECT upload FROM {self.names['blobs']} WHERE digest = %s", digest))

    def chunks(self, digest: str) -> int:
        return int(
            self._one(f"SELECT COUNT(*) FROM {self.names['chunks']} WHERE upload = %s", self._upload(digest))
        )

    def chunk(self, digest: str, seq: int) -> bytes:
        sql = f"SELECT data FROM {self.names['chunks']} WHERE upload = %s AND seq = %s"
        return bytes(self._one(sql, self._upload(digest), seq))

    def set_chunk(self, digest: str, seq: int, data: bytes) -> None:
        sql = f"UPDATE {self.names['chunks']} SET data = %s WHERE upload = %s AND seq = %s"
        self._run(sql, data, self._upload(digest), seq)

    def drop_chunk(self, digest: str, seq: int) -> None:
        sql = f"DELETE FROM {self.names['chunks']} WHERE upload = %s AND seq = %s"
        self._run(sql, self._upload(digest), seq)

    def close(self) -> None:
        self.conn.close()


class _Redis:
    def __init__(self, driver: Any) -> None:
        import redis

        url = server_url("redis")
        assert url is not None
        self.r: Any = redis.Redis.from_url(url)
        self.base: bytes = driver._base

    def value(self, key: str) -> bytes:
        return bytes(self.r.hget(self.base + b"v:" + NS.encode(), key.encode()))

    def set_value(self, key: str, value: bytes) -> None:
        self.r.hset(self.base + b"v:" + NS.encode(), key.encode(), value)

    def _chunk_key(self, digest: str, seq: int) -> bytes:
        upload = self.r.hget(self.base + b"b:" + digest.encode(), b"upload")
        return self.base + b"c:" + upload + b":" + str(seq).encode()

    def chunks(self, digest: str) -> int:
        return int(self.r.hget(self.base + b"b:" + digest.encode(), b"chunks"))

    def chunk(self, digest: str, seq: int) -> bytes:
        return bytes(self.r.get(self._chunk_key(digest, seq)))

    def set_chunk(self, digest: str, seq: int, data: bytes) -> None:
        self.r.set(self._chunk_key(digest, seq), data)

    def drop_chunk(self, digest: str, seq: int) -> None:
        self.r.delete(self._chunk_key(digest, seq))

    def close(self) -> None:
        self.r.close()


class _Mongo:
    def __init__(self, driver: Any) -> None:
        self.kv, self.blobs, self.chunk_docs = driver._kv, driver._blobs, driver._chunks

    def value(self, key: str) -> bytes:
        return bytes(self.kv.find_one({"_id": f"{NS}|{key}"})["v"])

    def set_value(self, key: str, value: bytes) -> None:
        self.kv.update_one({"_id": f"{NS}|{key}"}, {"$set": {"v": value}})

    def _upload(self, digest: str) -> str:
        return str(self.blobs.find_one({"_id": digest})["u"])

    def chunks(self, digest: str) -> int:
        return int(self.chunk_docs.count_documents({"u": self._upload(digest)}))

    def chunk(self, digest: str, seq: int) -> bytes:
        return bytes(self.chunk_docs.find_one({"u": self._upload(digest), "n": seq})["data"])

    def set_chunk(self, digest: str, seq: int, data: bytes) -> None:
        self.chunk_docs.update_one({"u": self._upload(digest), "n": seq}, {"$set": {"data": data}})

    def drop_chunk(self, digest: str, seq: int) -> None:
        self.chunk_docs.delete_one({"u": self._upload(digest), "n": seq})

    def close(self) -> None:
        return None


# the SQL drivers are native async too: check their async twins (the others only wrap sync code)
@pytest.fixture(
    params=driver_params(["postgres", "mysql"], modes=("sync", "async")) + driver_params(["redis", "mongodb"])
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestStore]:
    with open_test_store(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture
def tamper(store: TestStore) -> Iterator[Any]:
    driver: Any = store.driver
    hands: Any
    if store.name in ("postgres", "mysql"):
        hands = _Sql(store.name, driver)
    elif store.name == "redis":
        hands = _Redis(driver)
    else:
        hands = _Mongo(driver)
    yield hands
    hands.close()


def _value(rng: random.Random, i: int) -> Any:
    return {
        "i": i,
        "text": "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(40))),
        "data": rng.randbytes(rng.randrange(200)),
        "nested": [rng.random(), None, True, {"k": rng.randrange(1 << 40)}],
    }


def test_damaged_records_are_caught_on_every_server(store: TestStore, tamper: Any) -> None:
    rng = random.Random(f"records-{store.name}")
    keys = [f"r/{i:05d}" for i in range(RECORD_TRIALS)]
    for start in range(0, len(keys), 100):
        store.driver.batch(
            [Put(NS, k, dumps(_value(rng, i))) for i, k in enumerate(keys[start : start + 100])]
        )
    for key in keys:
        tamper.set_value(key, damage(tamper.value(key), rng))
    for key in keys:
        with pytest.raises(CorruptionError):
            entry = store.driver.get(NS, key)
            assert entry is not None, "a damaged record vanished instead of failing"
            loads(entry.value)
    with pytest.raises(CorruptionError):
        for entry in store.driver.scan(NS, limit=10):
            loads(entry.value)


def test_damaged_or_missing_blob_chunks_are_caught_on_every_server(store: TestStore, tamper: Any) -> None:
    rng = random.Random(f"blobs-{store.name}")
    for trial in range(BLOB_TRIALS):
        size = rng.choice([1, 100, 5000, 70_000]) if trial % 8 else (1 << 20) + rng.randrange(1 << 20)
        data = rng.randbytes(size)
        info = store.driver.put_blob(data)
        count = tamper.chunks(info.digest)
        seq = rng.randrange(count)
        if count > 1 and trial % 3 == 0:
            tamper.drop_chunk(info.digest, seq)
        else:
            tamper.set_chunk(info.digest, seq, damage(tamper.chunk(info.digest, seq), rng))
        with pytest.raises(CorruptionError):
            store.driver.get_blob(info.digest)
        with pytest.raises(CorruptionError):
            for _ in store.driver.open_blob(info.digest, chunk_size=4096):
                pass
        assert store.driver.delete_blob(info.digest)
