"""Threads of checkpoints over any storage driver: save, list, history, fork, restore, replay,
diff, retention and garbage collection (:class:`Checkpoints`).

Layout in the driver (every namespace starts with ``ckpt`` or ``thread``)::

    thread        {thread_id}                      thread record (name, metadata, fork origin); CAS
    thread.head   {thread_id}                      the head: id, seq and step of the newest checkpoint; CAS
    thread.fork   {src_thread}/{seq}/{fork_thread} a fork starts from that checkpoint (protects it)
    ckpt          {thread_id}/{seq:012d}           checkpoint record (channel refs, not values); create-only
    ckpt          {thread_id}/{seq:012d}/w/{h}     a pending write of that checkpoint (h: task+channel)
    ckpt.id       {checkpoint_id}                  -> (thread id, seq), so ``get`` by id is one lookup
    ckpt.pin      {thread_id}/{checkpoint_id}      a pin: retention never removes the checkpoint
    ckpt.blob     {sha256}                         content-addressed channel values (see ``_state``)

**No silent forks.** A thread is one linear chain. Each checkpoint takes the next *sequence
slot* of its thread (the head's seq + 1) with a create-only put: of two writers extending the
same parent exactly one creates the slot, the other gets ConflictError and nothing of it is
visible. The head key moves by compare-and-set in the same batch (one transaction on drivers
with atomic batches); on other drivers it is moved right after, and readers that find the slot
after the head already taken (a crash between the two writes) follow it, so ``latest`` stays
exact and constant-time.

**Order.** Slots sort by key, so listing newest first is a reverse range scan that stops after
``limit`` records; nothing sorts a whole thread. Within a thread the lineage is the slot order,
so history skips over pruned checkpoints; it crosses into the parent thread at the fork origin.

**Writes go bottom-up.** New blobs, then the id entry, then the record (the commit point), then
the head. A crash leaves at most unreferenced blobs or a dangling id entry, which :meth:`gc`
removes; an acknowledged checkpoint is always complete.
"""

from __future__ import annotations

import builtins
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any, Generic, TypeVar, cast

import msgspec
from runtime_core import (
    ArtifactRef,
    Checkpoint,
    CheckpointSource,
    Clock,
    ConflictError,
    CorruptionError,
    DiffEntry,
    DiffKind,
    Driver,
    Entry,
    GcReport,
    NotFoundError,
    NullTelemetry,
    PendingWrite,
    PruneReport,
    Put,
    Serializer,
    SystemClock,
    Telemetry,
    Thread,
    ValidationError,
    WorkspaceRef,
    new_id,
    validate_id,
)
from runtime_core import Delete as _DeleteOp

from runtime_persistence.checkpoint._records import (
    CKPT_ID_NS,
    CKPT_NS,
    CKPT_PIN_NS,
    FORK_NS,
    HEAD_NS,
    RECORD_FORMAT,
    THREAD_NS,
)
from runtime_persistence.checkpoint._records import (
    SEQ_DIGITS as _SEQ_DIGITS,
)
from runtime_persistence.checkpoint._records import (
    Head as _Head,
)
from runtime_persistence.checkpoint._records import (
    IdEntry as _IdEntry,
)
from runtime_persistence.checkpoint._records import (
    Record as _Record,
)
from runtime_persistence.checkpoint._records import (
    ThreadRecord as _ThreadRecord,
)
from runtime_persistence.checkpoint._records import (
    WriteRecord as _WriteRecord,
)
from runtime_persistence.checkpoint._records import (
    is_record_key as _is_record_key,
)
from runtime_persistence.checkpoint._records import (
    slot_key as _slot,
)
from runtime_persistence.checkpoint._records import (
    write_key as _write_key,
)
from runtime_persistence.checkpoint._state import (
    ChannelRef,
    ChannelStore,
    EncodedState,
    copy_plain,
    iter_blob_refs,
)
from runtime_persistence.storage.leases import Leases
from runtime_persistence.storage.serialization import EnvelopeSerializer

__all__ = [
    "CKPT_ID_NS",
    "CKPT_NS",
    "CKPT_PIN_NS",
    "FORK_NS",
    "HEAD_NS",
    "THREAD_NS",
    "Checkpoints",
    "RemovalListener",
    "diff_states",
]

_DECODED_ITEMS = 4096
_DECODED_MAX_BYTES = 4096
MAX_LIST_LIMIT = 10_000
_DELETE_BATCH = 200

RemovalListener = Callable[[str, tuple[str, ...]], None]
"""Called with (thread id, removed checkpoint ids) after prune or delete_thread removes checkpoints."""

_T = TypeVar("_T")


def _check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_LIST_LIMIT:
        raise ValidationError(f"limit must be an integer from 0 to {MAX_LIST_LIMIT}, got {limit!r:.40}")
    return limit


def _check_filter(metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) for k in metadata):
        raise ValidationError("a metadata filter is a mapping with string keys")
    return dict(metadata)


def _matches(metadata: Mapping[str, Any], wanted: Mapping[str, Any] | None) -> bool:
    """Equality on every key of ``wanted`` (evaluated in Python over decoded records, never
    built into a query)."""
    if not wanted:
        return True
    return all(k in metadata and metadata[k] == v for k, v in wanted.items())


class _Lru(Generic[_T]):
    """A small thread-safe LRU map."""

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[str, _T] = OrderedDict()
        self._max = size
        self._lock = threading.Lock()

    def get(self, key: str) -> _T | None:
        with self._lock:
            return self._items.get(key)

    def remember(self, key: str, value: _T) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            if len(self._items) > self._max:
                self._items.popitem(last=False)

    def pop(self, key: str, default: None = None) -> _T | None:
        with self._lock:
            return self._items.pop(key, default)


