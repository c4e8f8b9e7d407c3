"""MySQL/MariaDB driver specifics: the value limit follows the server's ``max_allowed_packet``, a
connection killed under the driver, and blob uploads that never finish. Needs
``KEEPUP_TEST_MYSQL_URL``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from runtime_core import Entry, StorageError, ValidationError
from runtime_persistence.testing import (
    TestStore,
    driver_params,
    open_driver_at,
    open_test_store,
    server_url,
    unwrap,
)

pytestmark = pytest.mark.parametrize("name", driver_params(["mysql"], modes=("sync", "async")))
pymysql = pytest.importorskip("pymysql", reason="the pymysql library (extra [mysql]) is not installed")


def _raw() -> Any:
    url = server_url("mysql")
    assert url is not None
    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        database=parts.path.lstrip("/"),
        autocommit=True,
    )


@pytest.fixture
def store(name: str, tmp_path: Path) -> Iterator[TestStore]:
    with open_test_store(name, tmp_path) as opened:
        yield opened


def _scalar(sql: str, *args: Any) -> Any:
    conn = _raw()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_the_value_limit_follows_max_allowed_packet(name: str, store: TestStore) -> None:
    packet = int(_scalar("SELECT @@max_allowed_packet"))
    assert store.driver.max_value_size == min(64 << 20, (packet - (64 << 10)) // 2)


def test_a_lower_value_limit_can_be_asked_for(name: str, store: TestStore) -> None:
    assert store.url is not None
    with open_driver_at(name, store.url + "&max_value_size=1048576") as driver:
        assert driver.max_value_size == 1 << 20
        driver.put("ns", "k", bytes(1 << 20))
        with pytest.raises(ValidationError):
            driver.put("ns", "k", bytes((1 << 20) + 1))


def test_a_connection_killed_under_the_driver_is_a_storage_error_and_the_next_call_recovers(
    name: str, store: TestStore
) -> None:
    driver: Any = store.driver
    driver.put("ns", "k", b"v")
    pool = unwrap(driver)._pool
    if store.portal is not None:

        async def idle_thread() -> int:
            async with pool.connection() as conn:  # the idle connection the next call will reuse
                return int(conn.thread_id())

        thread_id = store.portal.call(idle_thread())
    else:
        with pool.connection() as conn:  # the idle connection the next call will reuse
            thread_id = conn.thread_id()
    conn = _raw()
    try:
        with conn.cursor() as cur:
            cur.execute(f"KILL {int(thread_id)}")
    finally:
        conn.close()
    with pytest.raises(StorageError) as caught:
        driver.get("ns", "k")
    assert "MySQL get failed" in str(caught.value)
    assert driver.get("ns", "k") == Entry("k", b"v", 1)


def test_a_failed_blob_upload_leaves_no_chunk_rows(name: str, store: TestStore) -> None:
    def broken() -> Iterator[bytes]:
        yield b"y" * (2 << 20)
        raise OSError("source failed")

    with pytest.raises(OSError):
        store.driver.put_blob_stream(broken())
    driver: Any = store.driver
    assert _scalar(f"SELECT COUNT(*) FROM {driver._names['chunks']}") == 0


def test_deleting_a_blob_removes_its_chunk_rows(name: str, store: TestStore) -> None:
    info = store.driver.put_blob_stream(iter([b"z" * (3 << 20)]))
    driver: Any = store.driver
    assert _scalar(f"SELECT COUNT(*) FROM {driver._names['chunks']}") >= 3
    assert store.driver.delete_blob(info.digest)
    assert _scalar(f"SELECT COUNT(*) FROM {driver._names['chunks']}") == 0


def test_keys_that_a_case_insensitive_collation_would_merge_stay_distinct(
    name: str, store: TestStore
) -> None:
    for key in ("ß", "ss", "SS", "é", "e\u0301", "E"):
        store.driver.put("ns", key, key.encode(), if_absent=True)
    assert [e.key for e in store.driver.scan("ns")] == sorted(
        ["ß", "ss", "SS", "é", "e\u0301", "E"], key=lambda k: k.encode()
    )
