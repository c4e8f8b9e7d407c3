"""SQLite backups: online backup while the store is open, verification that finds damage, a
round trip (backup, damage, restore), the damaged store's error naming the newest verified backup
and the command to restore it, ``keep`` and an automatic backup before every migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from runtime_core import CorruptionError, StorageError, ValidationError
from runtime_persistence import Tasks
from runtime_persistence.storage.backup import (
    backup_sqlite,
    list_backups,
    newest_verified_backup,
    restore_sqlite_backup,
    sqlite_path_of,
    verify_sqlite,
)
from runtime_persistence.storage.drivers._migrations import MigrationRunner
from runtime_persistence.storage.drivers.sqlite import MIGRATIONS, SqliteDriver


def _store_with_data(path: Path) -> tuple[SqliteDriver, str]:
    driver = SqliteDriver(path)
    tasks = Tasks(driver)
    task = tasks.create("keep me", description="x" * 5000)
    tasks.log(task.id, "line")
    driver.put_blob(b"blob bytes " * 1000)
    return driver, task.id


def test_a_backup_taken_while_the_store_is_open_is_verified_and_complete(tmp_path: Path) -> None:
    store = tmp_path / "keepup.db"
    driver, task_id = _store_with_data(store)
    try:
        info = backup_sqlite(store)  # the driver still holds its connections (WAL)
    finally:
        driver.close()
    assert Path(info.path).parent == tmp_path / "backups"
    assert info.verified is not None and info.verified.ok and info.verified.blobs == 1
    assert info.verified.envelopes == info.verified.records - 2  # all but 2 index markers (child, roots)
    assert Path(info.path).stat().st_mode & 0o077 == 0
    copy = SqliteDriver(info.path, read_only=True)
    try:
        assert Tasks(copy).get(task_id).title == "keep me"
    finally:
        copy.close()
    assert newest_verified_backup(store) == Path(info.path)


def test_verify_finds_a_row_whose_bytes_changed(tmp_path: Path) -> None:
    store = tmp_path / "keepup.db"
    driver, _ = _store_with_data(store)
    driver.close()
    assert verify_sqlite(store).ok
    conn = sqlite3.connect(store)
    conn.execute("UPDATE kv SET value = CAST(value || x'00' AS BLOB) WHERE ns = 'task'")
    conn.execute("UPDATE blob_chunks SET data = x'00'")
    conn.commit()
    conn.close()
    report = verify_sqlite(store)
    assert not report.ok
    assert any(where.startswith("task/") for where in report.problems)
    assert any(where.startswith("blob ") for where in report.problems)
    with pytest.raises(CorruptionError, match="failed verification"):
        backup_sqlite(store)
    assert list_backups(store) == []


def test_backup_damage_restore_round_trip(tmp_path: Path) -> None:
    store = tmp_path / "keepup.db"
    driver, task_id = _store_with_data(store)
    driver.close()
    info = backup_sqlite(store, keep=2)
    with open(store, "r+b") as fh:  # damage the header page: SQLite no longer knows the file
        fh.write(b"\xff" * 100)
    with pytest.raises(CorruptionError) as err:
        SqliteDriver(store)
    message = str(err.value)
    assert info.path in message and f"keepup store restore-backup {info.path}" in message
    restored, aside = restore_sqlite_backup(info.path, store)
    assert aside is not None and aside.read_bytes()[:100] == b"\xff" * 100  # kept, not deleted
    back = SqliteDriver(restored)
    try:
        assert Tasks(back).get(task_id).description == "x" * 5000
    finally:
        back.close()


def test_a_damaged_store_without_a_backup_says_how_to_take_them(tmp_path: Path) -> None:
    store = tmp_path / "keepup.db"
    _store_with_data(store)[0].close()
    with open(store, "r+b") as fh:
        fh.write(b"\xff" * 100)
    with pytest.raises(CorruptionError, match="no verified backup"):
        SqliteDriver(store)


def test_restore_refuses_a_damaged_backup_and_changes_nothing(tmp_path: Path) -> None:
    store = tmp_path / "keepup.db"
    _store_with_data(store)[0].close()
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database" * 100)
    before = store.read_bytes()
    with pytest.raises(CorruptionError, match="nothing was changed"):
        restore_sqlite_backup(bad, store)
    assert store.read_bytes() == before


def test_keep_removes_the_oldest_backups(tmp_path: Path) -> None:
    store = tmp_path / "keepup.db"
    _store_with_data(store)[0].close()
    made = [backup_sqlite(store, keep=2).path for _ in range(4)]
    assert [b.path for b in list_backups(store)] == made[:1:-1]
    with pytest.raises(ValidationError):
        backup_sqlite(store, keep=0)


def test_an_old_schema_is_backed_up_before_it_is_migrated(tmp_path: Path) -> None:
    store = tmp_path / "old.db"
    conn = sqlite3.connect(store, isolation_level=None)
    MigrationRunner(MIGRATIONS[:1]).migrate(conn, begin=lambda c: c.execute("BEGIN IMMEDIATE"))
    conn.execute("INSERT INTO kv (ns, key, value, version) VALUES ('n', CAST('k' AS BLOB), x'01', 1)")
    conn.close()
    SqliteDriver(store).close()  # migrates to the newest schema
    [backup] = list_backups(store)
    old = sqlite3.connect(backup.path)
    try:
        assert [v for (v,) in old.execute("SELECT version FROM keepup_migrations")] == [1]
        assert old.execute("SELECT value FROM kv").fetchall() == [(b"\x01",)]
    finally:
        old.close()
    SqliteDriver(store).close()  # up to date: no second backup
    assert len(list_backups(store)) == 1


def test_sqlite_path_of_only_names_sqlite_files() -> None:
    assert sqlite_path_of("sqlite:////tmp/x.db") == Path("/tmp/x.db")
    assert sqlite_path_of("sqlite:////tmp/x%20y.db?read_only=1") == Path("/tmp/x y.db")
    assert sqlite_path_of("sqlite:///rel.db") == Path("rel.db").absolute()
    assert sqlite_path_of("postgresql://h/db") is None
    assert sqlite_path_of("sqlite:///:memory:") is None


def test_no_migration_happens_when_its_backup_cannot_be_written(tmp_path: Path) -> None:
    store = tmp_path / "old.db"
    conn = sqlite3.connect(store, isolation_level=None)
    MigrationRunner(MIGRATIONS[:1]).migrate(conn, begin=lambda c: c.execute("BEGIN IMMEDIATE"))
    conn.execute("INSERT INTO kv (ns, key, value, version) VALUES ('n', CAST('k' AS BLOB), x'01', 1)")
    conn.close()
    (tmp_path / "backups").write_text("a file where the backup folder would go")
    with pytest.raises(StorageError, match="nothing was migrated"):
        SqliteDriver(store)
    check = sqlite3.connect(store)
    try:
        assert [v for (v,) in check.execute("SELECT version FROM keepup_migrations")] == [1]
    finally:
        check.close()