class Checkpoints:
    """:class:`runtime_core.CheckpointStore` over any :class:`runtime_core.Driver`.

    ``leases`` is the lease store consulted by restore, prune and delete_thread (default: a
    :class:`Leases` on the same driver). ``clock`` stamps records and judges ages (retention,
    garbage collection, leases). Instances are safe to share between threads of one process;
    any number of processes may use the same store."""

    def __init__(
        self,
        driver: Driver,
        *,
        leases: Leases | None = None,
        serializer: Serializer | None = None,
        clock: Clock | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._driver = driver
        self._clock: Clock = clock or SystemClock()
        self._ser: Serializer = serializer or EnvelopeSerializer()
        self._leases = leases or Leases(driver, clock=self._clock, serializer=self._ser)
        self._telemetry: Telemetry = telemetry or NullTelemetry()
        self._channels = ChannelStore(driver, self._ser, self._clock)
        self._atomic = bool(driver.atomic_batch)
        self._locations: _Lru[tuple[str, int]] = _Lru(65536)
        self._recent: _Lru[_Record] = _Lru(256)
        self._listeners: list[RemovalListener] = []
        self._decoded: OrderedDict[tuple[type[Any], bytes], Any] = OrderedDict()
        self._decoded_lock = threading.Lock()

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

    # encoding helpers -----------------------------------------------------------------------------
    def _load(self, data: bytes, type_: type[_T]) -> _T:
        """Decode a stored record. Records are immutable and their envelopes checksummed, so a
        decoded record is remembered by its exact bytes (never by key): the same bytes always
        decode to the same record, and damaged bytes are never in the cache."""
        if len(data) > _DECODED_MAX_BYTES:
            return self._ser.loads(data, type_)
        key = (type_, bytes(data))
        with self._decoded_lock:
            found = self._decoded.get(key)
            if found is not None:
                self._decoded.move_to_end(key)
                return cast(_T, found)
        value: _T = self._ser.loads(data, type_)
        with self._decoded_lock:
            self._decoded[key] = value
            if len(self._decoded) > _DECODED_ITEMS:
                self._decoded.popitem(last=False)
        return value

    def _thread_rec(self, thread_id: str) -> tuple[_ThreadRecord, int]:
        validate_id(thread_id, "thread id")
        entry = self._driver.get(THREAD_NS, thread_id)
        if entry is None:
            raise NotFoundError(f"thread {thread_id} not found")
        return self._load(entry.value, _ThreadRecord), entry.version

    def _head(self, thread_id: str) -> tuple[_Head | None, int | None]:
        """The thread's true head and the version of its head key. On drivers without atomic
        batches the head key may trail a record written just before a crash: follow it."""
        entry = self._driver.get(HEAD_NS, thread_id)
        head = self._load(entry.value, _Head) if entry is not None else None
        version = entry.version if entry is not None else None
        if not self._atomic:
            seq = head.seq + 1 if head is not None else 0
            moved = False
            while (found := self._driver.get(CKPT_NS, _slot(thread_id, seq))) is not None:
                rec = self._load(found.value, _Record)
                head = _Head(rec.id, rec.seq, rec.step, rec.created_at)
                seq += 1
                moved = True
            if moved and head is not None:
                version = self._advance_head(thread_id, head, version)
        return head, version

    def _advance_head(self, thread_id: str, head: _Head, version: int | None) -> int | None:
        """Move the head key forward to ``head`` unless someone moved it at least as far."""
        data = self._ser.dumps(head)
        for _ in range(1000):
            try:
                if version is None:
                    return self._driver.put(HEAD_NS, thread_id, data, if_absent=True)
                return self._driver.put(HEAD_NS, thread_id, data, if_version=version)
            except ConflictError:
                entry = self._driver.get(HEAD_NS, thread_id)
                if entry is None:
                    version = None
                    if self._driver.get(THREAD_NS, thread_id) is None:
                        return None  # the thread was deleted meanwhile
                    continue
                if self._load(entry.value, _Head).seq >= head.seq:
                    return entry.version
                version = entry.version
        raise ConflictError(f"could not move the head of thread {thread_id}: too much contention")

    def _locate(self, checkpoint_id: str) -> tuple[str, int]:
        validate_id(checkpoint_id, "checkpoint id")
        found = self._locations.get(checkpoint_id)
        if found is not None:
            return found
        entry = self._driver.get(CKPT_ID_NS, checkpoint_id)
        if entry is None:
            raise NotFoundError(f"checkpoint {checkpoint_id} not found")
        loc = self._load(entry.value, _IdEntry)
        result = (loc.thread_id, loc.seq)
        self._locations.remember(checkpoint_id, result)
        return result

    def _read_slot(self, thread_id: str, seq: int) -> tuple[_Record, list[_WriteRecord]] | None:
        slot = _slot(thread_id, seq)
        rec: _Record | None = None
        writes: list[_WriteRecord] = []
        for entry in self._driver.scan(CKPT_NS, prefix=slot):
            if entry.key == slot:
                rec = self._load(entry.value, _Record)
            else:
                writes.append(self._load(entry.value, _WriteRecord))
        return None if rec is None else (rec, writes)

    def _read(self, checkpoint_id: str) -> tuple[_Record, list[_WriteRecord]]:
        thread_id, seq = self._locate(checkpoint_id)
        found = self._read_slot(thread_id, seq)
        if found is None or found[0].id != checkpoint_id:
            self._locations.pop(checkpoint_id, None)
            raise NotFoundError(f"checkpoint {checkpoint_id} not found")
        return found

    def _record_of(self, checkpoint_id: str) -> _Record:
        cached = self._recent.get(checkpoint_id)
        if cached is not None:
            return cached
        rec = self._read(checkpoint_id)[0]
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
    ) -> Iterator[tuple[_Record, list[_WriteRecord]]]:
        """Records of a thread with their pending writes in slot order, read page by page."""
        prefix = f"{thread_id}/"
        page = max(2, page)
        held: tuple[_Record, list[_WriteRecord]] | None = None  # forward: writes follow the record
        loose: list[_WriteRecord] = []  # reverse: writes precede the record
        while True:
            entries: list[Entry] = list(
                self._driver.scan(
                    CKPT_NS, prefix=prefix, after=after, before=before, reverse=reverse, limit=page
                )
            )
            for entry in entries:
                if _is_record_key(entry.key, thread_id):
                    rec = self._load(entry.value, _Record)
                    if reverse:
                        yield rec, loose
                        loose = []
                    else:
                        if held is not None:
                            yield held
                        held = (rec, [])
                else:
                    write = self._load(entry.value, _WriteRecord)
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

    def _checkpoint(self, rec: _Record, writes: Sequence[_WriteRecord] = ()) -> Checkpoint:
        """Build the public record. Everything here was validated when it was saved (or imported)
        and has passed its checksums since, so it is assembled without validating it again;
        values that callers could mutate are fresh copies, never the cached ones."""
        state = self._channels.decode(rec.channels)
        try:
            source = CheckpointSource(rec.source)
            pending = tuple(
                _unchecked(
                    PendingWrite,
                    checkpoint_id=rec.id,
                    task_id=w.task_id,
                    channel=w.channel,
                    value=self._channels.decode({"v": w.value})["v"],
                    created_at=w.created_at,
                )
                for w in sorted(writes, key=lambda w: w.created_at)
            )
            return _unchecked(
                Checkpoint,
                id=rec.id,
                thread_id=rec.thread_id,
                parent_id=rec.parent_id,
                step=rec.step,
                source=source,
                created_at=rec.created_at,
                state=state,
                label=rec.label,
                metadata=copy_plain(rec.metadata) if rec.metadata else {},
                pending_writes=pending,
                workspace=WorkspaceRef(*rec.workspace) if rec.workspace else None,
                artifacts=tuple(ArtifactRef(*a) for a in rec.artifacts),
            )
        except (ValidationError, ValueError, TypeError) as exc:
            raise CorruptionError(f"checkpoint {rec.id} does not validate: {exc}") from exc

    def _validated(self, rec: _Record, writes: Sequence[_WriteRecord] = ()) -> Checkpoint:
        """Like :meth:`_checkpoint`, with every check of the public records (for data that
        crosses a trust boundary, such as an imported file). CorruptionError if it fails."""
        cp = self._checkpoint(rec, writes)
        try:
            return Checkpoint(
                id=cp.id,
                thread_id=cp.thread_id,
                parent_id=cp.parent_id,
                step=cp.step,
                source=cp.source,
                created_at=cp.created_at,
                state=cp.state,
                label=cp.label,
                metadata=cp.metadata,
                pending_writes=tuple(
                    PendingWrite(w.checkpoint_id, w.task_id, w.channel, w.value, w.created_at)
                    for w in cp.pending_writes
                ),
                workspace=cp.workspace,
                artifacts=cp.artifacts,
            )
        except ValidationError as exc:
            raise CorruptionError(f"checkpoint {rec.id} does not validate: {exc}") from exc

    def _thread(self, rec: _ThreadRecord, head: _Head | None) -> Thread:
        updated = rec.updated_at if head is None else max(rec.updated_at, head.at)
        return Thread(
            id=rec.id,
            created_at=rec.created_at,
            updated_at=updated,
            name=rec.name,
            metadata=copy_plain(rec.metadata),
            parent_thread_id=rec.parent_thread_id,
            forked_from=rec.forked_from,
            head=head.id if head else None,
        )

    # threads ---------------------------------------------------------------------------------------
    def create_thread(
        self, name: str = "", *, metadata: Mapping[str, Any] | None = None, thread_id: str | None = None
    ) -> Thread:
        """Create an empty thread. Raises ConflictError if ``thread_id`` is taken."""
        now = self._clock.now()
        thread = Thread(
            id=thread_id or new_id(), created_at=now, updated_at=now, name=name, metadata=dict(metadata or {})
        )
        rec = _ThreadRecord(thread.id, thread.name, thread.metadata, None, None, now, now)
        try:
            self._driver.put(THREAD_NS, thread.id, self._ser.dumps(rec), if_absent=True)
        except ConflictError:
            raise ConflictError(f"thread {thread.id} already exists") from None
        self._telemetry.count("checkpoint.thread.created")
        return thread

    def get_thread(self, thread_id: str) -> Thread:
        """The thread with its current head. Raises NotFoundError."""
        rec, _ = self._thread_rec(thread_id)
        head, _ = self._head(thread_id)
        return self._thread(rec, head)

    def list_threads(
        self,
        *,
        metadata: Mapping[str, Any] | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> builtins.list[Thread]:
        """Threads newest first (by creation); ``before`` is the id of the last thread of the
        previous page. The metadata filter is equality on each given key."""
        _check_limit(limit)
        wanted = _check_filter(metadata)
        if before is not None:
            validate_id(before, "before thread id")
        out: list[Thread] = []
        page = limit + 1 if wanted is None else max(64, limit)
        while len(out) < limit:
            entries = list(self._driver.scan(THREAD_NS, before=before, reverse=True, limit=page))
            for entry in entries:
                rec = self._load(entry.value, _ThreadRecord)
                if _matches(rec.metadata, wanted):
                    head, _ = self._head(rec.id)
                    out.append(self._thread(rec, head))
                    if len(out) == limit:
                        break
            if len(entries) < page:
                break
            before = entries[-1].key
            page = min(page * 2, 1024)
        return out

    def _update_thread(self, thread_id: str, change: Callable[[_ThreadRecord], _ThreadRecord]) -> Thread:
        for _ in range(100):
            rec, version = self._thread_rec(thread_id)
            new = change(rec)
            try:
                self._driver.put(THREAD_NS, thread_id, self._ser.dumps(new), if_version=version)
            except ConflictError:
                continue
            head, _ = self._head(thread_id)
            return self._thread(new, head)
        raise ConflictError(f"thread {thread_id} kept changing; try again")

    def rename_thread(self, thread_id: str, name: str) -> Thread:
        """Rename the thread (compare-and-set; concurrent changes are not lost)."""
        Thread(id=thread_id, created_at=self._clock.now(), updated_at=self._clock.now(), name=name)
        now = self._clock.now()
        return self._update_thread(thread_id, lambda r: msgspec.structs.replace(r, name=name, updated_at=now))

    def update_thread_metadata(
        self, thread_id: str, metadata: Mapping[str, Any], *, merge: bool = True
    ) -> Thread:
        """Merge ``metadata`` into the thread's (or replace it with ``merge=False``)."""
        now = self._clock.now()

        def change(rec: _ThreadRecord) -> _ThreadRecord:
            new_meta = {**rec.metadata, **metadata} if merge else dict(metadata)
            Thread(id=rec.id, created_at=now, updated_at=now, metadata=new_meta)  # validates
            return msgspec.structs.replace(rec, metadata=new_meta, updated_at=now)

        return self._update_thread(thread_id, change)

    def delete_thread(self, thread_id: str) -> None:
        """Delete the thread, its checkpoints, pending writes and pins. Refused with
        RuntimeBusyError while a live lease holds it. Threads forked from it keep their own
        checkpoints; their history stops at their first checkpoint. Blobs are freed by gc."""
        rec, version = self._thread_rec(thread_id)
        self._leases.check_free(thread_id, "delete the thread")
        self._driver.delete(THREAD_NS, thread_id, if_version=version)
        self._driver.delete(HEAD_NS, thread_id)
        removed: list[str] = []
        keys: list[_DeleteOp] = []
        for entry in self._driver.scan(CKPT_NS, prefix=f"{thread_id}/"):
            keys.append(_DeleteOp(CKPT_NS, entry.key))
            if _is_record_key(entry.key, thread_id):
                rec_id = self._load(entry.value, _Record).id
                removed.append(rec_id)
                keys.append(_DeleteOp(CKPT_ID_NS, rec_id))
                self._locations.pop(rec_id, None)
                self._recent.pop(rec_id, None)
        for entry in self._driver.scan(CKPT_PIN_NS, prefix=f"{thread_id}/"):
            keys.append(_DeleteOp(CKPT_PIN_NS, entry.key))
        for entry in self._driver.scan(FORK_NS, prefix=f"{thread_id}/"):
            keys.append(_DeleteOp(FORK_NS, entry.key))
        if rec.forked_from is not None and rec.parent_thread_id is not None:
            try:
                src_thread, src_seq = self._locate(rec.forked_from)
                keys.append(_DeleteOp(FORK_NS, f"{_slot(src_thread, src_seq)}/{thread_id}"))
            except NotFoundError:
                pass
        for i in range(0, len(keys), _DELETE_BATCH):
            self._driver.batch(keys[i : i + _DELETE_BATCH])
        self._notify(thread_id, tuple(removed), None)

    def copy_thread(self, thread_id: str, *, name: str | None = None) -> Thread:
        """A new thread holding a copy of every checkpoint (new ids, same states, labels and
        pending writes; states share their blobs, so a copy costs only records). The copy keeps
        the source's fork origin. The new thread appears only once it is complete."""
        src, _ = self._thread_rec(thread_id)
        now = self._clock.now()
        new = _ThreadRecord(
            new_id(),
            src.name if name is None else name,
            dict(src.metadata),
            src.parent_thread_id,
            src.forked_from,
            now,
            now,
        )
        Thread(id=new.id, created_at=now, updated_at=now, name=new.name)  # validates the name
        if src.forked_from is not None:
            src_thread, src_seq = self._locate(src.forked_from)
            self._driver.put(FORK_NS, f"{_slot(src_thread, src_seq)}/{new.id}", b"\x01")
        id_map: dict[str, str] = {}
        head: _Head | None = None
        for rec, writes in self._scan(thread_id, reverse=False, page=256):
            copy_id = new_id()
            id_map[rec.id] = copy_id
            parent = id_map.get(rec.parent_id, rec.parent_id) if rec.parent_id else None
            copied = msgspec.structs.replace(rec, id=copy_id, thread_id=new.id, parent_id=parent)
            slot = _slot(new.id, rec.seq)
            ops: list[Put | _DeleteOp] = [
                Put(CKPT_ID_NS, copy_id, self._ser.dumps(_IdEntry(new.id, rec.seq)), if_absent=True),
                Put(CKPT_NS, slot, self._ser.dumps(copied), if_absent=True),
            ]
            ops.extend(
                Put(CKPT_NS, _write_key(slot, w.task_id, w.channel), self._ser.dumps(w)) for w in writes
            )
            self._driver.batch(ops)
            head = _Head(copy_id, rec.seq, rec.step, rec.created_at)
        if head is not None:
            self._driver.put(HEAD_NS, new.id, self._ser.dumps(head), if_absent=True)
        self._driver.put(THREAD_NS, new.id, self._ser.dumps(new), if_absent=True)
        return self._thread(new, head)

    # checkpoints -------------------------------------------------------------------------------
    def save(
        self,
        thread_id: str,
        state: Mapping[str, Any],
        *,
        parent_id: str | None = None,
        source: CheckpointSource = CheckpointSource.LOOP,
        step: int | None = None,
        label: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        workspace: WorkspaceRef | None = None,
        artifacts: tuple[ArtifactRef, ...] = (),
    ) -> Checkpoint:
        """Write a checkpoint after ``parent_id`` (default: the thread's head) and make it the head.

        ``step`` defaults to the parent's step + 1 (0 for the first checkpoint). When this
        returns, the checkpoint is stored with the driver's durability and is the head. Raises
        ConflictError when the head is not ``parent_id`` (or moved while saving: re-read the head
        and decide again), NotFoundError for an unknown thread, ValidationError for bad input
        (nothing is written)."""
        head, version = self._head(thread_id)
        if head is None:
            self._thread_rec(thread_id)
        if parent_id is not None:
            validate_id(parent_id, "parent checkpoint id")
            if head is None or parent_id != head.id:
                raise ConflictError(
                    f"thread {thread_id} head is {head.id if head else 'empty'}, not {parent_id}: "
                    "another writer moved it; re-read the head and decide again"
                )
        now = self._clock.now()
        cp = Checkpoint(
            id=new_id(),
            thread_id=thread_id,
            parent_id=head.id if head else None,
            step=(head.step + 1 if head else 0) if step is None else step,
            source=source,
            created_at=now,
            state=dict(state),
            label=label,
            metadata=dict(metadata or {}),
            workspace=workspace,
            artifacts=tuple(artifacts),
        )
        known = self._known_blobs(head)
        encoded = self._channels.encode(cp.state, known)
        rec = self._record_for(cp, head.seq + 1 if head else 0, encoded.refs)
        self._commit(rec, encoded, version)
        self._telemetry.count("checkpoint.saved")
        return cp

    def _known_blobs(self, head: _Head | None) -> set[bytes]:
        if head is None:
            return set()
        try:
            return set(iter_blob_refs(self._record_of(head.id).channels))
        except NotFoundError:
            return set()

    def _record_for(self, cp: Checkpoint, seq: int, refs: dict[str, ChannelRef]) -> _Record:
        return _Record(
            RECORD_FORMAT,
            cp.id,
            cp.thread_id,
            cp.parent_id,
            seq,
            cp.step,
            cp.source.value,
            cp.created_at,
            cp.label,
            copy_plain(cp.metadata),
            refs,
            (cp.workspace.workspace, cp.workspace.commit) if cp.workspace else None,
            [(a.scope, a.key, a.version) for a in cp.artifacts],
        )

    def _commit(self, rec: _Record, encoded: EncodedState, head_version: int | None) -> None:
        """Blobs, id entry, record (create-only: the commit point), head (compare-and-set)."""
        self._channels.write_area_blobs(encoded)
        slot = _slot(rec.thread_id, rec.seq)
        head = _Head(rec.id, rec.seq, rec.step, rec.created_at)
        ops: list[Put | _DeleteOp] = [
            *encoded.kv_puts,
            Put(CKPT_ID_NS, rec.id, self._ser.dumps(_IdEntry(rec.thread_id, rec.seq)), if_absent=True),
            Put(CKPT_NS, slot, self._ser.dumps(rec), if_absent=True),
        ]
        if self._atomic:
            ops.append(
                Put(
                    HEAD_NS,
                    rec.thread_id,
                    self._ser.dumps(head),
                    if_absent=head_version is None,
                    if_version=head_version,
                )
            )
        try:
            self._driver.batch(ops)
        except ConflictError:
            if not self._atomic:
                landed = self._driver.get(CKPT_NS, slot)
                if landed is not None and self._load(landed.value, _Record).id == rec.id:
                    self._advance_head(rec.thread_id, head, head_version)
                    self._remember(rec)
                    return
                self._driver.delete(CKPT_ID_NS, rec.id)
            self._telemetry.count("checkpoint.save.conflict")
            raise ConflictError(
                f"thread {rec.thread_id} moved past {rec.parent_id or 'its start'} while saving; "
                "re-read the head and decide again"
            ) from None
        if not self._atomic:
            self._advance_head(rec.thread_id, head, head_version)
        self._remember(rec)

    def _remember(self, rec: _Record) -> None:
        self._locations.remember(rec.id, (rec.thread_id, rec.seq))
        self._recent.remember(rec.id, rec)

    def get(self, checkpoint_id: str) -> Checkpoint:
        """The checkpoint with its state and pending writes. Raises NotFoundError; CorruptionError
        if its stored bytes are damaged."""
        rec, writes = self._read(checkpoint_id)
        return self._checkpoint(rec, writes)

    def latest(self, thread_id: str) -> Checkpoint | None:
        """The head of the thread (None while empty), in constant time: one read of the head key
        and one of its record. Raises NotFoundError for an unknown thread."""
        head, _ = self._head(thread_id)
        if head is None:
            self._thread_rec(thread_id)
            return None
        found = self._read_slot(thread_id, head.seq)
        if found is None:
            raise CorruptionError(f"the head {head.id} of thread {thread_id} has no record")
        return self._checkpoint(*found)

    def list(
        self,
        thread_id: str,
        *,
        before: str | None = None,
        after: str | None = None,
        limit: int = 50,
        metadata: Mapping[str, Any] | None = None,
    ) -> builtins.list[Checkpoint]:
        """Checkpoints of a thread, newest first, strictly older than ``before`` and strictly
        newer than ``after`` (checkpoint ids of this thread), at most ``limit``, whose metadata
        has every key/value of ``metadata``. Reads about ``limit`` records, whatever the length
        of the thread (more only when a metadata filter rejects records)."""
        _check_limit(limit)
        wanted = _check_filter(metadata)
        validate_id(thread_id, "thread id")
        upper = self._bound(thread_id, before, "before")
        lower = self._bound(thread_id, after, "after")
        if limit == 0:
            return []
        out: list[Checkpoint] = []
        page = limit + 1 if wanted is None else max(64, limit)
        for rec, writes in self._scan(
            thread_id, before=upper, after=None if lower is None else lower + "0", page=page
        ):
            if _matches(rec.metadata, wanted):
                out.append(self._checkpoint(rec, writes))
                if len(out) == limit:
                    break
        if not out:
            self._thread_rec(thread_id)  # NotFoundError for an unknown thread
        return out

    def _bound(self, thread_id: str, checkpoint_id: str | None, what: str) -> str | None:
        if checkpoint_id is None:
            return None
        owner, seq = self._locate(checkpoint_id)
        if owner != thread_id:
            raise ValidationError(f"{what}={checkpoint_id} is a checkpoint of another thread ({owner})")
        return _slot(thread_id, seq)

    def _lineage(self, checkpoint_id: str) -> Iterator[tuple[_Record, builtins.list[_WriteRecord]]]:
        rec, writes = self._read(checkpoint_id)
        yield rec, writes
        seen = {rec.thread_id}
        while True:
            yield from self._scan(rec.thread_id, before=_slot(rec.thread_id, rec.seq), page=64)
            try:
                thread_rec, _ = self._thread_rec(rec.thread_id)
            except NotFoundError:
                return
            origin = thread_rec.forked_from
            if origin is None:
                return
            try:
                rec, writes = self._read(origin)
            except NotFoundError:
                return
            if rec.thread_id in seen:
                return
            seen.add(rec.thread_id)
            yield rec, writes

    def history(self, checkpoint_id: str) -> Iterator[Checkpoint]:
        """The checkpoint, then its lineage back to the root, newest first, crossing into the
        thread a fork came from. Pruned checkpoints are skipped (the lineage of a thread is its
        slot order). Lazy: states are read as the iterator advances."""
        for rec, writes in self._lineage(checkpoint_id):
            yield self._checkpoint(rec, writes)

    def put_writes(self, checkpoint_id: str, task_id: str, writes: Mapping[str, Any]) -> None:
        """Store writes (channel -> value) made by ``task_id`` after ``checkpoint_id``, returned
        with that checkpoint as its pending writes. A write of the same task and channel replaces
        the earlier one, so retrying after a crash is safe. Durable when this returns."""
        thread_id, seq = self._locate(checkpoint_id)
        slot = _slot(thread_id, seq)
        landed = self._driver.get(CKPT_NS, slot)
        if landed is None or self._load(landed.value, _Record).id != checkpoint_id:
            raise NotFoundError(f"checkpoint {checkpoint_id} not found")
        if not isinstance(writes, Mapping):
            raise ValidationError("writes must be a mapping of channel name to value")
        now = self._clock.now()
        ops: list[Put | _DeleteOp] = []
        for channel, value in writes.items():
            PendingWrite(checkpoint_id, task_id, channel, value, now)  # validates
            encoded = self._channels.encode({"v": value})
            self._channels.write_area_blobs(encoded)
            ops.extend(encoded.kv_puts)
            ops.append(
                Put(
                    CKPT_NS,
                    _write_key(slot, task_id, channel),
                    self._ser.dumps(_WriteRecord(task_id, channel, encoded.refs["v"], now)),
                )
            )
        if ops:
            self._driver.batch(ops)

    def fork(
        self, checkpoint_id: str, *, name: str = "", metadata: Mapping[str, Any] | None = None
    ) -> Thread:
        """A new thread starting from ``checkpoint_id`` (of any thread): its first checkpoint
        (``source=fork``) has that checkpoint's state and it as parent; the thread records
        ``forked_from`` and ``parent_thread_id``. The source checkpoint is then protected from
        retention for as long as the fork exists."""
        src = self._record_of(checkpoint_id)
        now = self._clock.now()
        thread = Thread(
            id=new_id(),
            created_at=now,
            updated_at=now,
            name=name,
            metadata=dict(metadata or {}),
            parent_thread_id=src.thread_id,
            forked_from=src.id,
        )
        self._driver.put(FORK_NS, f"{_slot(src.thread_id, src.seq)}/{thread.id}", b"\x01")
        trec = _ThreadRecord(thread.id, name, thread.metadata, src.thread_id, src.id, now, now)
        self._driver.put(THREAD_NS, thread.id, self._ser.dumps(trec), if_absent=True)
        rec = _Record(
            RECORD_FORMAT,
            new_id(),
            thread.id,
            src.id,
            0,
            src.step,
            CheckpointSource.FORK.value,
            now,
            None,
            {"forked_from": src.id},
            src.channels,
            src.workspace,
            src.artifacts,
        )
        self._commit(rec, EncodedState(rec.channels, [], []), None)
        return self._thread(trec, _Head(rec.id, 0, rec.step, now))

    def restore(self, checkpoint_id: str) -> Checkpoint:
        """Make ``checkpoint_id`` current again by writing a new head (``source=restore``, its
        parent the current head) with that checkpoint's state, workspace and artifacts. Nothing
        is deleted, so a restore can itself be undone. Raises RuntimeBusyError (naming the
        holder) while a live lease holds the thread; ConflictError if the head moved meanwhile."""
        src = self._record_of(checkpoint_id)
        self._leases.check_free(src.thread_id, "restore")
        head, version = self._head(src.thread_id)
        if head is None:
            raise NotFoundError(f"thread {src.thread_id} not found")
        now = self._clock.now()
        rec = _Record(
            RECORD_FORMAT,
            new_id(),
            src.thread_id,
            head.id,
            head.seq + 1,
            src.step,
            CheckpointSource.RESTORE.value,
            now,
            None,
            {"restored_from": src.id},
            src.channels,
            src.workspace,
            src.artifacts,
        )
        self._commit(rec, EncodedState(rec.channels, [], []), version)
        return self._checkpoint(rec)

    def replay(
        self,
        start_id: str,
        end_id: str | None = None,
        *,
        reverse: bool = False,
        callback: Callable[[Checkpoint], None] | None = None,
    ) -> Iterator[Checkpoint]:
        """The checkpoints on the lineage between ``start_id`` and ``end_id`` (default: the head
        of start's thread), both included, from start to end: forward in time when start is the
        ancestor, backward when it is the descendant. ``reverse`` yields from end to start
        instead. ``callback`` is called with each checkpoint just before it is yielded (consume
        the iterator to drive it). Raises ValidationError when neither is an ancestor of the other."""
        start = self._record_of(start_id)
        if end_id is None:
            head, _ = self._head(start.thread_id)
            end_id = head.id if head else start.id
        validate_id(end_id, "end checkpoint id")
        path = self._path(end_id, start_id)  # newest first, end ... start: start is older
        if path is not None:
            path.reverse()  # start ... end
        else:
            path = self._path(start_id, end_id)  # start ... end, start is newer
            if path is None:
                raise ValidationError(
                    f"checkpoints {start_id} and {end_id} are not on one lineage (neither is an ancestor of the other)"
                )
        if reverse:
            path.reverse()
        return self._replay_iter(path, callback)

    def _replay_iter(
        self,
        path: builtins.list[tuple[_Record, builtins.list[_WriteRecord]]],
        callback: Callable[[Checkpoint], None] | None,
    ) -> Iterator[Checkpoint]:
        for rec, writes in path:
            cp = self._checkpoint(rec, writes)
            if callback is not None:
                callback(cp)
            yield cp

    def _path(
        self, young: str, old: str
    ) -> builtins.list[tuple[_Record, builtins.list[_WriteRecord]]] | None:
        out: list[tuple[_Record, list[_WriteRecord]]] = []
        old_loc = self._locate(old)
        for rec, writes in self._lineage(young):
            out.append((rec, writes))
            if rec.id == old:
                return out
            if rec.thread_id == old_loc[0] and rec.seq < old_loc[1]:
                return None
        return None

    def diff(self, a: str, b: str) -> builtins.list[DiffEntry]:
        """Path-level differences from checkpoint ``a``'s state to ``b``'s (any two threads)."""
        return diff_states(self.get(a).state, self.get(b).state)

    # pins and retention --------------------------------------------------------------------------
    def pin(self, checkpoint_id: str, reason: str = "pinned") -> None:
        """Protect a checkpoint from retention (labeled checkpoints are protected already)."""
        rec = self._record_of(checkpoint_id)
        self._driver.put(CKPT_PIN_NS, f"{rec.thread_id}/{rec.id}", self._ser.dumps(reason))

    def unpin(self, checkpoint_id: str) -> None:
        rec = self._record_of(checkpoint_id)
        self._driver.delete(CKPT_PIN_NS, f"{rec.thread_id}/{rec.id}")

    def prune(
        self,
        thread_id: str,
        *,
        keep_last: int | None = None,
        older_than: timedelta | None = None,
        keep_labeled: bool = True,
        dry_run: bool = False,
        on_removed: RemovalListener | None = None,
    ) -> PruneReport:
        """Remove old checkpoints of a thread: those beyond the newest ``keep_last`` and (when
        given) created more than ``older_than`` ago. Never removes the head, a pinned checkpoint,
        a labeled one (unless ``keep_labeled=False``), or one a fork starts from. Refused with
        RuntimeBusyError while a live lease holds the thread. Later checkpoints stay readable;
        their parent link may name a removed id, and history skips it. Blobs are freed by gc.
        ``on_removed`` (and every removal listener) is called with the removed ids."""
        from runtime_persistence.checkpoint.retention import plan_prune

        self._thread_rec(thread_id)
        self._leases.check_free(thread_id, "prune")
        forks = {
            int(entry.key[len(thread_id) + 1 : len(thread_id) + 1 + _SEQ_DIGITS])
            for entry in self._driver.scan(FORK_NS, prefix=f"{thread_id}/")
        }
        pins = {
            entry.key[len(thread_id) + 1 :]
            for entry in self._driver.scan(CKPT_PIN_NS, prefix=f"{thread_id}/")
        }
        records = [rec for rec, _ in self._scan(thread_id, page=512)]
        report, doomed = plan_prune(
            thread_id,
            [(r.id, r.seq, r.created_at, r.label) for r in records],
            now=self._clock.now(),
            keep_last=keep_last,
            older_than=older_than,
            keep_labeled=keep_labeled,
            fork_seqs=forks,
            pinned=pins,
            dry_run=dry_run,
        )
        if dry_run or not doomed:
            return report
        ops: list[_DeleteOp] = []
        for cp_id, seq in doomed:
            slot = _slot(thread_id, seq)
            ops.extend(_DeleteOp(CKPT_NS, e.key) for e in self._driver.scan(CKPT_NS, prefix=slot + "/"))
            ops.append(_DeleteOp(CKPT_NS, slot))
            ops.append(_DeleteOp(CKPT_ID_NS, cp_id))
            self._locations.pop(cp_id, None)
            self._recent.pop(cp_id, None)
        for i in range(0, len(ops), _DELETE_BATCH):
            self._driver.batch(ops[i : i + _DELETE_BATCH])
        self._notify(thread_id, report.removed, on_removed)
        return report

    def delete(self, checkpoint_id: str) -> None:
        """Remove one checkpoint and its pending writes (a labeled one too: this is explicit).

        Refused with ValidationError for the thread's head (restore another checkpoint first),
        a pinned checkpoint (unpin it first) and one a fork starts from; with RuntimeBusyError
        while a live lease holds the thread. Later checkpoints stay readable: their parent link
        may name the removed id, and history skips it. Blobs are freed by gc; removal listeners
        are called with the id."""
        rec = self._record_of(checkpoint_id)
        thread_id = rec.thread_id
        self._leases.check_free(thread_id, "delete a checkpoint of")
        head, _ = self._head(thread_id)
        if head is not None and head.id == rec.id:
            raise ValidationError(
                f"checkpoint {rec.id} is the head of thread {thread_id}; restore another checkpoint first"
            )
        slot = _slot(thread_id, rec.seq)
        if any(True for _ in self._driver.scan(FORK_NS, prefix=slot + "/", limit=1)):
            raise ValidationError(f"checkpoint {rec.id} cannot be deleted: a fork starts from it")
        if self._driver.get(CKPT_PIN_NS, f"{thread_id}/{rec.id}") is not None:
            raise ValidationError(f"checkpoint {rec.id} is pinned; unpin it first")
        ops: list[_DeleteOp] = [
            _DeleteOp(CKPT_NS, e.key) for e in self._driver.scan(CKPT_NS, prefix=slot + "/")
        ]
        ops += [_DeleteOp(CKPT_NS, slot), _DeleteOp(CKPT_ID_NS, rec.id)]
        for i in range(0, len(ops), _DELETE_BATCH):
            self._driver.batch(ops[i : i + _DELETE_BATCH])
        self._locations.pop(rec.id, None)
        self._recent.pop(rec.id, None)
        self._notify(thread_id, (rec.id,), None)

    def _notify(self, thread_id: str, removed: tuple[str, ...], extra: RemovalListener | None) -> None:
        if not removed:
            return
        self._telemetry.count("checkpoint.removed", len(removed))
        for listener in [*self._listeners, *([extra] if extra else [])]:
            listener(thread_id, removed)

    def gc(self, *, grace: timedelta | None = None, dry_run: bool = False) -> GcReport:
        """Collect blobs nothing references (checkpoints, pending writes, and the roots every
        repository registers in :mod:`runtime_persistence.checkpoint.gc`) once older than ``grace``
        (default one hour), plus dangling id entries and records of threads that no longer exist.
        Safe against concurrent writers: see :func:`runtime_persistence.checkpoint.gc.collect`."""
        from runtime_persistence.checkpoint.gc import collect

        return collect(self._driver, grace=grace, dry_run=dry_run, clock=self._clock, serializer=self._ser)

    # raw access for export/import and gc (same package) -----------------------------------------
    def _raw_thread_ids(self) -> Iterator[str]:
        for entry in self._driver.scan(THREAD_NS):
            yield entry.key


def _unchecked(cls: type[_T], **fields: Any) -> _T:
    """An instance of a frozen slots dataclass built from already-validated fields."""
    obj = object.__new__(cls)
    for name, value in fields.items():
        object.__setattr__(obj, name, value)
    return obj


def diff_states(old: Any, new: Any) -> builtins.list[DiffEntry]:
    """Path-level differences between two plain-data values. Paths join dict keys and list
    indexes with ``/`` (``messages/3/content``); ``~`` and ``/`` inside keys are escaped as ``~0``
    and ``~1`` (JSON Pointer). Lists compare position by position; extra items are added/removed."""
    out: list[DiffEntry] = []

    def esc(key: str) -> str:
        return key.replace("~", "~0").replace("/", "~1")

    def walk(path: str, a: Any, b: Any) -> None:
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for k in a:
                p = f"{path}/{esc(k)}" if path else esc(k)
                if k in b:
                    walk(p, a[k], b[k])
                else:
                    out.append(DiffEntry(p, DiffKind.REMOVED, old=a[k]))
            for k in b:
                if k not in a:
                    p = f"{path}/{esc(k)}" if path else esc(k)
                    out.append(DiffEntry(p, DiffKind.ADDED, new=b[k]))
        elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            for i in range(max(len(a), len(b))):
                p = f"{path}/{i}" if path else str(i)
                if i >= len(b):
                    out.append(DiffEntry(p, DiffKind.REMOVED, old=a[i]))
                elif i >= len(a):
                    out.append(DiffEntry(p, DiffKind.ADDED, new=b[i]))
                else:
                    walk(p, a[i], b[i])
        elif type(a) is not type(b) or a != b:
            out.append(DiffEntry(path, DiffKind.CHANGED, old=a, new=b))

    walk("", old, new)
    return out
