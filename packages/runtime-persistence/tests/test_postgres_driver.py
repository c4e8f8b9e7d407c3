"""PostgreSQL driver specifics: the ``schema=`` option, durability per session, a connection killed
under the driver, and blob uploads that never finish. Needs ``KEEPUP_TEST_POSTGRES_URL``."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime_core import Durability, Entry, StorageError
from runtime_persistence.storage.stores import open_store
from runtime_persistence.testing import (
    TestStore,
    driver_params,
    open_driver_at,
    open_test_store,
    server_url,
    unwrap,
)

pytestmark = pytest.mark.parametrize("name", driver_params(["postgres"], modes=("sync", "async")))
psycopg = pytest.importorskip("psycopg", reason="the psycopg library (extra [postgres]) is not installed")


def _raw() -> Any:
    url = server_url("postgres")
    assert url is not None
    return psycopg.connect(url, autocommit=True)


def _with(url: str, **params: str) -> str:
    return url + ("&" if "?" in url else "?") + "&".join(f"{k}={v}" for k, v in params.items())


@pytest.fixture
def store(name: str, tmp_path: Path) -> Iterator[TestStore]:
    with open_test_store(name, tmp_path) as opened:
        yield opened


def test_the_schema_option_puts_every_table_in_that_schema(name: str, tmp_path: Path) -> None:
    schema = f"kts_{secrets.token_hex(4)}"
    url = server_url("postgres")
    assert url is not None
    with open_driver_at(name, _with(url, schema=schema, prefix="p_")) as driver:
        driver.put("ns", "k", b"v")
        driver.put_blob(b"blob")
        with _raw() as conn:
            tables = {
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
                )
            }
        assert tables == {
            "p_keepup_kv",
            "p_keepup_blobs",
            "p_keepup_blob_chunks",
            "p_keepup_migrations",
            "p_keepup_message_search",
        }
        outside: Any = open_store(_with(url, prefix="p_"))
        try:
            assert outside.get("ns", "k") is None  # same prefix, default schema: another store
        finally:
            outside.destroy()
            outside.close()
        driver.destroy()
    with _raw() as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_a_bad_schema_name_is_refused(name: str) -> None:
    from runtime_core import ValidationError

    url = server_url("postgres")
    assert url is not None
    with pytest.raises(ValidationError), open_driver_at(name, _with(url, schema='x"; drop table y; --')):
        pass


@pytest.mark.parametrize(
    ("durability", "expected"), [(Durability.DURABLE, "on"), (Durability.RELAXED, "off")]
)
def test_durability_sets_synchronous_commit_on_every_session(
    name: str, tmp_path: Path, durability: Durability, expected: str
) -> None:
    with open_test_store(name, tmp_path, durability=durability) as store:
        driver: Any = unwrap(store.driver)
        if store.portal is not None:

            async def setting() -> str:
                async with driver._op("check") as conn:
                    return str((await (await conn.execute("SHOW synchronous_commit")).fetchone())[0])

            assert store.portal.call(setting()) == expected
        else:
            with driver._op("check") as conn:
                assert conn.execute("SHOW synchronous_commit").fetchone()[0] == expected


def test_a_connection_killed_under_the_driver_is_a_storage_error_and_the_next_call_recovers(
    name: str, store: TestStore
) -> None:
    assert store.url is not None
    label = f"kt_{secrets.token_hex(4)}"
    with open_driver_at(name, _with(store.url, application_name=label)) as driver:
        driver.put("ns", "k", b"v")
        with _raw() as conn:
            killed = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                (label,),
            ).fetchone()[0]
        assert killed >= 1
        with pytest.raises(StorageError) as caught:
            driver.get("ns", "k")
        assert "PostgreSQL get failed" in str(caught.value)
        assert driver.get("ns", "k") == Entry("k", b"v", 1)


def test_a_failed_blob_upload_leaves_no_chunk_rows(name: str, store: TestStore) -> None:
    def broken() -> Iterator[bytes]:
        yield b"y" * (2 << 20)
        raise OSError("source failed")

    with pytest.raises(OSError):
        store.driver.put_blob_stream(broken())
    driver: Any = store.driver
    with _raw() as conn:
        rows = conn.execute(f"SELECT count(*) FROM {driver._names()['chunks'].as_string(None)}").fetchone()[0]
    assert rows == 0


def test_deleting_a_blob_removes_its_chunk_rows(name: str, store: TestStore) -> None:
    info = store.driver.put_blob_stream(iter([b"z" * (3 << 20)]))
    driver: Any = store.driver
    table = driver._names()["chunks"].as_string(None)
    with _raw() as conn:
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 3
        assert store.driver.delete_blob(info.digest)
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
