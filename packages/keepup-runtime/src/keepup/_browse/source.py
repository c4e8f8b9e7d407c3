"""What the browser reads and writes, over the async repositories of one store.

:class:`StoreSource` is the only place the screens touch the store: threads and their forks,
checkpoints, state and workspace diffs, recorded events, and the two writes the browser offers,
restore and fork. Restore refuses exactly as ``keepup checkpoint restore`` does: a live lease on
the thread raises :class:`runtime_core.RuntimeBusyError` naming the holder, checked before any
file is touched."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from runtime_core import (
    AsyncDriver,
    Checkpoint,
    DiffEntry,
    Event,
    FileChange,
    KeepupError,
    Lease,
    RestoreReport,
    Serializer,
    Thread,
    ValidationError,
)
from runtime_persistence import (
    AsyncCheckpoints,
    AsyncEvents,
    AsyncLeases,
    AsyncMessageStore,
    AsyncShadowGit,
    AsyncWorkspaceCheckpoints,
)
from runtime_persistence.storage.stores import open_store_async

from keepup._browse.search import SearchHit, newest_events, search_messages, search_recorded

__all__ = ["MAX_EVENTS", "MAX_THREADS", "Comparison", "StoreSource", "unique_prefixes"]

MAX_THREADS = 2000
"""At most this many threads are listed (newest first); the rest are reachable by search."""

MAX_EVENTS = 5000
"""The events view shows at most this many recorded events (the newest)."""


@dataclass(frozen=True, slots=True)
class Comparison:
    """What changed from checkpoint ``a`` to checkpoint ``b``.

    ``files`` is None when the files were not compared, and ``files_note`` then says why (no
    snapshots, snapshots of two different workspaces, or the workspace is gone)."""

    a: Checkpoint
    b: Checkpoint
    state: list[DiffEntry]
    files: list[FileChange] | None
    files_note: str = ""


class StoreSource:
    """The browser's view of one store. Open it with :meth:`open` (a URL) or wrap an open async
    driver (which then stays the caller's to close); use it as an async context manager.

    ``home`` is the Keepup home whose ``shadow/`` folder holds the workspace snapshots (the
    same one ``keepup`` uses)."""

    def __init__(
        self,
        driver: AsyncDriver,
        *,
        home: Path,
        owns_driver: bool = False,
        serializer: Serializer | None = None,
    ) -> None:
        self.driver = driver
        self.home = home
        self.serializer = serializer
        # with a keyring (an encrypted store) every repository reads and writes through it
        self.leases = AsyncLeases(driver, serializer=serializer)
        self.checkpoints = AsyncCheckpoints(driver, leases=self.leases, serializer=serializer)
        self.events = AsyncEvents(driver, serializer=serializer)
        self._owns_driver = owns_driver
        self._snapshots: dict[str, AsyncShadowGit] = {}

    @classmethod
    async def open(cls, url: str, *, home: Path, serializer: Serializer | None = None) -> StoreSource:
        """Open the store at ``url`` (any store URL) for browsing; closed with the source.
        ``serializer``: the one with the keyring of an encrypted store."""
        return cls(await open_store_async(url), home=home, owns_driver=True, serializer=serializer)

    @property
    def url(self) -> str:
        return self.driver.url

    async def close(self) -> None:
        if self._owns_driver:
            self._owns_driver = False
            await self.driver.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- reading

    async def threads(self, limit: int = MAX_THREADS) -> list[Thread]:
        """Threads, newest first, at most ``limit``."""
        out: list[Thread] = []
        before: str | None = None
        while len(out) < limit:
            want = min(500, limit - len(out))
            page = await self.checkpoints.list_threads(limit=want, before=before)
            out.extend(page)
            if len(page) < want:
                break
            before = page[-1].id
        return out

    async def thread(self, thread_id: str) -> Thread:
        return await self.checkpoints.get_thread(thread_id)

    async def checkpoints_of(self, thread_id: str, limit: int = 500) -> list[Checkpoint]:
        """A thread's checkpoints, newest first, at most ``limit``."""
        return await self.checkpoints.list(thread_id, limit=limit)

    async def checkpoint(self, checkpoint_id: str) -> Checkpoint:
        return await self.checkpoints.get(checkpoint_id)

    async def forks_of(
        self, thread_id: str, threads: Sequence[Thread] | None = None
    ) -> dict[str, list[Thread]]:
        """The threads forked from checkpoints of ``thread_id``, by the checkpoint they start
        from (oldest fork first)."""
        found: dict[str, list[Thread]] = {}
        for t in reversed(threads if threads is not None else await self.threads()):
            if t.parent_thread_id == thread_id and t.forked_from is not None:
                found.setdefault(t.forked_from, []).append(t)
        return found

    async def lease(self, thread_id: str) -> Lease | None:
        """The live lease on the thread (a run holds it), or None."""
        return await self.leases.current(thread_id)

    async def compare(self, a: str, b: str, *, patch: bool = True) -> Comparison:
        """The state diff from ``a`` to ``b`` and, when both have a snapshot of one workspace, the
        files that changed (with unified diffs when ``patch``)."""
        old, new = await self.checkpoints.get(a), await self.checkpoints.get(b)
        entries = await self.checkpoints.diff(a, b)
        if old.workspace is None or new.workspace is None:
            return Comparison(old, new, entries, None, "not compared: a checkpoint has no workspace snapshot")
        if old.workspace.workspace != new.workspace.workspace:
            return Comparison(old, new, entries, None, "not compared: snapshots of two different workspaces")
        try:
            snaps = await self._snapshots_of(old.workspace.workspace)
            files = await snaps.diff(old.workspace.commit, new.workspace.commit, content=patch)
        except KeepupError as exc:
            return Comparison(old, new, entries, None, f"not compared: {exc}")
        return Comparison(old, new, entries, files)

    async def recent_events(self, *, thread_id: str | None = None, limit: int = MAX_EVENTS) -> list[Event]:
        """Recorded events, newest first, at most ``limit`` (of the newest :data:`MAX_EVENTS`
        read), only those of ``thread_id`` when given."""
        events = await newest_events(self.events, MAX_EVENTS)
        picked = [e for e in reversed(events) if thread_id is None or e.thread_id == thread_id]
        return picked[:limit]

    async def search(self, query: str, *, limit: int = 200) -> list[SearchHit]:
        """Recorded messages matching ``query``, best first: what ``keepup recorder`` recorded
        (ranked, :func:`search_recorded`), then the event log's matches (:func:`search_messages`)."""
        messages = AsyncMessageStore(self.driver, serializer=self.serializer)
        try:
            hits = await search_recorded(messages, query, limit=limit)
        finally:
            await messages.close()
        if len(hits) < limit:
            hits += await search_messages(self.events, query, limit=limit - len(hits))
        return hits

    # -- writing

    async def restore(
        self, checkpoint_id: str, *, workspace: bool = False
    ) -> tuple[Checkpoint, RestoreReport | None]:
        """Make the checkpoint its thread's head again (a new checkpoint; nothing is deleted) and,
        with ``workspace``, bring its files back too (after a rescue snapshot). Refused with
        RuntimeBusyError while a run holds the thread, before anything is touched; what
        ``keepup checkpoint restore`` does."""
        cp = await self.checkpoints.get(checkpoint_id)
        await self.leases.check_free(cp.thread_id, "restore")
        if not workspace:
            return await self.checkpoints.restore(checkpoint_id), None
        if cp.workspace is None:
            raise ValidationError(f"checkpoint {cp.id} has no workspace snapshot to restore files from")
        snaps = await self._snapshots_of(cp.workspace.workspace)
        linked = AsyncWorkspaceCheckpoints(self.checkpoints, snaps.sync, leases=self.leases)
        done = await linked.restore(checkpoint_id, workspace=True)
        if done.checkpoint is None:  # pragma: no cover - only a dry run returns no checkpoint
            raise ValidationError("the restore wrote no checkpoint")
        return done.checkpoint, done.files

    async def fork(self, checkpoint_id: str, *, name: str = "") -> Thread:
        """A new thread starting at the checkpoint (named like ``keepup checkpoint fork`` names
        one when ``name`` is empty); the original thread is untouched."""
        if not name.strip():
            cp = await self.checkpoints.get(checkpoint_id)
            source = await self.checkpoints.get_thread(cp.thread_id)
            name = f"fork of {source.name or source.id} at step {cp.step}"
        return await self.checkpoints.fork(checkpoint_id, name=name)

    async def _snapshots_of(self, workspace: str) -> AsyncShadowGit:
        key = str(Path(workspace).expanduser().resolve())
        found = self._snapshots.get(key)
        if found is None:
            found = await AsyncShadowGit.open(key, state_dir=self.home)
            self._snapshots[key] = found
        return found


def unique_prefixes(ids: builtins.list[str], minimum: int = 13) -> dict[str, str]:
    """For each id, its shortest prefix of at least ``minimum`` characters that no other id in
    ``ids`` shares (UUIDv7 ids share their leading time digits, so a fixed prefix is not enough)."""
    out: dict[str, str] = {}
    ordered = sorted(set(ids))
    for i, full in enumerate(ordered):
        length = minimum
        for other in (ordered[i - 1] if i else None, ordered[i + 1] if i + 1 < len(ordered) else None):
            if other is None:
                continue
            common = 0
            while common < min(len(full), len(other)) and full[common] == other[common]:
                common += 1
            length = max(length, common + 1)
        out[full] = full[: min(length, len(full))]
    return out
