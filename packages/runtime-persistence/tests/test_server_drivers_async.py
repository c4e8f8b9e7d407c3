"""The PostgreSQL and MySQL/MariaDB async drivers are native: ``open_store_async`` returns
``AsyncPostgresDriver`` / ``AsyncMysqlDriver`` (not the sync driver on worker threads), and
concurrent operations on one driver overlap on several pooled connections.

Overlap is shown without timing: a pool only opens a second connection when an operation asks for
one while another holds the first, which never happens if operations run one after another."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from runtime_core import AsyncDriver, Entry
from runtime_persistence.storage.stores import open_store_async
from runtime_persistence.storage.threaded import AsyncThreadDriver
from runtime_persistence.testing import driver_params
from runtime_persistence.testing.backends import isolated_url

pytestmark = pytest.mark.parametrize("name", driver_params(["postgres", "mysql"]))

NATIVE = {
    "postgres": "runtime_persistence.storage.drivers._async.postgres.AsyncPostgresDriver",
    "mysql": "runtime_persistence.storage.drivers._async.mysql.AsyncMysqlDriver",
}
CONCURRENT = 16


def _connections(driver: Any) -> int:
    """How many connections the driver's pool holds now (open, in use or idle)."""
    pool = driver._pool
    if hasattr(pool, "get_stats"):  # psycopg_pool
        return int(pool.get_stats()["pool_size"])
    return len(pool._idle)  # the MySQL pool, all connections returned


async def _open(name: str, tmp_path: Path) -> Any:
    return await open_store_async(isolated_url(name, tmp_path), pool_size=4)


def test_open_store_async_returns_the_native_async_driver(name: str, tmp_path: Path) -> None:
    async def main() -> None:
        driver = await _open(name, tmp_path)
        try:
            cls = type(driver)
            assert f"{cls.__module__}.{cls.__qualname__}" == NATIVE[name]
            assert not isinstance(driver, AsyncThreadDriver)
            assert isinstance(driver, AsyncDriver)
            assert await driver.put("ns", "k", b"v") == 1
            assert await driver.get("ns", "k") == Entry("k", b"v", 1)
        finally:
            await driver.destroy()
            await driver.close()

    asyncio.run(main())


def test_concurrent_gets_overlap_on_several_pooled_connections(name: str, tmp_path: Path) -> None:
    async def main() -> None:
        driver = await _open(name, tmp_path)
        try:
            for i in range(CONCURRENT):
                await driver.put("ns", f"k{i}", str(i).encode())
            before = _connections(driver)
            assert before <= 1  # sequential calls reuse one connection
            seen = 0
            for _ in range(20):  # the PostgreSQL pool grows in the background: give it a few rounds
                got = await asyncio.gather(*(driver.get("ns", f"k{i}") for i in range(CONCURRENT)))
                assert [e.value if e else None for e in got] == [str(i).encode() for i in range(CONCURRENT)]
                seen = max(seen, _connections(driver))
                if seen > 1:
                    break
            assert seen > 1, "16 concurrent gets never needed a second connection: they did not overlap"
        finally:
            await driver.destroy()
            await driver.close()

    asyncio.run(main())
