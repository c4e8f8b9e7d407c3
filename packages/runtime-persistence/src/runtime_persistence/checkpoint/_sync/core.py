# Generated from packages/runtime-persistence/src/runtime_persistence/checkpoint/_async/core.py by scripts/gen_sync.py: edit that file and rerun the script.
"""The core of :class:`Checkpoints`: its state, record reads, the head, and the commit path
that every write of a checkpoint goes through (see ``checkpoint/checkpoints.py`` for the layout
and the guarantees). Written once as async code; ``_sync/core.py`` is generated from it."""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from runtime_core import (
    Checkpoint,
    Clock,
    ConflictError,
    Driver,
    Entry,
    NotFoundError,
    NullTelemetry,
    PendingWrite,
    Put,
    Serializer,
    SystemClock,
    Telemetry,
    validate_id,
)
from runtime_core import Delete as _DeleteOp

from runtime_persistence.checkpoint._records import (
    CKPT_ID_NS,
    CKPT_NS,
    CKPT_WRITE_NS,
    HEAD_NS,
    THREAD_NS,
    Head,
    IdEntry,
    KeyedWrite,
    KeyedWritePack,
    Record,
    ThreadRecord,
    WriteRecord,
    is_keyed_pack_key,
    is_record_key,
    keyed_write_prefix,
    lane_of,
    merge_keyed,
    slot_key,
)
from runtime_persistence.checkpoint._shared import (
    Lru,
    RemovalListener,
    build_checkpoint,
    pending_writes_of,
    revalidate,
)
from runtime_persistence.checkpoint._state import EncodedState, dumps_checked
from runtime_persistence.checkpoint._sync.channels import ChannelStore
from runtime_persistence.checkpoint._sync.listing import ThreadLister
from runtime_persistence.storage._sync.leases import Leases
from runtime_persistence.storage.drivers._common import GuardedPut

__all__ = ["_Core"]

_T = TypeVar("_T")
_Slot = tuple[Record, builtins.list[WriteRecord]]
_KEYED_SEEN_BYTES = 2 << 20  # keyed rows of one checkpoint remembered up to this many bytes (x32)


def _dumps(serializer: Serializer, value: Any, *, at: tuple[str, str]) -> bytes:
    return serializer.dumps(value, at=at)


