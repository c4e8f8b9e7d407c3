"""The store both services share: a URL opened on first use, or a driver the caller owns."""

from __future__ import annotations

import asyncio

from runtime_core import AsyncDriver
from runtime_persistence import open_store_async


class StoreHandle:
    """An async driver given directly (the caller closes it) or opened from ``store`` (a URL) on
    the first call, on the running event loop, and closed by :meth:`close`."""

    def __init__(self, store: str | AsyncDriver) -> None:
        self._url = store if isinstance(store, str) else None
        self._driver: AsyncDriver | None = None if isinstance(store, str) else store
        self._lock = asyncio.Lock()

    async def driver(self) -> AsyncDriver:
        if self._driver is None:
            async with self._lock:
                if self._driver is None:
                    assert self._url is not None
                    self._driver = await open_store_async(self._url)
        return self._driver

    async def close(self) -> None:
        if self._url is not None and self._driver is not None:
            driver, self._driver = self._driver, None
            await driver.close()
