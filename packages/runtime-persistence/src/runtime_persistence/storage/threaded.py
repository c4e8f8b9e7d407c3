"""Any sync driver as an :class:`~runtime_core.AsyncDriver`, its calls run on worker threads.

This is how the embedded backends (SQLite, plain files, memory) serve async code: their I/O is
local file I/O, for which the operating system offers no async interface an event loop could
wait on, so each call runs in ``asyncio.to_thread`` and the loop never blocks. Guarantees,
ordering and errors are the wrapped driver's, unchanged. Scans and blob streams are fetched a page
at a time on the worker thread; a cancelled await leaves the wrapped driver as the sync call
left it (the call runs to its end on its thread)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Sequence
from itertools import islice
from typing import TypeVar

from runtime_core import BlobInfo, Delete, Driver, Entry, Put

__all__ = ["AsyncThreadDriver"]

_T = TypeVar("_T")
_PAGE = 256  # entries (or blob chunks) fetched per trip to the worker thread


class AsyncThreadDriver:
    """``driver`` (a sync :class:`~runtime_core.Driver`, thread-safe as every built-in driver
    is) behind the async driver contract. Closing this closes ``driver``."""

    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    @property
    def sync_driver(self) -> Driver:
        """The wrapped sync driver."""
        return self._driver

    @property
    def url(self) -> str:
        return self._driver.url

    @property
    def atomic_batch(self) -> bool:
        return self._driver.atomic_batch

    @property
    def max_value_size(self) -> int:
        return self._driver.max_value_size

    async def get(self, namespace: str, key: str) -> Entry | None:
        return await asyncio.to_thread(self._driver.get, namespace, key)

    async def scan(
        self,
        namespace: str,
        *,
        prefix: str = "",
        after: str | None = None,
        before: str | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> AsyncIterator[Entry]:
        def start() -> Iterator[Entry]:
            return self._driver.scan(
                namespace, prefix=prefix, after=after, before=before, reverse=reverse, limit=limit
            )

        async for entry in _paged(start):
            yield entry

    async def put(
        self,
        namespace: str,
        key: str,
        value: bytes,
        *,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> int:
        return await asyncio.to_thread(
            lambda: self._driver.put(namespace, key, value, if_absent=if_absent, if_version=if_version)
        )

    async def delete(self, namespace: str, key: str, *, if_version: int | None = None) -> bool:
        return await asyncio.to_thread(lambda: self._driver.delete(namespace, key, if_version=if_version))

    async def batch(self, ops: Sequence[Put | Delete]) -> list[int | bool]:
        return await asyncio.to_thread(self._driver.batch, list(ops))

    async def put_blob(self, data: bytes, digest: str | None = None) -> BlobInfo:
        return await asyncio.to_thread(self._driver.put_blob, data, digest)

    async def put_blob_stream(self, chunks: AsyncIterable[bytes]) -> BlobInfo:
        loop = asyncio.get_running_loop()
        source = chunks.__aiter__()

        def pull() -> Iterator[bytes]:
            # runs on the worker thread: each chunk is awaited on the loop, one at a time
            while True:
                try:
                    yield asyncio.run_coroutine_threadsafe(_next(source), loop).result()
                except StopAsyncIteration:
                    return

        return await asyncio.to_thread(self._driver.put_blob_stream, pull())

    async def get_blob(self, digest: str) -> bytes:
        return await asyncio.to_thread(self._driver.get_blob, digest)

    async def open_blob(self, digest: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        async for chunk in _paged(lambda: self._driver.open_blob(digest, chunk_size), page=4):
            yield chunk

    async def has_blob(self, digest: str) -> bool:
        return await asyncio.to_thread(self._driver.has_blob, digest)

    async def delete_blob(self, digest: str) -> bool:
        return await asyncio.to_thread(self._driver.delete_blob, digest)

    async def list_blobs(self) -> AsyncIterator[BlobInfo]:
        async for info in _paged(self._driver.list_blobs):
            yield info

    async def close(self) -> None:
        await asyncio.to_thread(self._driver.close)


async def _next(source: AsyncIterator[bytes]) -> bytes:
    return await source.__anext__()


async def _paged(start: Callable[[], Iterator[_T]], page: int = _PAGE) -> AsyncIterator[_T]:
    """The items of the sync iterator ``start()``, pulled ``page`` at a time on a worker thread
    (the iterator is created there too: a driver may run its first query when it is made)."""
    iterator: Iterator[_T] | None = None

    def more() -> list[_T]:
        nonlocal iterator
        if iterator is None:
            iterator = start()
        return list(islice(iterator, page))

    exhausted = False
    try:
        while True:
            items = await asyncio.to_thread(more)
            exhausted = len(items) < page
            for item in items:
                yield item
            if exhausted:
                return
    finally:
        # an iterator that ran out has nothing left to close: spare the worker-thread round trip
        close = None if exhausted else getattr(iterator, "close", None)
        if close is not None:
            await asyncio.to_thread(close)
