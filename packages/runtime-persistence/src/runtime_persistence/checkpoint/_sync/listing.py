# Generated from packages/runtime-persistence/src/runtime_persistence/checkpoint/_async/listing.py by scripts/gen_sync.py: edit that file and rerun the script.
"""Listing threads (:meth:`Checkpoints.list_threads`) and reading a thread's head, the part
of the checkpoint store that :class:`ThreadLister` holds alone, so that a program that only
lists threads (``keepup thread list``) imports neither the write paths nor the checkpoint,
artifact, workspace and session records of ``runtime_core``. :class:`Checkpoints` is built
on it (``_async/core.py``), so both list, verify and follow heads with the same code. Written
once as async code; ``_sync/listing.py`` is generated from it."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, TypeVar

from runtime_core import ConflictError, Driver, Serializer, Thread, validate_id

from runtime_persistence.checkpoint._reading import (
    DecodedCache,
    check_filter,
    check_limit,
    check_place,
    matches,
    thread_of,
)
from runtime_persistence.checkpoint._records import (
    CKPT_NS,
    HEAD_NS,
    THREAD_NS,
    Head,
    Record,
    ThreadRecord,
    slot_key,
    thread_of_lane,
)
from runtime_persistence.storage.serialization import EnvelopeSerializer

__all__ = ["ThreadLister"]

_T = TypeVar("_T")


class ThreadLister:
    """Threads newest first over any :class:`runtime_core.Driver`, read as
    :class:`Checkpoints` reads them (every record checked against its checksum and its
    place; on a driver without atomic batches a head that trails its newest record is followed
    and moved forward)."""

    def __init__(self, driver: Driver, *, serializer: Serializer | None = None) -> None:
        self._driver = driver
        self._ser: Serializer = serializer or EnvelopeSerializer()
        self._atomic = bool(driver.atomic_batch)
        self._decoded = DecodedCache(self._ser)

    def _load(self, data: bytes, type_: type[_T], namespace: str, key: str) -> _T:
        """Decode the record stored at (namespace, key): bound to that place, and holding the
        ids that key names (CorruptionError otherwise)."""
        return self._decoded.load(data, type_, (namespace, key), check_place)

    def _head(self, thread_id: str) -> tuple[Head | None, int | None]:
        """The thread's true head and the version of its head key. On drivers without atomic
        batches the head key may trail a record written just before a crash: follow it.
        ``thread_id`` may be a lane (one checkpoint namespace of a thread, see ``_records.lane``)."""
        entry = self._driver.get(HEAD_NS, thread_id)
        head = self._load(entry.value, Head, HEAD_NS, thread_id) if entry is not None else None
        version = entry.version if entry is not None else None
        if not self._atomic:
            seq = head.seq + 1 if head is not None else 0
            moved = False
            while (found := self._driver.get(CKPT_NS, slot_key(thread_id, seq))) is not None:
                rec = self._load(found.value, Record, CKPT_NS, found.key)
                head = Head(rec.id, rec.seq, rec.step, rec.created_at)
                seq += 1
                moved = True
            if moved and head is not None:
                version = self._advance_head(thread_id, head, version)
        return head, version

    def _advance_head(self, thread_id: str, head: Head, version: int | None) -> int | None:
        """Move the head key forward to ``head`` unless someone moved it at least as far."""
        data = self._ser.dumps(head, at=(HEAD_NS, thread_id))
        for _ in range(1000):
            try:
                if version is None:
                    return self._driver.put(HEAD_NS, thread_id, data, if_absent=True)
                return self._driver.put(HEAD_NS, thread_id, data, if_version=version)
            except ConflictError:
                entry = self._driver.get(HEAD_NS, thread_id)
                if entry is None:
                    version = None
                    if self._driver.get(THREAD_NS, thread_of_lane(thread_id)) is None:
                        return None  # the thread was deleted meanwhile
                    continue
                if self._load(entry.value, Head, HEAD_NS, thread_id).seq >= head.seq:
                    return entry.version
                version = entry.version
        raise ConflictError(f"could not move the head of thread {thread_id}: too much contention")

    def list_threads(
        self,
        *,
        metadata: Mapping[str, Any] | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> builtins.list[Thread]:
        """Threads newest first (by creation); ``before`` is the id of the last thread of the
        previous page. The metadata filter is equality on each given key."""
        check_limit(limit)
        wanted = check_filter(metadata)
        if before is not None:
            validate_id(before, "before thread id")
        out: list[Thread] = []
        page = limit + 1 if wanted is None else max(64, limit)
        while len(out) < limit:
            entries = [e for e in self._driver.scan(THREAD_NS, before=before, reverse=True, limit=page)]
            for entry in entries:
                rec = self._load(entry.value, ThreadRecord, THREAD_NS, entry.key)
                if matches(rec.metadata, wanted):
                    head, _ = self._head(rec.id)
                    out.append(thread_of(rec, head))
                    if len(out) == limit:
                        break
            if len(entries) < page:
                break
            before = entries[-1].key
            page = min(page * 2, 1024)
        return out
