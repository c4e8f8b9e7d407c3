"""Redis driver specifics: every key lives under the store's hash-tagged prefix and destroy touches
nothing else, unfinished uploads carry an expiry that publishing removes, and a connection killed
under the driver is a StorageError without a blind retry. Each runs on the sync driver and on the
async one (``redis+async``: :class:`AsyncRedisDriver` behind the blocking proxy), and
:func:`open_store_async` is shown to give the native async driver, whose calls run at once.
Needs ``KEEPUP_TEST_REDIS_URL``."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime_core import Driver, Entry, Put, StorageError
from runtime_persistence.storage.stores import open_store, open_store_async
from runtime_persistence.storage.threaded import AsyncThreadDriver
from runtime_persistence.testing import (
    TestStore,
    blocking,
    driver_params,
    isolated_url,
    open_test_store,
    server_url,
)

redis = pytest.importorskip("redis", reason="the redis library (extra [redis]) is not installed")


@pytest.fixture(params=driver_params(["redis"], modes=("sync", "async")))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def raw() -> Iterator[Any]:
    url = server_url("redis")
    assert url is not None
    client = redis.Redis.from_url(url)
    yield client
    client.close()


@pytest.fixture
def store(name: str, tmp_path: Path) -> Iterator[TestStore]:
    with open_test_store(name, tmp_path) as opened:
        yield opened


def _open_again(store: TestStore, url: str) -> Driver:
    """Another driver on ``url`` in the store's mode (the async one behind the blocking proxy)."""
    if not store.is_async:
        return open_store(url)
    assert store.portal is not None
    return blocking(store.portal.call(open_store_async(url)), store.portal)


def _base(store: TestStore) -> bytes:
    driver: Any = store.driver
    return bytes(driver._base)


def _keys(raw: Any, pattern: bytes) -> set[bytes]:
    return set(raw.scan_iter(match=pattern, count=1000))


def test_every_key_of_a_store_is_under_its_prefix_and_destroy_removes_only_those(
    name: str, store: TestStore, raw: Any
) -> None:
    foreign = f"kt_foreign_{secrets.token_hex(4)}".encode()
    raw.set(foreign, b"not ours")
    try:
        before = _keys(raw, b"*")
        store.driver.batch([Put("a", "1", b"x"), Put("b.c", "2", b"y")])
        store.driver.put_blob(b"blob" * 1000)
        created = _keys(raw, b"*") - before
        assert created and all(k.startswith(_base(store)) for k in created)
        driver: Any = store.driver
        driver.destroy()
        assert _keys(raw, _base(store) + b"*") == set()
        assert raw.get(foreign) == b"not ours"
    finally:
        raw.delete(foreign)


def test_an_unfinished_upload_expires_and_publishing_removes_the_expiry(
    name: str, store: TestStore, raw: Any
) -> None:
    chunk_pattern = _base(store) + b"c:*"
    seen_ttls: list[int] = []

    def stream() -> Iterator[bytes]:
        yield b"a" * (1 << 20)
        yield b"b" * (1 << 20)
        yield b"c" * 10
        # the first chunks have been sent by now (the driver pipelines them in groups)
        seen_ttls.extend(raw.ttl(k) for k in _keys(raw, chunk_pattern))

    info = store.driver.put_blob_stream(stream())
    assert seen_ttls == [] or all(0 < t <= 86_400 for t in seen_ttls)
    keys = _keys(raw, chunk_pattern)
    assert len(keys) == 3
    assert all(raw.ttl(k) == -1 for k in keys)  # published: kept for good
    assert store.driver.get_blob(info.digest) == b"a" * (1 << 20) + b"b" * (1 << 20) + b"c" * 10


def test_chunks_written_before_publishing_carry_an_expiry(name: str, store: TestStore, raw: Any) -> None:
    chunk_pattern = _base(store) + b"c:*"
    ttls: list[int] = []

    def stream() -> Iterator[bytes]:
        for _ in range(9):  # more than one pipeline round of 8 MiB
            yield bytes(1 << 20)
        ttls.extend(raw.ttl(k) for k in _keys(raw, chunk_pattern))
        yield b"end"

    store.driver.put_blob_stream(stream())
    assert len(ttls) >= 8 and all(0 < t <= 86_400 for t in ttls)


