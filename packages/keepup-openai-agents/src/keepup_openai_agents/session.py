"""The OpenAI Agents SDK session over a Keepup store.

One SDK session is one Keepup session, found by the SDK's ``session_id`` as its external key
(:meth:`runtime_persistence.AsyncSessions.get_or_create`, atomic across processes), and its
items are that session's message log (:class:`runtime_persistence.AsyncMessageLog`): each
``add_items`` call is one create-only append, so writers in any number of processes never lose
or interleave each other's items, and ``get_items(limit)`` reads only the newest chunks.

Items are kept as the JSON text the SDK's own ``SQLiteSession`` stores (``json.dumps`` of each
item), so they read back exactly as they would from it, and an item JSON cannot hold raises the
same ``TypeError``.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import msgspec
from agents.memory import SessionSettings
from agents.memory.session_settings import resolve_session_limit
from runtime_core import AsyncDriver, NotFoundError
from runtime_persistence import AsyncMessageLog, AsyncSessions, open_store_async

if TYPE_CHECKING:
    from agents.items import TResponseInputItem

__all__ = ["KeepupSession"]


class KeepupSession:
    """An SDK session (``agents.memory.Session``) whose history lives in a Keepup store.

    ``store`` is a store URL (``sqlite:///history.db``, ``postgresql://...``, ``redis://...``;
    the session opens it on first use, on the running event loop, and :meth:`close` closes it)
    or an async driver you opened with :func:`runtime_persistence.open_store_async` and close
    yourself (share one among many sessions). ``session_settings.limit`` is the default of
    ``get_items`` as in the SDK.

    Raises :class:`runtime_core.ValidationError` for a session id Keepup cannot key (empty, NUL,
    over 512 UTF-8 bytes) and ``RuntimeError`` once closed, like ``SQLiteSession``."""

    session_settings: SessionSettings | None = None

    def __init__(
        self,
        session_id: str,
        store: str | AsyncDriver = "sqlite:///keepup-agents.db",
        *,
        session_settings: SessionSettings | None = None,
    ) -> None:
        self.session_id = session_id
        self.session_settings = session_settings if session_settings is not None else SessionSettings()
        self._url = store if isinstance(store, str) else None
        self._driver: AsyncDriver | None = None if isinstance(store, str) else store
        self._owns_driver = isinstance(store, str)
        self._keepup_id: str | None = None
        self._messages: AsyncMessageLog | None = None
        self._opening = asyncio.Lock()
        self._closed = False

    # ------------------------------------------------------------------------------ the protocol
    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The history, oldest first: every item, or the newest ``limit`` (the SDK's default
        from ``session_settings`` when None; 0 gives none; a negative limit gives every item,
        as SQLite's ``LIMIT -1`` does for ``SQLiteSession``)."""
        wanted = resolve_session_limit(limit, self.session_settings)
        log_id = await self._log_id(create=False)
        if log_id is None or wanted == 0:
            return []
        raw = await (await self._log()).last(log_id, None if wanted is None or wanted < 0 else wanted)
        return [_item(text) for text in raw]

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` together, durably, before returning."""
        self._check_open()
        if not items:
            return
        encoded = [json.dumps(item) for item in items]
        log_id = await self._log_id(create=True)
        assert log_id is not None
        await (await self._log()).append(log_id, encoded)

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the newest item (None when the history is empty). Concurrent pops,
        here or in other processes, each get a different item."""
        log_id = await self._log_id(create=False)
        if log_id is None:
            return None
        text = await (await self._log()).pop(log_id)
        if text is None:
            return None
        item: TResponseInputItem = _item(text)
        return item

    async def clear_session(self) -> None:
        """Remove every item of this session."""
        log_id = await self._log_id(create=False)
        if log_id is not None:
            await (await self._log()).clear(log_id)

    # --------------------------------------------------------------------------------- lifecycle
    async def close(self) -> None:
        """Close the store if this session opened it from a URL; later calls raise RuntimeError."""
        self._closed = True
        if self._owns_driver and self._driver is not None:
            driver, self._driver = self._driver, None
            await driver.close()

    async def __aenter__(self) -> KeepupSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --------------------------------------------------------------------------------- internals
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("KeepupSession is closed")

    async def _store(self) -> AsyncDriver:
        self._check_open()
        if self._driver is None:
            async with self._opening:
                if self._driver is None:
                    assert self._url is not None
                    self._driver = await open_store_async(self._url)
        return self._driver

    async def _log(self) -> AsyncMessageLog:
        driver = await self._store()
        if self._messages is None:
            self._messages = AsyncMessageLog(driver)
        return self._messages

    async def _log_id(self, *, create: bool) -> str | None:
        """The Keepup session id behind ``session_id`` (created when ``create``; None when it
        does not exist yet and ``create`` is false)."""
        if self._keepup_id is not None:
            self._check_open()
            return self._keepup_id
        sessions = AsyncSessions(await self._store())
        if create:
            found, _ = await sessions.get_or_create(self.session_id, "openai-agents")
        else:
            try:
                found = await sessions.by_key(self.session_id)
            except NotFoundError:
                return None
        self._keepup_id = found.id
        return found.id


_JSON = msgspec.json.Decoder()


def _item(text: str) -> Any:
    """One stored item (``json.dumps`` text). msgspec decodes plain JSON to the same values about
    five times faster than ``json.loads``; what it refuses (``NaN``, which ``json.dumps`` writes,
    or numbers out of a float's range) goes to ``json.loads``, which reads all of it."""
    try:
        return _JSON.decode(text)
    except msgspec.MsgspecError:
        return json.loads(text)
