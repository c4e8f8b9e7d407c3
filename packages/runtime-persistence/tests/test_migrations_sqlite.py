"""SQLite schema migrations: an old store is migrated forward on open and every record reads
back; read-only opens refuse to migrate; unknown histories are refused; failures roll back."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from runtime_core import Entry, StorageError, ValidationError
from runtime_persistence.storage.drivers._migrations import Migration, MigrationRunner
from runtime_persistence.storage.drivers.sqlite import MIGRATIONS, SqliteDriver


def build_v1_store(path: Path) -> tuple[dict[tuple[str, str], tuple[bytes, int]], dict[str, bytes]]:
    """The oldest schema (migration 1 only), filled with records and blobs the way v1 code
    wrote them (no checksum column)."""
    conn = sqlite3.connect(path, isolation_level=None)
    MigrationRunner(MIGRATIONS[:1]).migrate(conn, begin=lambda c: c.execute("BEGIN IMMEDIATE"))
    records: dict[tuple[str, str], tuple[bytes, int]] = {}
    for i in range(300):
        ns = ("threads", "checkpoints", "artifacts")[i % 3]
        key = f"k/{i:04d}/é" if i % 7 else f"\U0001f600/{i}"
        value = hashlib.sha256(str(i).encode()).digest() * (i % 5)
        version = 1 + i % 4
        conn.execute(
            "INSERT INTO kv (ns, key, value, version) VALUES (?, ?, ?, ?)", (ns, key.encode(), value, version)
        )
        records[(ns, key)] = (value, version)
    blobs: dict[str, bytes] = {}
    for i in range(5):
        data = bytes([i]) * (1000 + (i << 19))  # up to ~2 MiB: more than one chunk row
        digest = hashlib.sha256(data).hexdigest()
        blob_id = conn.execute(
            "INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?) RETURNING id",
            (digest, len(data), "2026-01-01T00:00:00+00:00"),
        ).fetchone()[0]
        for seq, start in enumerate(range(0, len(data), 1 << 20)):
            conn.execute(
                "INSERT INTO blob_chunks (blob_id, seq, data) VALUES (?, ?, ?)",
                (blob_id, seq, data[start : start + (1 << 20)]),
            )
        blobs[digest] = data
    conn.close()
    return records, blobs


def applied_versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM keepup_migrations ORDER BY version")]


def test_the_oldest_schema_is_migrated_and_every_record_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    records, blobs = build_v1_store(path)
    assert applied_versions(path) == [1]
    driver = SqliteDriver(path)
    try:
        assert driver.schema_status().up_to_date
        assert applied_versions(path) == [m.version for m in MIGRATIONS]
        for (ns, key), (value, version) in records.items():
            assert driver.get(ns, key) == Entry(key, value, version)
        for ns in ("threads", "checkpoints", "artifacts"):
            expected = sorted((k for n, k in records if n == ns), key=lambda k: k.encode())
            assert [e.key for e in driver.scan(ns)] == expected
        for digest, data in blobs.items():
            assert driver.get_blob(digest) == data
        # the migrated store keeps working: CAS on a migrated row moves its version on
        (ns, key), (_, version) = next(iter(records.items()))
        assert driver.put(ns, key, b"new", if_version=version) == version + 1
    finally:
        driver.close()


def test_reopening_a_current_store_applies_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SqliteDriver(path).close()
    with sqlite3.connect(path) as conn:
        before = conn.execute("SELECT version, applied_at FROM keepup_migrations").fetchall()
    SqliteDriver(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version, applied_at FROM keepup_migrations").fetchall() == before


def test_a_read_only_open_of_an_old_store_refuses_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    build_v1_store(path)
    with pytest.raises(StorageError, match="read-only") as info:
        SqliteDriver(path, read_only=True)
    assert "keepup store migrate" in str(info.value)
    assert applied_versions(path) == [1]


def test_a_read_only_open_of_a_current_store_reads(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    writer = SqliteDriver(path)
    writer.put("ns", "k", b"v")
    writer.close()
    reader = SqliteDriver.from_url(f"sqlite:///{path}?read_only=1")
    try:
        assert reader.get("ns", "k") == Entry("k", b"v", 1)
        with pytest.raises(StorageError):
            reader.put("ns", "k", b"w")
    finally:
        reader.close()


def test_a_store_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SqliteDriver(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO keepup_migrations VALUES (?, 'from the future', 'x')", (len(MIGRATIONS) + 1,)
        )
    with pytest.raises(StorageError, match="newer"):
        SqliteDriver(path)


def test_a_history_that_disagrees_with_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SqliteDriver(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE keepup_migrations SET name = 'something else' WHERE version = 1")
    with pytest.raises(StorageError, match="does not match"):
        SqliteDriver(path)


def test_a_failing_migration_rolls_back_entirely(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    good = Migration(1, "table", ("CREATE TABLE t (x INTEGER)",))
    bad = Migration(2, "broken", ("CREATE TABLE u (y INTEGER)", "THIS IS NOT SQL"))
    MigrationRunner([good]).migrate(conn, begin=lambda c: c.execute("BEGIN IMMEDIATE"))
    with pytest.raises(sqlite3.OperationalError):
        MigrationRunner([good, bad]).migrate(conn, begin=lambda c: c.execute("BEGIN IMMEDIATE"))
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "u" not in tables and "t" in tables
    assert [r[0] for r in conn.execute("SELECT version FROM keepup_migrations")] == [1]
    conn.close()


def test_callable_migrations_transform_data(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)

    def double(cursor: sqlite3.Cursor) -> None:
        cursor.execute("UPDATE t SET x = x * 2")

    first = Migration(1, "table", ("CREATE TABLE t (x INTEGER)", "INSERT INTO t VALUES (21)"))
    applied = MigrationRunner([first, Migration(2, "double", double)]).migrate(conn)
    assert [m.version for m in applied] == [1, 2]
    assert conn.execute("SELECT x FROM t").fetchone()[0] == 42
    conn.close()


@pytest.mark.parametrize("versions", [[2], [1, 3], [1, 1], [0, 1]])
def test_migration_lists_must_be_numbered_from_one_without_gaps(versions: list[int]) -> None:
    with pytest.raises(ValidationError):
        MigrationRunner([Migration(v, f"m{v}", ()) for v in versions])


def test_a_status_check_on_an_empty_database_reports_version_zero(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    status = MigrationRunner(MIGRATIONS).status(conn)
    assert status.current == 0 and status.latest == len(MIGRATIONS) and not status.up_to_date
    conn.close()


def _v2_store(path: Path) -> None:
    """A store at schema version 2 with rows written by that version's code (BLAKE2b-64 sums)."""
    build_v1_store(path)
    conn = sqlite3.connect(path, isolation_level=None)
    MigrationRunner(MIGRATIONS[:2]).migrate(conn, begin=lambda c: c.execute("BEGIN IMMEDIATE"))
    conn.close()
    assert applied_versions(path) == [1, 2]


def test_marker_migrations_neither_block_a_read_only_open_nor_take_a_backup(tmp_path: Path) -> None:
    # Migration 3 rewrites nothing (it only marks that newer rows carry XXH3 sums): a read-only
    # open of a version-2 store reads it as it is, and the read-write open that marks it takes no
    # backup (a gigabyte store would otherwise be copied for a one-row change).
    assert [m.rewrites for m in MIGRATIONS[2:]] == [False]
    path = tmp_path / "v2.db"
    _v2_store(path)
    reader = SqliteDriver(path, read_only=True)
    try:
        assert reader.schema_status().current == 2
        assert [e.key for e in reader.scan("threads", limit=2)] == ["k/0003/é", "k/0006/é"]
    finally:
        reader.close()
    assert applied_versions(path) == [1, 2]
    SqliteDriver(path).close()
    assert applied_versions(path) == [1, 2, 3]
    assert not (tmp_path / "backups").exists()


def test_a_store_lacking_a_migration_that_rewrites_still_gets_its_backup(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    build_v1_store(path)
    SqliteDriver(path).close()
    assert applied_versions(path) == [m.version for m in MIGRATIONS]
    assert [p.suffix for p in (tmp_path / "backups").iterdir() if p.suffix == ".db"] == [".db"]
