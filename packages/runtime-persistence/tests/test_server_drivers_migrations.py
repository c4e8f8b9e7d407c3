"""Schema migrations of the SQL server drivers (PostgreSQL, MySQL/MariaDB): a store built with the
oldest schema and filled with data is migrated when the current code opens it, and every record
reads back; reopening applies nothing twice; a store newer than the code, or one that needs a
migration but is opened read-only, is refused with a clear error."""

from __future__ import annotations

import hashlib
import importlib.util
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from runtime_core import Entry, StorageError
from runtime_persistence.storage.backup import verify_backup
from runtime_persistence.storage.stores import open_store, open_store_async
from runtime_persistence.testing import Portal, blocking, driver_params, server_url
from runtime_persistence.testing.backends import split_mode

SQL_SERVERS = ("postgres", "mysql")


def _records() -> dict[tuple[str, str], tuple[bytes, int]]:
    records: dict[tuple[str, str], tuple[bytes, int]] = {}
    for i in range(200):
        ns = ("threads", "checkpoints", "artifacts")[i % 3]
        key = f"k/{i:04d}/é" if i % 7 else f"\U0001f600/{i}"
        records[(ns, key)] = (hashlib.sha256(str(i).encode()).digest() * (i % 5), 1 + i % 4)
    return records


@contextmanager
def _raw(name: str) -> Iterator[tuple[Any, Any, Callable[[str], dict[str, str]]]]:
    """A raw DB-API connection to the test server, the driver module, and its table-name function."""
    name = split_mode(name)[0]
    url = server_url(name)
    assert url is not None
    if name == "postgres":
        import psycopg
        from runtime_persistence.storage.drivers import postgres as module

        conn: Any = psycopg.connect(url)
        names: Callable[[str], dict[str, str]] = module.table_names
    else:
        from urllib.parse import urlsplit

        import pymysql
        from runtime_persistence.storage.drivers import mysql as module

        parts = urlsplit(url)
        conn = pymysql.connect(
            host=parts.hostname,
            port=parts.port or 3306,
            user=parts.username or "root",
            password=parts.password or "",
            database=parts.path.lstrip("/"),
        )
        names = module.table_names
    try:
        yield conn, module, names
    finally:
        conn.close()


@pytest.fixture(params=driver_params(list(SQL_SERVERS), modes=("sync", "async")))
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, str]]:
    """(backend name, store URL with a fresh prefix, the prefix); the store's tables are dropped
    afterwards."""
    name: str = request.param
    backend = split_mode(name)[0]
    if importlib.util.find_spec("psycopg" if backend == "postgres" else "pymysql") is None:
        pytest.skip(f"the driver library for {backend} is not installed")
    prefix = f"ktm{secrets.token_hex(4)}_"
    base = server_url(backend)
    assert base is not None
    url = base + ("&" if "?" in base else "?") + f"prefix={prefix}"
    yield name, url, prefix
    with _raw(name) as (conn, _, table_names):
        with conn.cursor() as cur:
            for table in ("chunks", "blobs", "kv", "migrations"):
                cur.execute(f"DROP TABLE IF EXISTS {table_names(prefix)[table]}")
        conn.commit()


@pytest.fixture
def open_(server: tuple[str, str, str]) -> Iterator[Callable[..., Any]]:
    """``open_store`` in sync mode; in async mode, ``open_store_async`` (the native async driver)
    behind a blocking proxy on one event loop for the test."""
    if split_mode(server[0])[1] == "sync":
        yield open_store
        return
    portal = Portal()
    try:
        yield lambda url, **options: blocking(portal.call(open_store_async(url, **options)), portal)
    finally:
        portal.close()


def _build_oldest(name: str, prefix: str, records: dict[tuple[str, str], tuple[bytes, int]]) -> None:
    """Migration 1 only (the oldest schema), filled the way the first code wrote rows."""
    from runtime_persistence.storage.drivers._migrations import MigrationRunner

    with _raw(name) as (conn, module, table_names):
        names = table_names(prefix)
        MigrationRunner(module.migrations(prefix)[:1], table=names["migrations"], placeholder="%s").migrate(
            conn
        )
        with conn.cursor() as cur:
            for (ns, key), (value, version) in records.items():
                cur.execute(
                    f"INSERT INTO {names['kv']} (ns, k, v, ver) VALUES (%s, %s, %s, %s)",
                    (ns, key.encode(), value, version),
                )
        conn.commit()


