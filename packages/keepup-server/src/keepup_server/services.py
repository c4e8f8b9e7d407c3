"""The store as the server uses it: Keepup's async repositories over one async driver, opened
when the server starts and closed when it stops.

Handlers await these (:class:`keepup.AsyncCheckpoints`, :class:`keepup.AsyncLeases`, ...) so
a slow store never blocks the event loop; SQLite, files and git run on worker threads inside
the library. The one operation that exists only in sync code today (cancelling a run whose
runner died, which writes its last checkpoint through the runner's logic) runs the facade's
:class:`keepup.Runtime` on a worker thread."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from keepup import (
    STORE_URL_ENV,
    AsyncArtifacts,
    AsyncCheckpoints,
    AsyncDriver,
    AsyncEvents,
    AsyncLeases,
    AsyncMessageStore,
    AsyncRunRecords,
    AsyncSessions,
    AsyncShadowGit,
    AsyncTasks,
    Driver,
    EnvelopeSerializer,
    Run,
    Runtime,
    Serializer,
    default_store_url,
    keepup_home,
    open_runtime,
    open_store_async,
    resolved_keyring,
)

__all__ = ["Services", "resolve_store_url"]


def resolve_store_url(store: str | None, home: Path) -> str:
    """``store``, else ``$KEEPUP_STORE_URL``, else the SQLite store in the Keepup home: what
    ``keepup`` opens with the same arguments."""
    return store or os.environ.get(STORE_URL_ENV) or default_store_url(home)


class Services:
    """Every repository the routes use, over one async driver (shared by all requests)."""

    def __init__(
        self, driver: AsyncDriver, *, home: Path, url: str, serializer: Serializer | None = None
    ) -> None:
        self.driver = driver
        self.home = home
        self.url = url
        # with a keyring (an encrypted store) every repository reads and writes through it
        self.serializer: Serializer = serializer if serializer is not None else EnvelopeSerializer()
        ser = self.serializer
        self.leases = AsyncLeases(driver, serializer=ser)
        self.checkpoints = AsyncCheckpoints(driver, leases=self.leases, serializer=ser)
        self.runs = AsyncRunRecords(driver, serializer=ser)
        self.artifacts = AsyncArtifacts(driver, serializer=ser)
        self.sessions = AsyncSessions(driver, serializer=ser)
        self.tasks = AsyncTasks(driver, serializer=ser)
        self.events = AsyncEvents(driver, serializer=ser)
        self._messages: AsyncMessageStore | None = None
        self._snapshots: dict[str, AsyncShadowGit] = {}
        self._snapshot_lock = asyncio.Lock()
        self._sync: Runtime | None = None

    @classmethod
    async def open(cls, store: str | None = None, home: str | os.PathLike[str] | None = None) -> Services:
        """Open the store named by ``store`` (a URL; default as for ``keepup``), creating the
        Keepup home (0700) when the default store lives there. Raises ValidationError for a
        malformed URL and DriverUnavailableError when the store cannot be reached."""
        root = keepup_home(home)
        url = resolve_store_url(store, root)
        if url == default_store_url(root):
            await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True, mode=0o700)
        ring = await asyncio.to_thread(resolved_keyring, None, root)  # $KEEPUP_KEYRING or the home's
        driver = await open_store_async(url)
        return cls(
            driver, home=root, url=url, serializer=None if ring is None else EnvelopeSerializer(keyring=ring)
        )

    async def snapshots(self, workspace: str) -> AsyncShadowGit:
        """The shadow-git snapshots of ``workspace`` (kept under ``<home>/shadow``; one object
        per path). Raises ValidationError when the folder is gone, UnsafeWorkspaceError for a
        protected one, DriverUnavailableError without git."""
        async with self._snapshot_lock:
            found = self._snapshots.get(workspace)
            if found is None:
                found = await AsyncShadowGit.open(workspace, state_dir=self.home)
                self._snapshots[workspace] = found
            return found

    async def cancel_run(self, run_id: str) -> Run:
        """Ask a run to stop, as ``keepup run cancel`` does: a run with a live runner stops at its
        next step; one whose runner died is cancelled at once with a last checkpoint; a finished
        run is returned as it is. NotFoundError for an unknown run."""
        run = await self.runs.request_cancel(run_id)
        if run.status.finished or await self.leases.current(run.thread_id) is not None:
            return run
        runtime = await self._sync_runtime()
        return await asyncio.to_thread(lambda: runtime.runner().cancel(run_id))

    async def _sync_runtime(self) -> Runtime:
        if self._sync is None:
            wrapped = getattr(self.driver, "sync_driver", None)  # SQLite, files, memory: one store
            if isinstance(wrapped, Driver):
                self._sync = Runtime(wrapped, home=self.home, owns_driver=False, serializer=self.serializer)
            else:
                self._sync = await asyncio.to_thread(open_runtime, self.url, self.home)  # the same keyring
        return self._sync

    @property
    def messages(self) -> AsyncMessageStore:
        """What ``keepup recorder`` records (opened on first use: on SQLite it opens the FTS5
        index beside the store)."""
        if self._messages is None:
            self._messages = AsyncMessageStore(self.driver, serializer=self.serializer)
        return self._messages

    async def close(self) -> None:
        """Close the store (and the sync runtime and the message index, if they were needed)."""
        messages, self._messages = self._messages, None
        if messages is not None:
            await messages.close()
        sync, self._sync = self._sync, None
        if sync is not None:
            await asyncio.to_thread(sync.close)
        await self.driver.close()

    def describe(self) -> dict[str, Any]:
        """Where the store and home are, for ``/healthz`` and the startup line (no secrets)."""
        from keepup import redact_url

        return {"store": redact_url(self.url), "home": str(self.home)}
