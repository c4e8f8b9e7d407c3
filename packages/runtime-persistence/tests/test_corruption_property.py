"""Corruption is detected, never decoded: over 10,000 stored records and blobs are damaged (bits
flipped, bytes truncated) where they are stored, and every read raises CorruptionError.

* memory: the driver keeps bytes as given; the envelope (serialization) detects the damage;
* sqlite: rows are damaged with a separate sqlite3 connection (value, version or checksum column;
  blob chunk rows), and the driver's row checksum or the blob digest detects it;
* file: the files themselves are rewritten damaged, and the record checksum or blob digest
  detects it.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime_core import CorruptionError, blob_digest
from runtime_persistence.storage.drivers.file import FileDriver
from runtime_persistence.storage.drivers.memory import MemoryDriver
from runtime_persistence.storage.drivers.sqlite import SqliteDriver
from runtime_persistence.storage.serialization import dumps, loads

RECORD_TRIALS = 3000  # per driver
BLOB_TRIALS = 400  # per driver
NS = "corrupt"


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return rng.randrange(-(2**40), 2**40)
    if kind == 1:
        return rng.random() * 1e6
    if kind == 2:
        return "".join(
            chr(rng.choice([rng.randrange(32, 127), rng.randrange(0xA0, 0xD7FF)]))
            for _ in range(rng.randrange(30))
        )
    if kind == 3:
        return rng.randbytes(rng.randrange(40))
    if kind == 4:
        return rng.choice([None, True, False])
    if kind in (5, 6):
        return {f"k{i}": random_value(rng, depth + 1) for i in range(rng.randrange(5))}
    return [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]


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


def expect_corruption_on_read(driver: Any, key: str) -> None:
    """Reading ``key`` through the driver and the envelope raises CorruptionError."""
    with pytest.raises(CorruptionError):
        entry = driver.get(NS, key)
        assert entry is not None, "a damaged record vanished instead of failing"
        loads(entry.value)


def expect_blob_corruption(driver: Any, digest: str) -> None:
    with pytest.raises(CorruptionError):
        driver.get_blob(digest)
    with pytest.raises(CorruptionError):
        for _ in driver.open_blob(digest, chunk_size=4096):
            pass


@pytest.fixture
def rng() -> random.Random:
    return random.Random(0x5EED)


def _records(driver: Any, rng: random.Random, count: int) -> list[tuple[str, bytes]]:
    stored = []
    for i in range(count):
        data = dumps(random_value(rng))
        driver.put(NS, f"r/{i:04d}", data)
        stored.append((f"r/{i:04d}", data))
    return stored


def _blob_payload(rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice([1, 7, 100, 4096, 5000, 70_000]))


# records -------------------------------------------------------------------------------------------
def test_damaged_records_in_memory_are_caught_by_the_envelope(rng: random.Random) -> None:
    driver = MemoryDriver()
    for i in range(RECORD_TRIALS):
        original = dumps(random_value(rng))
        driver.put(NS, f"r/{i}", damage(original, rng))
        expect_corruption_on_read(driver, f"r/{i}")


def test_damaged_sqlite_rows_are_caught(tmp_path: Path, rng: random.Random) -> None:
    driver = SqliteDriver(tmp_path / "s.db")
    stored = _records(driver, rng, 200)
    raw = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    raw.execute("PRAGMA synchronous = OFF")
    try:
        for _ in range(RECORD_TRIALS):
            key, _original = rng.choice(stored)
            kb = key.encode()
            value, version, checksum = raw.execute(
                "SELECT value, version, checksum FROM kv WHERE ns = ? AND key = ?", (NS, kb)
            ).fetchone()
            column = rng.choice(["value", "value", "version", "checksum"])
            if column == "value":
                new: Any = damage(value, rng)
            elif column == "version":
                new = version + rng.choice([-1, 1, 2, 1 << 20])
            else:
                new = damage(checksum, rng)
            raw.execute(f"UPDATE kv SET {column} = ? WHERE ns = ? AND key = ?", (new, NS, kb))
            expect_corruption_on_read(driver, key)
            raw.execute(
                "UPDATE kv SET value = ?, version = ?, checksum = ? WHERE ns = ? AND key = ?",
                (value, version, checksum, NS, kb),
            )
        assert [e.value for e in driver.scan(NS)] == [v for _, v in sorted(stored)]
    finally:
        raw.close()
        driver.close()


def test_damaged_record_files_are_caught(tmp_path: Path, rng: random.Random) -> None:
    driver = FileDriver(tmp_path / "store")
    stored = _records(driver, rng, 200)
    for _ in range(RECORD_TRIALS):
        key, _value = rng.choice(stored)
        path = driver._key_path(NS, key.encode())
        original = path.read_bytes()
        path.write_bytes(damage(original, rng))
        expect_corruption_on_read(driver, key)
        path.write_bytes(original)
    assert [e.value for e in driver.scan(NS)] == [v for _, v in sorted(stored)]


def test_a_record_file_copied_to_another_key_is_caught(tmp_path: Path) -> None:
    driver = FileDriver(tmp_path / "store")
    driver.put(NS, "a", dumps("a"))
    driver.put(NS, "b", dumps("b"))
    driver._key_path(NS, b"b").write_bytes(driver._key_path(NS, b"a").read_bytes())
    expect_corruption_on_read(driver, "b")


# blobs ---------------------------------------------------------------------------------------------
def test_damaged_blobs_in_memory_are_caught(rng: random.Random) -> None:
    driver = MemoryDriver()
    for _ in range(BLOB_TRIALS):
        data = _blob_payload(rng)
        info = driver.put_blob(data)
        driver._set_raw_blob(info.digest, damage(data, rng))
        expect_blob_corruption(driver, info.digest)
        driver.delete_blob(info.digest)


def test_damaged_sqlite_blob_rows_are_caught(tmp_path: Path, rng: random.Random) -> None:
    driver = SqliteDriver(tmp_path / "s.db")
    raw = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    raw.execute("PRAGMA synchronous = OFF")
    blobs = [driver.put_blob(_blob_payload(rng)) for _ in range(40)]
    try:
        for trial in range(BLOB_TRIALS):
            info = rng.choice(blobs)
            blob_id, seq, data = raw.execute(
                "SELECT c.blob_id, c.seq, c.data FROM blob_chunks c JOIN blobs b ON b.id = c.blob_id "
                "WHERE b.digest = ? ORDER BY c.seq",
                (info.digest,),
            ).fetchone()
            if trial % 10 == 0:
                raw.execute("DELETE FROM blob_chunks WHERE blob_id = ? AND seq = ?", (blob_id, seq))
                expect_blob_corruption(driver, info.digest)
                raw.execute(
                    "INSERT INTO blob_chunks (blob_id, seq, data) VALUES (?, ?, ?)", (blob_id, seq, data)
                )
            else:
                raw.execute(
                    "UPDATE blob_chunks SET data = ? WHERE blob_id = ? AND seq = ?",
                    (damage(data, rng), blob_id, seq),
                )
                expect_blob_corruption(driver, info.digest)
                raw.execute(
                    "UPDATE blob_chunks SET data = ? WHERE blob_id = ? AND seq = ?", (data, blob_id, seq)
                )
        assert all(blob_digest(driver.get_blob(b.digest)) == b.digest for b in blobs)
    finally:
        raw.close()
        driver.close()


def test_damaged_blob_files_are_caught(tmp_path: Path, rng: random.Random) -> None:
    driver = FileDriver(tmp_path / "store")
    blobs = [driver.put_blob(_blob_payload(rng)) for _ in range(40)]
    for _ in range(BLOB_TRIALS):
        info = rng.choice(blobs)
        path = driver._blob_path(info.digest)
        original = path.read_bytes()
        path.write_bytes(damage(original, rng))
        expect_blob_corruption(driver, info.digest)
        path.write_bytes(original)
    assert all(blob_digest(driver.get_blob(b.digest)) == b.digest for b in blobs)


def test_the_trials_cover_at_least_ten_thousand_damaged_items() -> None:
    assert 3 * RECORD_TRIALS + 3 * BLOB_TRIALS >= 10_000


def test_damage_always_changes_the_bytes() -> None:
    rng = random.Random(1)
    for n in range(2000):
        data = rng.randbytes(n % 50)
        assert damage(data, rng) != data


def iter_chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_a_damaged_multi_row_sqlite_blob_fails_only_at_the_end_of_the_stream(tmp_path: Path) -> None:
    driver = SqliteDriver(tmp_path / "s.db")
    data = random.Random(3).randbytes(3 << 20)
    info = driver.put_blob_stream(iter_chunks(data, 300_000))
    with sqlite3.connect(tmp_path / "s.db") as raw:
        row = raw.execute("SELECT data FROM blob_chunks WHERE seq = 1").fetchone()
        raw.execute("UPDATE blob_chunks SET data = ? WHERE seq = 1", (damage(row[0], random.Random(4)),))
    chunks: list[bytes] = []
    with pytest.raises(CorruptionError):
        for chunk in driver.open_blob(info.digest, chunk_size=1 << 20):
            chunks.append(chunk)
    assert len(chunks) < 3  # the last chunk is held back until the digest is checked
    driver.close()