class _Core(ThreadLister):
    """State and shared helpers of the checkpoint store; the public methods live in the mixins
    (threads, commits, reads, travel, retention) that :class:`Checkpoints` combines."""

    def __init__(
        self,
        driver: Driver,
        *,
        leases: Leases | None = None,
        serializer: Serializer | None = None,
        clock: Clock | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        super().__init__(driver, serializer=serializer)
        self._clock: Clock = clock or SystemClock()
        self._leases = leases or Leases(driver, clock=self._clock, serializer=self._ser)
        self._telemetry: Telemetry = telemetry or NullTelemetry()
        self._channels = ChannelStore(driver, self._ser, self._clock)
        self._locations: Lru[tuple[str, int]] = Lru(65536)
        self._recent: Lru[Record] = Lru(256)
        self._listeners: list[RemovalListener] = []
        # checkpoint id -> (its keyed rows as last read, the writes decoded and merged from them)
        self._keyed_seen: Lru[tuple[builtins.list[tuple[str, bytes]], builtins.list[KeyedWrite]]] = Lru(32)
        # The head each lane got from this object's last commit: (head, its version, its bytes).
        # A save may extend it without reading the head, with a compare-and-set on the version
        # *and the bytes* (a GuardedPut), so a head that moved, or was deleted and written again
        # up to the same version, fails the commit instead of being extended.
        self._guarded = self._atomic and getattr(driver, "guarded_cas", False) is True
        self._heads: Lru[tuple[Head, int, bytes]] = Lru(4096)

    @property
    def driver(self) -> Driver:
        return self._driver

    @property
    def leases(self) -> Leases:
        return self._leases

    def add_removal_listener(self, listener: RemovalListener) -> None:
        """Call ``listener(thread_id, removed_ids)`` whenever prune or delete_thread removes
        checkpoints (the shadow-git snapshots of those checkpoints can then be released)."""
        self._listeners.append(listener)

    def _notify(self, thread_id: str, removed: tuple[str, ...], extra: RemovalListener | None) -> None:
        if not removed:
            return
        self._telemetry.count("checkpoint.removed", len(removed))
        for listener in [*self._listeners, *([extra] if extra else [])]:
            listener(thread_id, removed)

    # records -------------------------------------------------------------------------------------
    def _thread_rec(self, thread_id: str) -> tuple[ThreadRecord, int]:
        validate_id(thread_id, "thread id")
        entry = self._driver.get(THREAD_NS, thread_id)
        if entry is None:
            raise NotFoundError(f"thread {thread_id} not found")
        return self._load(entry.value, ThreadRecord, THREAD_NS, thread_id), entry.version

    def _locate(self, checkpoint_id: str) -> tuple[str, int]:
        """The lane (the thread id, for the thread's own namespace) and slot of a checkpoint."""
        found = self._locations.get(checkpoint_id)  # holds valid ids only
        if found is not None:
            return found
        validate_id(checkpoint_id, "checkpoint id")
        entry = self._driver.get(CKPT_ID_NS, checkpoint_id)
        if entry is None:
            raise NotFoundError(f"checkpoint {checkpoint_id} not found")
        # an id entry is read once and its result kept in _locations: no decoded-record cache
        loc: IdEntry = self._ser.loads(entry.value, IdEntry, at=(CKPT_ID_NS, checkpoint_id))
        result = (lane_of(loc), loc.seq)
        self._locations.remember(checkpoint_id, result)
        return result

    def _read_slot(self, thread_id: str, seq: int) -> _Slot | None:
        slot = slot_key(thread_id, seq)
        rec: Record | None = None
        writes: list[WriteRecord] = []
        for entry in self._driver.scan(CKPT_NS, prefix=slot):
            if entry.key == slot:
                rec = self._load(entry.value, Record, CKPT_NS, entry.key)
            else:
                writes.append(self._load(entry.value, WriteRecord, CKPT_NS, entry.key))
        return None if rec is None else (rec, writes)

    def _read(self, checkpoint_id: str) -> _Slot:
        thread_id, seq = self._locate(checkpoint_id)
        found = self._read_slot(thread_id, seq)
        if found is None or found[0].id != checkpoint_id:
            self._locations.pop(checkpoint_id, None)
            raise NotFoundError(f"checkpoint {checkpoint_id} not found")
        return found

    def _record_of(self, checkpoint_id: str) -> Record:
        cached = self._recent.get(checkpoint_id)
        if cached is not None:
            return cached
        rec = (self._read(checkpoint_id))[0]
        self._recent.remember(rec.id, rec)
        return rec

    def _scan(
        self,
        thread_id: str,
        *,
        before: str | None = None,
        after: str | None = None,
        reverse: bool = True,
        page: int = 64,
    ) -> Iterator[_Slot]:
        """Records of a thread with their pending writes in slot order, read page by page."""
        prefix = f"{thread_id}/"
        page = max(2, page)
        held: _Slot | None = None  # forward: writes follow the record
        loose: list[WriteRecord] = []  # reverse: writes precede the record
        while True:
            entries: list[Entry] = [
                entry
                for entry in self._driver.scan(
                    CKPT_NS, prefix=prefix, after=after, before=before, reverse=reverse, limit=page
                )
            ]
            for entry in entries:
                if is_record_key(entry.key, thread_id):
                    rec = self._load(entry.value, Record, CKPT_NS, entry.key)
                    if reverse:
                        yield rec, loose
                        loose = []
                    else:
                        if held is not None:
                            yield held
                        held = (rec, [])
                else:
                    write = self._load(entry.value, WriteRecord, CKPT_NS, entry.key)
                    if reverse:
                        loose.append(write)
                    elif held is not None:
                        held[1].append(write)
            if len(entries) < page:
                break
            if reverse:
                before = entries[-1].key
            else:
                after = entries[-1].key
            page = min(page * 2, 1024)
        if held is not None:
            yield held

    def _checkpoint(self, rec: Record, writes: Sequence[WriteRecord] = ()) -> Checkpoint:
        """Build the public record (its state and pending writes decoded; no second validation)."""
        state = self._channels.decode(rec.channels)
        pending: list[tuple[WriteRecord | KeyedWrite, Any]] = []
        for w in sorted(writes, key=lambda w: w.created_at) if writes else ():
            pending.append((w, (self._channels.decode({"v": w.value}))["v"]))
        keyed = self._keyed_pending(rec) if rec.key is not None else ()
        return build_checkpoint(rec, pending, state, keyed)

    def _keyed_pending(self, rec: Record) -> tuple[PendingWrite, ...]:
        """``rec``'s pending writes stored by its external key, as public records. One range
        read of its keyed rows; when they are byte for byte the rows this object last turned
        into records for ``rec`` (at the same keys: verified and place-bound then), those
        records are returned again instead of decoding, merging and building each write anew
        (LangGraph reads a checkpoint with hundreds of pending writes again and again)."""
        if rec.key is None:
            return ()
        prefix = keyed_write_prefix(lane_of(rec), rec.key)
        rows = [(e.key, bytes(e.value)) for e in self._driver.scan(CKPT_WRITE_NS, prefix=prefix)]
        if not rows:
            return ()
        seen = self._keyed_seen.get(rec.id)
        if seen is not None and seen[0] == rows:
            return pending_writes_of(rec.id, seen[1])  # values copied: the kept ones stay unshared
        writes = merge_keyed([self._keyed_row(k, v) for k, v in rows])
        if sum(len(v) for _, v in rows) <= _KEYED_SEEN_BYTES:
            self._keyed_seen.remember(rec.id, (rows, writes))
        return pending_writes_of(rec.id, writes)

    def _keyed_writes_of(self, rec: Record) -> builtins.list[KeyedWrite]:
        """The pending writes stored by ``rec``'s external key (per-index rows and packs)."""
        if rec.key is None:
            return []
        prefix = keyed_write_prefix(lane_of(rec), rec.key)
        return merge_keyed(
            [self._keyed_row(e.key, e.value) for e in self._driver.scan(CKPT_WRITE_NS, prefix=prefix)]
        )

    def _keyed_row(self, key: str, value: bytes) -> KeyedWrite | KeyedWritePack:
        if is_keyed_pack_key(key):
            return self._load(value, KeyedWritePack, CKPT_WRITE_NS, key)
        return self._load(value, KeyedWrite, CKPT_WRITE_NS, key)

    def _validated(self, rec: Record, writes: Sequence[WriteRecord] = ()) -> Checkpoint:
        """Like :meth:`_checkpoint`, with every check of the public records (for data that
        crosses a trust boundary, such as an imported file). CorruptionError if it fails."""
        return revalidate(self._checkpoint(rec, writes))

    # the commit path -----------------------------------------------------------------------------
    def _commit(
        self,
        rec: Record,
        encoded: EncodedState,
        head_version: int | None,
        indexes: Sequence[Put] = (),
        *,
        checked: bool = False,
        head_guard: bytes | None = None,
    ) -> None:
        """Blobs, id entry, ``indexes`` (external key, metadata), record (create-only: the commit
        point), head (compare-and-set). ``checked``: ``rec`` was built from a validated
        ``Checkpoint`` (``record_for``), so its envelope needs no second walk over its values.
        ``head_guard``: the bytes the head key must still hold (with ``head_version``), for a
        head known from this object's last commit rather than read."""
        self._channels.write_area_blobs(encoded)
        lane = lane_of(rec)
        slot = slot_key(lane, rec.seq)
        head = Head(rec.id, rec.seq, rec.step, rec.created_at)
        dumps = dumps_checked if checked else _dumps
        ops: list[Put | _DeleteOp] = [
            *encoded.kv_puts,
            Put(
                CKPT_ID_NS,
                rec.id,
                dumps(self._ser, IdEntry(rec.thread_id, rec.seq, rec.namespace), at=(CKPT_ID_NS, rec.id)),
                if_absent=True,
            ),
            *indexes,
            Put(CKPT_NS, slot, dumps(self._ser, rec, at=(CKPT_NS, slot)), if_absent=True),
        ]
        head_bytes = b""
        if self._atomic:
            head_bytes = dumps(self._ser, head, at=(HEAD_NS, lane))
            if head_guard is not None and head_version is not None:
                ops.append(GuardedPut(HEAD_NS, lane, head_bytes, if_version=head_version, expect=head_guard))
            else:
                ops.append(
                    Put(HEAD_NS, lane, head_bytes, if_absent=head_version is None, if_version=head_version)
                )
        try:
            results = self._driver.batch(ops)
        except ConflictError:
            self._heads.pop(lane)
            if not self._atomic:
                landed = self._driver.get(CKPT_NS, slot)
                if landed is not None and self._load(landed.value, Record, CKPT_NS, slot).id == rec.id:
                    self._advance_head(lane, head, head_version)
                    self._remember(rec)
                    return
                self._driver.delete(CKPT_ID_NS, rec.id)
            self._telemetry.count("checkpoint.save.conflict")
            raise ConflictError(
                f"thread {rec.thread_id} moved past {rec.parent_id or 'its start'} while saving; "
                "re-read the head and decide again"
            ) from None
        if self._atomic:
            self._decoded.prime(head_bytes, Head, (HEAD_NS, lane), head)  # the next save reads it back
            if self._guarded:
                self._heads.remember(lane, (head, int(results[-1]), head_bytes))
        else:
            self._advance_head(lane, head, head_version)
        self._remember(rec)

    def _remember(self, rec: Record) -> None:
        self._locations.remember(rec.id, (lane_of(rec), rec.seq))
        self._recent.remember(rec.id, rec)

    # raw access for export/import and gc (same package) -----------------------------------------
    def _raw_thread_ids(self) -> Iterator[str]:
        for entry in self._driver.scan(THREAD_NS):
            yield entry.key