def test_a_failed_upload_leaves_no_chunk_keys(name: str, store: TestStore, raw: Any) -> None:
    def broken() -> Iterator[bytes]:
        for _ in range(9):
            yield bytes(1 << 20)
        raise OSError("source failed")

    with pytest.raises(OSError):
        store.driver.put_blob_stream(broken())
    assert _keys(raw, _base(store) + b"c:*") == set()
    assert list(store.driver.list_blobs()) == []


def test_a_killed_idle_connection_is_replaced_before_the_next_command(
    name: str, store: TestStore, raw: Any
) -> None:
    assert store.url is not None
    label = f"kt_{secrets.token_hex(4)}"
    driver = _open_again(store, store.url + f"&client_name={label}")
    try:
        driver.put("ns", "k", b"v")
        ids = [c["id"] for c in raw.client_list() if c.get("name") == label]
        assert ids
        for client_id in ids:
            raw.client_kill_filter(_id=client_id)
        assert driver.put("ns", "k", b"w", if_version=1) == 2  # nothing was sent on the dead socket
    finally:
        driver.close()


def test_a_write_whose_reply_is_lost_is_a_storage_error_and_never_applied_twice(
    name: str, store: TestStore, raw: Any
) -> None:
    assert store.url is not None
    driver = _open_again(store, store.url + "&socket_timeout=0.2")
    try:
        driver.put("ns", "k", b"v")
        raw.client_pause(600, all=False)  # writes wait; our reply cannot come within 0.2 s
        try:
            with pytest.raises(StorageError) as caught:
                driver.put("ns", "k", b"w")
        finally:
            raw.client_unpause()
        assert "Redis put failed" in str(caught.value) and "may or may not" in str(caught.value)
        # the write was sent: it ran once when the pause ended, or not at all; never twice
        assert driver.get("ns", "k") in (Entry("k", b"v", 1), Entry("k", b"w", 2))
    finally:
        driver.close()


def test_open_store_async_gives_the_native_driver_whose_calls_run_at_once(tmp_path: Path, raw: Any) -> None:
    """Not the worker-thread wrapper: eight writes issued together are all held by the server at
    the same moment (writes paused), each on its own pooled connection, and all complete once
    the pause ends. A driver that ran one call at a time would never have eight in flight."""
    from runtime_persistence.storage.drivers.redis import AsyncRedisDriver

    label = f"kt_{secrets.token_hex(4)}"
    url = isolated_url("redis", tmp_path) + f"&client_name={label}"
    writers = 8

    def held() -> int:
        return sum(1 for c in raw.client_list() if c.get("name") == label and "b" in c.get("flags", ""))

    async def scenario() -> None:
        driver = await open_store_async(url)
        try:
            assert type(driver) is AsyncRedisDriver and not isinstance(driver, AsyncThreadDriver)
            await driver.put("ns", "warm", b"up")
            raw.client_pause(20_000, all=False)  # writes wait; reads and CLIENT LIST go on
            tasks = [asyncio.create_task(driver.put("ns", f"k{i}", b"v")) for i in range(writers)]
            try:
                for _ in range(2000):  # a bounded wait, not a timing assertion
                    if await asyncio.to_thread(held) >= writers:
                        break
                    await asyncio.sleep(0.005)
                assert await asyncio.to_thread(held) == writers, "the writes were never in flight together"
                assert not any(t.done() for t in tasks)
            finally:
                raw.client_unpause()
                outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            assert outcomes == [1] * writers
            assert [e.key async for e in driver.scan("ns", prefix="k")] == [f"k{i}" for i in range(writers)]
        finally:
            native: Any = driver
            await native.destroy()
            await driver.close()

    asyncio.run(scenario())
