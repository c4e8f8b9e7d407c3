"""Shared snapshots over a store, written once as async code (:class:`AsyncSnapshotPacks`);
``_sync/packs.py`` (``SnapshotPacks``) is generated from it. The git half (packing, verifying,
indexing) is :mod:`runtime_persistence.shadow_git.sharing`; it runs in a worker thread in the
async class and directly in the sync one."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import IO, ParamSpec, TypeVar

from runtime_core import (
    AsyncDriver,
    Clock,
    ConflictError,
    CorruptionError,
    NotFoundError,
    Serializer,
    SystemClock,
    ValidationError,
)

from runtime_persistence.shadow_git._pack_records import (
    PACK_FORMAT,
    PACK_NS,
    PackRecord,
    checked_record,
    live_closure,
)
from runtime_persistence.shadow_git.sharing import _Sharing, is_full_commit
from runtime_persistence.storage.serialization import EnvelopeSerializer

__all__ = ["AsyncSnapshotPacks"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

MAX_CHAIN = 100_000
"""The most packs one fetch brings in (a cycle or an absurd chain in the store is refused)."""
_CHUNK = 1 << 20


async def _local(fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
    """git and local file work: in a worker thread in async code."""
    return await asyncio.to_thread(fn, *args, **kwargs)  # sync: return fn(*args, **kwargs)


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    fh: IO[bytes] = await _local(open, path, "rb")
    try:
        while chunk := await _local(fh.read, _CHUNK):
            yield chunk
    finally:
        await _local(fh.close)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _open_private(path: Path) -> IO[bytes]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    return os.fdopen(fd, "wb")


class AsyncSnapshotPacks:
    """Workspace snapshots published to a store's blob area, so every host sharing the store can
    diff and restore them (implements :class:`runtime_persistence.shadow_git.sharing.SharedSnapshots`
    in its sync form; pass it as ``ShadowGit(..., shared=SnapshotPacks(driver))``).

    Each snapshot becomes one record ``shadow.pack/<commit>`` naming a git pack in the blob area
    with the objects the snapshot adds to its prerequisite (an earlier published snapshot). Blob
    first, then the record, so a record never names a missing pack. Streams in bounded memory
    both ways. A pack read back is verified (digest, ``index-pack --strict``, completeness) before
    its snapshot is used."""

    def __init__(
        self,
        driver: AsyncDriver,
        *,
        publishing: bool = True,
        clock: Clock | None = None,
        serializer: Serializer | None = None,
    ) -> None:
        """With ``publishing`` False, snapshots are only fetched (the ones an import brought, or
        that another home published), never published."""
        self._driver = driver
        self.publishing = publishing
        self._clock: Clock = clock or SystemClock()
        self._ser: Serializer = serializer or EnvelopeSerializer()

    @property
    def driver(self) -> AsyncDriver:
        return self._driver

    async def get(self, commit: str) -> PackRecord | None:
        """The record of snapshot ``commit`` (a full id), or None. CorruptionError when the stored
        record is damaged or belongs to another snapshot."""
        if not is_full_commit(commit):
            raise ValidationError(f"a snapshot is named by its full commit id here, got {commit!r:.80}")
        entry = await self._driver.get(PACK_NS, commit)
        if entry is None:
            return None
        return checked_record(self._ser.loads(entry.value, PackRecord, at=(PACK_NS, commit)), commit)

    async def records(self) -> AsyncIterator[PackRecord]:
        """Every published snapshot's record, in commit order."""
        async for entry in self._driver.scan(PACK_NS):
            yield checked_record(self._ser.loads(entry.value, PackRecord, at=(PACK_NS, entry.key)), entry.key)

    async def publish(self, shadow: _Sharing, commit: str) -> PackRecord | None:
        """Publish snapshot ``commit`` of ``shadow``: a pack of what it adds to the newest snapshot
        already in the store, then its record. Returns the new record, or None when the store
        already held it or this object does not publish. Safe to repeat and to race (the record
        is written create-only)."""
        if not self.publishing:
            return None
        full = await _local(shadow._local_commit, commit)
        existing = await self.get(full)
        if existing is not None:
            await _local(shadow._mark_shared, full)
            return None
        prerequisites: list[str] = []
        for candidate in await _local(shadow._shared_commits):
            if candidate == full:
                continue
            if await self.get(candidate) is not None:
                prerequisites = [candidate]
                break
            await _local(shadow._unmark_shared, candidate)  # collected from the store meanwhile
        path = await _local(shadow._pack_file, full, prerequisites)
        try:
            info = await self._driver.put_blob_stream(_chunks(path))
        finally:
            await _local(_unlink, path)
        record = PackRecord(PACK_FORMAT, full, info.digest, info.size, prerequisites, self._clock.now())
        try:
            await self._driver.put(PACK_NS, full, self._ser.dumps(record, at=(PACK_NS, full)), if_absent=True)
        except ConflictError:
            await _local(shadow._mark_shared, full)
            return None  # another process published it first: its pack is as good as ours
        await _local(shadow._mark_shared, full)
        return record

    async def resolve(self, commit: str) -> str:
        """The full id of the published snapshot ``commit`` names (a full id or a prefix of at least
        4 hex digits). NotFoundError when none or more than one matches."""
        if is_full_commit(commit):
            if await self.get(commit) is None:
                raise NotFoundError(f"no snapshot {commit} here or in the store")
            return commit
        if not isinstance(commit, str) or len(commit) < 4 or any(c not in "0123456789abcdef" for c in commit):
            raise ValidationError(
                f"a snapshot is named by its commit id (4 to 64 hex digits), got {commit!r:.80}"
            )
        found = [entry.key async for entry in self._driver.scan(PACK_NS, prefix=commit, limit=2)]
        if len(found) != 1:
            raise NotFoundError(
                f"no snapshot {commit} here or in the store"
                if not found
                else f"snapshot prefix {commit} is ambiguous in the store: give more digits"
            )
        return found[0]

    async def fetch(self, shadow: _Sharing, commit: str) -> str:
        """Bring snapshot ``commit`` and the prerequisites ``shadow`` lacks in from the store,
        oldest first, each pack verified before the next; return the full commit id.

        NotFoundError when the store does not hold the snapshot (or a pack it needs was
        collected), CorruptionError when a record or a pack fails its checks (nothing it brought
        is named by a ref then)."""
        full = await self.resolve(commit)
        chain: list[PackRecord] = []
        seen: set[str] = set()
        todo = [full]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            if len(seen) >= MAX_CHAIN:
                raise CorruptionError(f"snapshot {full} needs more than {MAX_CHAIN} packs from the store")
            seen.add(current)
            if current != full and await _local(shadow._has_commit, current):
                continue
            rec = await self.get(current)
            if rec is None:
                raise NotFoundError(
                    f"snapshot {full} needs snapshot {current} from the store, which no longer holds it"
                )
            chain.append(rec)
            todo.extend(rec.prerequisites)
        for rec in reversed(chain):  # prerequisites first
            await self._apply(shadow, rec)
        return full

    async def _apply(self, shadow: _Sharing, rec: PackRecord) -> None:
        path = await _local(shadow._new_pack_path)
        try:
            out = await _local(_open_private, path)
            try:
                async for chunk in self._driver.open_blob(rec.digest):  # verified as it ends
                    await _local(out.write, chunk)
            finally:
                await _local(out.close)
            await _local(shadow._apply_pack, path, rec.commit)
        finally:
            await _local(_unlink, path)

    async def collect(
        self, live: Iterable[str], *, grace: timedelta = timedelta(hours=1), dry_run: bool = False
    ) -> list[str]:
        """Delete the records of published snapshots that no commit in ``live`` needs (itself or
        as a prerequisite, transitively) and that are older than ``grace``; return their commits.
        The next blob garbage collection then frees their packs."""
        records = {rec.commit: rec async for rec in self.records()}
        needed = live_closure(records, live)
        cutoff = self._clock.now() - grace
        dead = sorted(c for c, rec in records.items() if c not in needed and rec.created_at < cutoff)
        if not dry_run:
            for commit in dead:
                await self._driver.delete(PACK_NS, commit)
        return dead


async def pack_roots(driver: AsyncDriver, *, serializer: Serializer | None = None) -> AsyncIterator[str]:
    """The digest of every published snapshot's pack: the blob-root provider that keeps them from
    garbage collection while their records exist (:meth:`AsyncSnapshotPacks.collect` removes the
    records no checkpoint needs). A damaged record raises CorruptionError, which stops the
    collection rather than deleting what it might need."""
    async for rec in AsyncSnapshotPacks(driver, serializer=serializer).records():
        yield rec.digest
