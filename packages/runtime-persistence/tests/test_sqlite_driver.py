"""The SQLite driver's own guarantees: WAL and durability modes, threads, a lost upload cleaned."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from runtime_core import ConflictError, CorruptionError, Durability, Entry, NotFoundError
from runtime_persistence.storage.drivers.sqlite import SqliteDriver


@pytest.mark.parametrize(("durability", "level"), [(Durability.DURABLE, 2), (Durability.RELAXED, 1)])
def test_wal_and_the_synchronous_level_follow_durability(
    tmp_path: Path, durability: Durability, level: int
) -> None:
    driver = SqliteDriver(tmp_path / "s.db", durability=durability)
    conn = driver._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == level
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    driver.close()


def test_threads_share_a_driver_safely(tmp_path: Path) -> None:
    driver = SqliteDriver(tmp_path / "s.db", durability="relaxed")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                while True:
                    entry = driver.get("ns", "counter")
                    try:
                        if entry is None:
                            driver.put("ns", "counter", b"1", if_absent=True)
                        else:
                            driver.put(
                                "ns", "counter", str(int(entry.value) + 1).encode(), if_version=entry.version
                            )
                        break
                    except ConflictError:
                        continue
                driver.put("ns", f"t{n}/{i}", b"x")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert driver.get("ns", "counter") == Entry("counter", b"200", 200)
    assert len(list(driver.scan("ns", prefix="t"))) == 200
    driver.close()


def test_an_interrupted_blob_stream_leaves_no_visible_blob(tmp_path: Path) -> None:
    driver = SqliteDriver(tmp_path / "s.db")

    def broken():  # type: ignore[no-untyped-def]
        yield b"x" * (3 << 20)
        raise OSError("source went away")

    with pytest.raises(OSError):
        driver.put_blob_stream(broken())
    assert list(driver.list_blobs()) == []
    with sqlite3.connect(tmp_path / "s.db") as raw:
        assert raw.execute("SELECT count(*) FROM blob_chunks").fetchone()[0] == 0
    driver.close()


def test_a_stale_unpublished_upload_is_removed_on_open(tmp_path: Path) -> None:
    SqliteDriver(tmp_path / "s.db").close()
    with sqlite3.connect(tmp_path / "s.db") as raw:
        blob_id = raw.execute(
            "INSERT INTO blobs (digest, size, created_at) VALUES (NULL, 0, '2000-01-01T00:00:00+00:00') RETURNING id"
        ).fetchone()[0]
        raw.execute("INSERT INTO blob_chunks VALUES (?, 0, x'00')", (blob_id,))
    SqliteDriver(tmp_path / "s.db").close()
    with sqlite3.connect(tmp_path / "s.db") as raw:
        assert raw.execute("SELECT count(*) FROM blob_chunks").fetchone()[0] == 0


def test_a_file_that_is_not_a_database_is_corruption(tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CorruptionError):
        SqliteDriver(tmp_path / "junk.db")


def test_read_only_open_of_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        SqliteDriver(tmp_path / "missing.db", read_only=True)
    assert not (tmp_path / "missing.db").exists()


def test_destroy_removes_the_files(tmp_path: Path) -> None:
    driver = SqliteDriver(tmp_path / "s.db")
    driver.put("ns", "k", b"v")
    driver.destroy()
    assert list(tmp_path.iterdir()) == []


def _raw_row(path: Path, key: bytes) -> tuple[bytes, int, bytes]:
    with sqlite3.connect(path) as raw:
        value, version, checksum = raw.execute(
            "SELECT value, version, checksum FROM kv WHERE ns = 'ns' AND key = ?", (key,)
        ).fetchone()
    return bytes(value), int(version), bytes(checksum)


@pytest.mark.parametrize("size", [10, 10_000])
def test_new_rows_carry_the_fast_checksum_and_every_flipped_bit_is_caught(tmp_path: Path, size: int) -> None:
    """Planted bug: the XXH3 format is compared on its format byte only (or skips the value).
    Every write stores the current format (a format byte, then XXH3-128 of namespace, key,
    version and value); a single flipped bit anywhere in the value is refused on read."""
    from runtime_persistence.storage.drivers._sqlite_rows import ROW_SUM_SIZE

    driver = SqliteDriver(tmp_path / "s.db", durability="relaxed")
    value = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    driver.put("ns", "k", value)
    driver.put("ns", "k", value)  # an update re-sums at the new version
    stored, version, checksum = _raw_row(tmp_path / "s.db", b"k")
    assert version == 2 and len(checksum) == ROW_SUM_SIZE and checksum[0] == 1
    for bit in (0, len(stored) * 8 // 2, len(stored) * 8 - 1):
        damaged = bytearray(stored)
        damaged[bit // 8] ^= 1 << (bit % 8)
        with sqlite3.connect(tmp_path / "s.db") as raw:
            raw.execute("UPDATE kv SET value = ? WHERE ns = 'ns' AND key = ?", (bytes(damaged), b"k"))
        with pytest.raises(CorruptionError, match="checksum"):
            driver.get("ns", "k")
        with pytest.raises(CorruptionError, match="checksum"):
            list(driver.scan("ns"))
    driver.close()


def test_rows_written_with_the_old_blake2b_checksum_still_verify(tmp_path: Path) -> None:
    """Planted bug: the reader knows only the current checksum format, so a store written by an
    older Keepup (BLAKE2b-64 row sums) reads as damaged; or it accepts an old-format sum
    without checking it, or a checksum of neither format."""
    from runtime_persistence.storage.drivers._sqlite_rows import _legacy_row_sum

    driver = SqliteDriver(tmp_path / "s.db", durability="relaxed")
    driver.put("ns", "small", b"old row")
    driver.put("ns", "large", b"L" * 9000)
    with sqlite3.connect(tmp_path / "s.db") as raw:  # as an older Keepup wrote them
        for key in (b"small", b"large"):
            value, version, _ = _raw_row(tmp_path / "s.db", key)
            raw.execute(
                "UPDATE kv SET checksum = ? WHERE ns = 'ns' AND key = ?",
                (_legacy_row_sum("ns", key, version, value), key),
            )
    assert driver.get("ns", "small") == Entry("small", b"old row", 1)
    assert [e.key for e in driver.scan("ns")] == ["large", "small"]
    for checksum in (_legacy_row_sum("ns", b"small", 1, b"old rov"), b"\x01" * 17, b"\x00" * 12, None):
        with sqlite3.connect(tmp_path / "s.db") as raw:
            raw.execute("UPDATE kv SET checksum = ? WHERE ns = 'ns' AND key = ?", (checksum, b"small"))
        with pytest.raises(CorruptionError, match="checksum"):
            driver.get("ns", "small")
    driver.close()
