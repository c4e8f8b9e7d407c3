# Generated from packages/runtime-persistence/src/runtime_persistence/checkpoint/_async/threads.py by scripts/gen_sync.py: edit that file and rerun the script.
"""Threads of :class:`Checkpoints`: create, read, list, rename, update, delete, copy.
Written once as async code; ``_sync/threads.py`` is generated from it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from runtime_core import ConflictError, NotFoundError, Put, Thread, new_id, validate_id
from runtime_core import Delete as _DeleteOp

from runtime_persistence.checkpoint._records import (
    CKPT_ID_NS,
    CKPT_NS,
    CKPT_PIN_NS,
    CKPT_WRITE_NS,
    FORK_NS,
    HEAD_NS,
    THREAD_KEY_NS,
    THREAD_NS,
    Head,
    IdEntry,
    Record,
    ThreadKey,
    ThreadRecord,
    is_record_key,
    keyed_write_prefix,
    lane,
    slot_key,
    thread_key_key,
    write_key,
)
from runtime_persistence.checkpoint._shared import (
    DELETE_BATCH,
    thread_of,
)
from runtime_persistence.checkpoint._sync.keyed import _Keyed

__all__ = ["_Threads"]


class _Threads(_Keyed):
    """The thread operations of :class:`Checkpoints`."""

    def create_thread(
        self,
        name: str = "",
        *,
        metadata: Mapping[str, Any] | None = None,
        thread_id: str | None = None,
        external_key: str | None = None,
    ) -> Thread:
        """Create an empty thread, with a new id unless ``thread_id`` is given. Raises
        ConflictError if ``thread_id`` or ``external_key`` (a caller-chosen id, see
        :meth:`get_or_create_thread`) is taken, ValidationError if ``thread_id`` is not a
        well-formed id (an empty string included: it is refused, never replaced by a new id)."""
        if thread_id is not None:
            validate_id(thread_id, "thread id")
        now = self._clock.now()
        thread = Thread(
            id=new_id() if thread_id is None else thread_id,
            created_at=now,
            updated_at=now,
            name=name,
            metadata=dict(metadata or {}),
            external_key=external_key,
        )
        rec = ThreadRecord(thread.id, thread.name, thread.metadata, None, None, now, now, external_key)
        ops: list[Put | _DeleteOp] = [
            Put(THREAD_NS, thread.id, self._ser.dumps(rec, at=(THREAD_NS, thread.id)), if_absent=True)
        ]
        if external_key is not None:
            tkey = thread_key_key(external_key)
            key_entry = self._ser.dumps(ThreadKey(external_key, thread.id), at=(THREAD_KEY_NS, tkey))
            ops.insert(0, Put(THREAD_KEY_NS, tkey, key_entry, if_absent=True))
        try:
            self._driver.batch(ops)
        except ConflictError:
            raise ConflictError(
                f"thread {thread.id} (external key {external_key!r:.80}) already exists"
            ) from None
        self._telemetry.count("checkpoint.thread.created")
        return thread

    def get_thread(self, thread_id: str) -> Thread:
        """The thread with its current head. Raises NotFoundError."""
        rec, _ = self._thread_rec(thread_id)
        head, _ = self._head(thread_id)
        return thread_of(rec, head)

    def _update_thread(self, thread_id: str, change: Callable[[ThreadRecord], ThreadRecord]) -> Thread:
        for _ in range(100):
            rec, version = self._thread_rec(thread_id)
            new = change(rec)
            try:
                self._driver.put(
                    THREAD_NS, thread_id, self._ser.dumps(new, at=(THREAD_NS, thread_id)), if_version=version
                )
            except ConflictError:
                continue
            head, _ = self._head(thread_id)
            return thread_of(new, head)
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

        def change(rec: ThreadRecord) -> ThreadRecord:
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
        keys, removed = self._lane_ops(thread_id)
        if rec.external_key is not None:
            keys.append(_DeleteOp(THREAD_KEY_NS, thread_key_key(rec.external_key)))
        for entry in self._driver.scan(CKPT_NS, prefix=f"{thread_id}/"):
            keys.append(_DeleteOp(CKPT_NS, entry.key))
            if is_record_key(entry.key, thread_id):
                rec_id = self._load(entry.value, Record, CKPT_NS, entry.key).id
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
                keys.append(_DeleteOp(FORK_NS, f"{slot_key(src_thread, src_seq)}/{thread_id}"))
            except NotFoundError:
                pass
        for i in range(0, len(keys), DELETE_BATCH):
            self._driver.batch(keys[i : i + DELETE_BATCH])
        self._notify(thread_id, tuple(removed), None)

    def copy_thread(
        self, thread_id: str, *, name: str | None = None, external_key: str | None = None
    ) -> Thread:
        """A new thread holding a copy of every checkpoint of every namespace (new ids, same
        states, labels, external keys and pending writes; states share their blobs, so a copy
        costs only records). The copy keeps the source's fork origin and takes ``external_key``
        (ConflictError if taken). The new thread appears only once it is complete."""
        src, _ = self._thread_rec(thread_id)
        now = self._clock.now()
        new = ThreadRecord(
            new_id(),
            src.name if name is None else name,
            dict(src.metadata),
            src.parent_thread_id,
            src.forked_from,
            now,
            now,
            external_key,
        )
        Thread(id=new.id, created_at=now, updated_at=now, name=new.name, external_key=external_key)
        if external_key is not None and self.find_thread(external_key) is not None:
            raise ConflictError(f"a thread with external key {external_key!r:.80} already exists")
        if src.forked_from is not None:
            src_thread, src_seq = self._locate(src.forked_from)
            self._driver.put(FORK_NS, f"{slot_key(src_thread, src_seq)}/{new.id}", b"\x01")
        root_head: Head | None = None
        for namespace in self.namespaces(thread_id):
            src_lane, dst_lane = lane(thread_id, namespace), lane(new.id, namespace)
            id_map: dict[str, str] = {}
            head: Head | None = None
            for rec, writes in self._scan(src_lane, reverse=False, page=256):
                copy_id = new_id()
                id_map[rec.id] = copy_id
                parent = id_map.get(rec.parent_id, rec.parent_id) if rec.parent_id else None
                copied = msgspec.structs.replace(rec, id=copy_id, thread_id=new.id, parent_id=parent)
                slot = slot_key(dst_lane, rec.seq)
                ops: list[Put | _DeleteOp] = [
                    Put(
                        CKPT_ID_NS,
                        copy_id,
                        self._ser.dumps(IdEntry(new.id, rec.seq, namespace), at=(CKPT_ID_NS, copy_id)),
                        if_absent=True,
                    ),
                    *(self._indexes(copied, first=head is None)),
                    Put(CKPT_NS, slot, self._ser.dumps(copied, at=(CKPT_NS, slot)), if_absent=True),
                ]
                for w in writes:
                    wkey = write_key(slot, w.task_id, w.channel)
                    ops.append(Put(CKPT_NS, wkey, self._ser.dumps(w, at=(CKPT_NS, wkey))))
                if rec.key is not None:
                    src_prefix = keyed_write_prefix(src_lane, rec.key)
                    dst_prefix = keyed_write_prefix(dst_lane, rec.key)
                    for e in self._driver.scan(CKPT_WRITE_NS, prefix=src_prefix):
                        row = self._keyed_row(e.key, e.value)
                        kkey = dst_prefix + e.key[len(src_prefix) :]  # the same task and index
                        ops.append(Put(CKPT_WRITE_NS, kkey, self._ser.dumps(row, at=(CKPT_WRITE_NS, kkey))))
                self._driver.batch(ops)
                head = Head(copy_id, rec.seq, rec.step, rec.created_at)
            if head is not None:
                self._driver.put(
                    HEAD_NS, dst_lane, self._ser.dumps(head, at=(HEAD_NS, dst_lane)), if_absent=True
                )
            if not namespace:
                root_head = head
        final: list[Put | _DeleteOp] = [
            Put(THREAD_NS, new.id, self._ser.dumps(new, at=(THREAD_NS, new.id)), if_absent=True)
        ]
        if external_key is not None:
            tkey = thread_key_key(external_key)
            key_entry = self._ser.dumps(ThreadKey(external_key, new.id), at=(THREAD_KEY_NS, tkey))
            final.insert(0, Put(THREAD_KEY_NS, tkey, key_entry, if_absent=True))
        self._driver.batch(final)
        return thread_of(new, root_head)
