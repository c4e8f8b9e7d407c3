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
