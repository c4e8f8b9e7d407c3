"""A PostgreSQL or MySQL store that holds data is backed up before it is migrated (issue #14): a
store written at schema version 2 (before the message-search table) and opened by the current
code leaves a verified ``.kbak`` in ``<Keepup home>/backups`` that restores to the same data; a
store already up to date takes none; when the backup cannot be written nothing is migrated and
the open fails with a StorageError saying why; of concurrent openers only the one that migrates
(under the migration lock) takes a backup."""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from runtime_core import StorageError
from runtime_persistence.storage.backup import restore_store, verify_backup
from runtime_persistence.storage.drivers import _mysql_sql as my
from runtime_persistence.storage.drivers import _postgres_sql as pg
from runtime_persistence.storage.stores import open_store, open_store_async
from runtime_persistence.testing import Portal, blocking

KINDS: dict[str, tuple[str, ModuleType]] = {
    "postgres": ("KEEPUP_TEST_POSTGRES_URL", pg),
    "mysql": ("KEEPUP_TEST_MYSQL_URL", my),
}
RECORDS = {
    (ns, f"k{i:03d}/é"): f"value {i} in {ns}".encode() * (1 + i % 3) for ns in ("a", "b") for i in range(40)
}
BLOB = bytes(range(256)) * 900  # several chunks


def _url(kind: str) -> str:
    server = os.environ.get(KINDS[kind][0])
    if not server:
        pytest.skip(f"{KINDS[kind][0]} is not set")
    return f"{server}{'&' if '?' in server else '?'}prefix=t{uuid.uuid4().hex[:10]}_"


def _old_store(monkeypatch: pytest.MonkeyPatch, kind: str) -> tuple[str, str]:
    """A store written by the code of schema version 2, with records and a blob: (URL, digest)."""
    url = _url(kind)
    with monkeypatch.context() as old_code:
        old_code.setattr(KINDS[kind][1], "_MIGRATION_STEPS", KINDS[kind][1]._MIGRATION_STEPS[:2])
        old: Any = open_store(url)
        try:
            assert old.schema_status().current == 2
            for (ns, key), value in RECORDS.items():
                old.put(ns, key, value)
            digest = old.put_blob(BLOB).digest
        finally:
            old.close()
    return url, digest


def _version(monkeypatch: pytest.MonkeyPatch, kind: str, url: str) -> int:
    """The store's schema version, read by the old code (which migrates nothing past 2)."""
    with monkeypatch.context() as old_code:
        old_code.setattr(KINDS[kind][1], "_MIGRATION_STEPS", KINDS[kind][1]._MIGRATION_STEPS[:2])
        old: Any = open_store(url)
        try:
            return int(old.schema_status().current)
        finally:
            old.close()


def _destroy(url: str) -> None:
    driver: Any = open_store(url)
    driver.destroy()
    driver.close()


def _backups(home: Path) -> list[Path]:
    return sorted((home / "backups").glob("*.kbak"))


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_an_old_store_with_data_is_backed_up_before_it_is_migrated(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str, mode: str
) -> None:
    monkeypatch.setenv("KEEPUP_HOME", str(tmp_path))
    url, digest = _old_store(monkeypatch, kind)
    restored_url = _url(kind)
    try:
        if mode == "sync":
            driver: Any = open_store(url)
        else:
            portal = Portal()
            driver = blocking(portal.call(open_store_async(url)), portal)
        try:
            status = driver.schema_status()
            assert status.up_to_date and status.current == 3
        finally:
            driver.close()
            if mode == "async":
                portal.close()
        [backup] = _backups(tmp_path)
        report = verify_backup(backup)
        assert report.ok and (report.records, report.blobs) == (len(RECORDS), 1)
        assert Path(f"{backup}.verified").is_file()
        target: Any = open_store(restored_url)
        try:
            restore_store(backup, target)
            for ns in ("a", "b"):
                expected = sorted(
                    ((k, v) for (n, k), v in RECORDS.items() if n == ns), key=lambda kv: kv[0].encode()
                )
                assert [(e.key, e.value) for e in target.scan(ns)] == expected
            assert target.get_blob(digest) == BLOB
        finally:
            target.close()
    finally:
        _destroy(url)
        _destroy(restored_url)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_new_or_up_to_date_store_takes_no_backup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str
) -> None:
    monkeypatch.setenv("KEEPUP_HOME", str(tmp_path))
    url = _url(kind)
    try:
        driver: Any = open_store(url)  # created at the latest version: nothing to keep
        driver.put("a", "k", b"v")
        driver.close()
        driver = open_store(url)  # up to date: nothing to migrate
        assert driver.get("a", "k") is not None
        driver.close()
        assert _backups(tmp_path) == []
    finally:
        _destroy(url)


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_unwritable_backup_folder_stops_the_migration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str
) -> None:
    monkeypatch.setenv("KEEPUP_HOME", str(tmp_path))
    (tmp_path / "backups").write_text("a file where the folder should be")  # root ignores modes
    url, _ = _old_store(monkeypatch, kind)
    try:
        with pytest.raises(
            StorageError, match=r"backup taken before it could not be written.*nothing was migrated"
        ):
            open_store(url)
        assert _version(monkeypatch, kind, url) == 2
        (tmp_path / "backups").unlink()
        driver: Any = open_store(url)  # the folder fixed: backed up, then migrated
        assert driver.schema_status().current == 3
        driver.close()
        assert len(_backups(tmp_path)) == 1
    finally:
        _destroy(url)


@pytest.mark.parametrize("kind", list(KINDS))
def test_of_concurrent_openers_only_the_one_that_migrates_takes_a_backup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str
) -> None:
    monkeypatch.setenv("KEEPUP_HOME", str(tmp_path))
    url, _ = _old_store(monkeypatch, kind)
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            start.wait()
            open_store(url).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert len(_backups(tmp_path)) == 1
    finally:
        _destroy(url)