def _applied(name: str, prefix: str) -> list[int]:
    with _raw(name) as (conn, _, table_names):
        with conn.cursor() as cur:
            cur.execute(f"SELECT version FROM {table_names(prefix)['migrations']} ORDER BY version")
            rows = cur.fetchall()
        conn.commit()
    return [int(r[0]) for r in rows]


def test_the_oldest_schema_with_data_is_migrated_and_every_record_reads_back(
    server: tuple[str, str, str], open_: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KEEPUP_HOME", str(tmp_path))  # where the backup before the migration goes
    name, url, prefix = server
    records = _records()
    _build_oldest(name, prefix, records)
    assert _applied(name, prefix) == [1]
    driver: Any = open_(url)
    try:
        status = driver.schema_status()
        assert status.up_to_date and status.current == status.latest >= 2
        for (ns, key), (value, version) in records.items():
            assert driver.get(ns, key) == Entry(key, value, version)
        for ns in ("threads", "checkpoints", "artifacts"):
            expected = sorted((k for (n, k) in records if n == ns), key=lambda k: k.encode())
            assert [e.key for e in driver.scan(ns)] == expected
        # what the newer migrations brought works on the migrated store
        info = driver.put_blob(b"after migration" * 1000)
        assert driver.get_blob(info.digest) == b"after migration" * 1000
        key = next(iter(records))
        assert driver.put(key[0], key[1], b"new", if_version=records[key][1]) == records[key][1] + 1
    finally:
        driver.close()
    assert _applied(name, prefix) == list(range(1, status.latest + 1))
    # the store was backed up first, at the oldest schema (no blob tables yet)
    [backup] = (tmp_path / "backups").glob("*.kbak")
    report = verify_backup(backup)
    assert report.ok and (report.records, report.blobs) == (len(records), 0)


def test_reopening_an_up_to_date_store_applies_nothing(
    server: tuple[str, str, str], open_: Callable[..., Any]
) -> None:
    name, url, prefix = server
    open_(url).close()
    first = _applied(name, prefix)
    second: Any = open_(url)
    try:
        assert second.schema_status().pending == ()
    finally:
        second.close()
    assert _applied(name, prefix) == first


def test_a_store_newer_than_the_code_is_refused(
    server: tuple[str, str, str], open_: Callable[..., Any]
) -> None:
    name, url, prefix = server
    open_(url).close()
    with _raw(name) as (conn, _, table_names):
        with conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO {table_names(prefix)['migrations']} (version, name, applied_at) "
                "VALUES (%s, %s, %s)",
                (99, "from the future", "2030-01-01T00:00:00+00:00"),
            )
        conn.commit()
    with pytest.raises(StorageError, match="newer than this Keepup"):
        open_(url)


def test_read_only_refuses_a_store_that_needs_migrating_and_creates_nothing(
    server: tuple[str, str, str], open_: Callable[..., Any]
) -> None:
    name, url, prefix = server
    _build_oldest(name, prefix, {("ns", "k"): (b"v", 1)})
    with pytest.raises(StorageError, match="read-only"):
        open_(url + "&read_only=1")
    assert _applied(name, prefix) == [1]


def test_read_only_reads_an_up_to_date_store_and_refuses_writes(
    server: tuple[str, str, str], open_: Callable[..., Any]
) -> None:
    url = server[1]
    writer = open_(url)
    try:
        writer.put("ns", "k", b"v")
    finally:
        writer.close()
    reader = open_(url + "&read_only=1")
    try:
        assert reader.get("ns", "k") == Entry("k", b"v", 1)
        with pytest.raises(StorageError):
            reader.put("ns", "k", b"w")
        assert reader.get("ns", "k") == Entry("k", b"v", 1)
    finally:
        reader.close()
