"""What frameworks bring to :class:`AsyncCheckpoints`: their own ids (external keys of threads
and checkpoints, unique and indexed), checkpoint namespaces inside a thread, pending writes
addressed by a checkpoint's key (accepted before the checkpoint is stored), indexed metadata
filters across threads, and deleting a run's newest checkpoints. Written once as async code;
``_sync/keyed.py`` is generated from it."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from runtime_core import (
    Checkpoint,
    ConflictError,
    NotFoundError,
    PendingWrite,
    Put,
    Thread,
    ValidationError,
    new_id,
    validate_id,
)
from runtime_core import Delete as _DeleteOp

from runtime_persistence.checkpoint._async.core import _AsyncCore
from runtime_persistence.checkpoint._records import (
    CKPT_ID_NS,
    CKPT_KEY_NS,
    CKPT_META_NS,
    CKPT_NS,
    CKPT_WRITE_NS,
    HEAD_NS,
    NS_NS,
    THREAD_KEY_NS,
    THREAD_NS,
    Head,
    IdEntry,
    KeyedWrite,
    KeyedWritePack,
    Record,
    ThreadKey,
    ThreadRecord,
    ckpt_key_key,
    is_keyed_pack_key,
    keyed_pack_key,
    keyed_write_key,
    keyed_write_prefix,
    lane,
    lane_of,
    meta_index_keys,
    meta_index_prefix,
    slot_key,
    thread_key_key,
)
from runtime_persistence.checkpoint._shared import (
    DELETE_BATCH,
    check_filter,
    check_limit,
    check_namespace,
    matches,
    thread_of,
)

__all__ = ["_AsyncKeyed"]


def _check_key(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise ValidationError(f"{what} must be a non-empty str of at most 1024 characters, got {value!r:.80}")
    return value


class _AsyncKeyed(_AsyncCore):
    """External keys, namespaces, keyed pending writes and cross-thread listing."""

    # threads by external key -------------------------------------------------------------------
    async def find_thread(self, external_key: str) -> Thread | None:
        """The thread whose external key is ``external_key`` (one indexed read), or None."""
        tkey = _key_of_thread(external_key)
        entry = await self._driver.get(THREAD_KEY_NS, tkey)
        if entry is None:
            return None
        owner = self._load(entry.value, ThreadKey, THREAD_KEY_NS, tkey)
        if owner.external_key != external_key:  # a hash collision: never silently wrong
            raise ConflictError(f"thread key {external_key!r:.80} collides with {owner.external_key!r:.80}")
        found = await self._driver.get(THREAD_NS, owner.thread_id)
        if found is None:
            return None
        rec = self._load(found.value, ThreadRecord, THREAD_NS, owner.thread_id)
        head, _ = await self._head(rec.id)
        return thread_of(rec, head)

    async def get_or_create_thread(
        self, external_key: str, *, name: str = "", metadata: Mapping[str, Any] | None = None
    ) -> Thread:
        """The thread with this external key, created if there is none. Atomic across processes:
        concurrent callers with one key all get the same thread (the key's index entry is
        written create-only, before or with the thread record)."""
        _check_key(external_key, "thread external key")
        for _ in range(10):
            found = await self.find_thread(external_key)
            if found is not None:
                return found
            tkey = _key_of_thread(external_key)
            entry = await self._driver.get(THREAD_KEY_NS, tkey)
            thread_id = (
                self._load(entry.value, ThreadKey, THREAD_KEY_NS, tkey).thread_id if entry else new_id()
            )
            now = self._clock.now()
            thread = Thread(
                id=thread_id,
                created_at=now,
                updated_at=now,
                name=name,
                metadata=dict(metadata or {}),
                external_key=external_key,
            )
            rec = ThreadRecord(thread.id, thread.name, thread.metadata, None, None, now, now, external_key)
            ops: list[Put | _DeleteOp] = [
                Put(
                    THREAD_KEY_NS,
                    tkey,
                    self._ser.dumps(ThreadKey(external_key, thread.id), at=(THREAD_KEY_NS, tkey)),
                    if_absent=entry is None,
                    if_version=None if entry is None else entry.version,
                ),
                Put(THREAD_NS, thread.id, self._ser.dumps(rec, at=(THREAD_NS, thread.id)), if_absent=True),
            ]
            try:
                await self._driver.batch(ops)
            except ConflictError:
                continue  # another process created it: read theirs
            self._telemetry.count("checkpoint.thread.created")
            return thread
        raise ConflictError(f"could not get or create thread {external_key!r:.80}: too much contention")

    # namespaces ----------------------------------------------------------------------------------
    async def namespaces(self, thread_id: str) -> builtins.list[str]:
        """The checkpoint namespaces of a thread that hold (or held) checkpoints, "" first."""
        validate_id(thread_id, "thread id")
        out = [""] if await self._driver.get(HEAD_NS, thread_id) is not None else []
        out += sorted(
            [
                self._load(e.value, str, NS_NS, e.key)
                async for e in self._driver.scan(NS_NS, prefix=f"{thread_id}+")
            ]
        )
        return out

    async def _indexes(self, rec: Record, *, first: bool) -> builtins.list[Put]:
        """The index entries written with a new record: its external key (create-only), its
        metadata (when keyed), the namespace registry (first record of a namespace)."""
        out: list[Put] = []
        lane_ = lane_of(rec)
        if rec.key is not None:
            ckey = ckpt_key_key(lane_, rec.key)
            out.append(
                Put(
                    CKPT_KEY_NS,
                    ckey,
                    self._ser.dumps(IdEntry(rec.thread_id, rec.seq, rec.namespace), at=(CKPT_KEY_NS, ckey)),
                    if_absent=True,
                )
            )
            out.extend(
                Put(CKPT_META_NS, k, self._ser.dumps(rec.id, at=(CKPT_META_NS, k)))
                for k in meta_index_keys(rec.metadata, rec.id)
            )
        if first and rec.namespace:
            out.append(Put(NS_NS, f"{lane_}/", self._ser.dumps(rec.namespace, at=(NS_NS, f"{lane_}/"))))
        return out

    async def _check_key_free(self, rec: Record) -> None:
        """After a failed commit: ConflictError naming the key if another checkpoint holds it; a
        stale index entry (a commit that crashed on a driver without atomic batches) is removed."""
        if rec.key is None:
            return
        key = ckpt_key_key(lane_of(rec), rec.key)
        entry = await self._driver.get(CKPT_KEY_NS, key)
        if entry is None:
            return
        loc = self._load(entry.value, IdEntry, CKPT_KEY_NS, key)
        landed_slot = slot_key(lane_of(loc), loc.seq)
        landed = await self._driver.get(CKPT_NS, landed_slot)
        if landed is not None and self._load(landed.value, Record, CKPT_NS, landed_slot).key == rec.key:
            raise ConflictError(
                f"thread {rec.thread_id} namespace {rec.namespace!r:.80} already has a checkpoint "
                f"with key {rec.key!r:.80}"
            )
        await self._driver.delete(CKPT_KEY_NS, key, if_version=entry.version)

    # reads by key --------------------------------------------------------------------------------
    async def _rec_by_key(self, thread_id: str, external_key: str, namespace: str) -> Record | None:
        lane_ = lane(validate_id(thread_id, "thread id"), check_namespace(namespace))
        ckey = ckpt_key_key(lane_, _check_key(external_key, "key"))
        entry = await self._driver.get(CKPT_KEY_NS, ckey)
        if entry is None:
            return None
        loc = self._load(entry.value, IdEntry, CKPT_KEY_NS, ckey)
        slot = slot_key(lane_of(loc), loc.seq)
        found = await self._driver.get(CKPT_NS, slot)
        if found is None:
            return None
        rec = self._load(found.value, Record, CKPT_NS, slot)
        return rec if rec.key == external_key and lane_of(rec) == lane_ else None

    async def get_by_key(self, thread_id: str, external_key: str, *, namespace: str = "") -> Checkpoint:
        """The checkpoint of ``thread_id``/``namespace`` saved with ``external_key``, with its
        pending writes, in two indexed reads. NotFoundError if there is none."""
        rec = await self._rec_by_key(thread_id, external_key, namespace)
        if rec is None:
            raise NotFoundError(f"thread {thread_id} has no checkpoint with key {external_key!r:.80}")
        found = await self._read_slot(lane_of(rec), rec.seq)
        return await self._checkpoint(*(found or (rec, [])))

    async def find_by_key(
        self, thread_id: str, external_key: str, *, namespace: str = ""
    ) -> Checkpoint | None:
        """Like :meth:`get_by_key`, None when there is no such checkpoint."""
        try:
            return await self.get_by_key(thread_id, external_key, namespace=namespace)
        except NotFoundError:
            return None

    async def head_key(self, thread_id: str, *, namespace: str = "") -> tuple[str, str | None] | None:
        """(id, external key) of the head of a thread's namespace, None while it is empty: one
        read of the head key, and of its record unless it was saved or read here recently."""
        head, _ = await self._head(lane(validate_id(thread_id, "thread id"), check_namespace(namespace)))
        if head is None:
            return None
        return head.id, (await self._record_of(head.id)).key

    # pending writes by checkpoint key ------------------------------------------------------------
    async def put_keyed_writes(
        self,
        thread_id: str,
        checkpoint_key: str,
        task_id: str,
        writes: Sequence[tuple[str, Any]],
        *,
        namespace: str = "",
        task_path: str = "",
        special: Mapping[str, int] | None = None,
    ) -> None:
        """Store the writes (channel, value) a task made after the checkpoint with external key
        ``checkpoint_key``, which need not be stored yet: they are durable when this returns, and
        come back as that checkpoint's pending writes once it is. The i-th write has index i;
        a channel in ``special`` (LangGraph's error, interrupt, resume... channels) has the
        fixed index given there instead. Regular writes are first-write-wins per (task, index),
        so a retried task never changes what a crash-surviving write said; a batch made only of
        special channels replaces what those indexes held (a new error replaces the old)."""
        lane_ = lane(validate_id(thread_id, "thread id"), check_namespace(namespace))
        _check_key(checkpoint_key, "checkpoint key")
        special = special or {}
        now = self._clock.now()
        placeholder = new_id()
        replace = bool(writes) and all(ch in special for ch, _ in writes)
        rows: dict[int, tuple[str, Any]] = {}
        for i, (channel, value) in enumerate(writes):
            index = special.get(channel, i)
            PendingWrite(placeholder, task_id, channel, value, now, task_path, index)  # validates
            rows[index] = (channel, value)
        if not rows:
            return
        await self._thread_rec(thread_id)
        if replace:  # special channels only: replace what those indexes held
            await self._driver.batch(
                self._keyed_rows(lane_, checkpoint_key, task_id, task_path, now, rows, create=False)
            )
            return
        # the task's first writes: one create-only packed row, written without reading first
        # (per-index rows stored before it win over it when read, as first-write-wins wants)
        pkey = keyed_pack_key(lane_, checkpoint_key, task_id)
        pack = KeyedWritePack(
            checkpoint_key, task_id, task_path, now, [(i, ch, v) for i, (ch, v) in sorted(rows.items())]
        )
        try:
            # one create-only put (a single statement where a batch would add its own BEGIN/COMMIT)
            await self._driver.put(
                CKPT_WRITE_NS, pkey, self._ser.dumps(pack, at=(CKPT_WRITE_NS, pkey)), if_absent=True
            )
            return
        except ConflictError:
            pass  # the task wrote before (or a concurrent retry of it did): the rest, one per index
        for _ in range(10):
            taken = await self._existing(lane_, checkpoint_key, task_id)
            fresh = {i: w for i, w in rows.items() if i not in taken}
            if not fresh:
                return
            try:
                await self._driver.batch(
                    self._keyed_rows(lane_, checkpoint_key, task_id, task_path, now, fresh, create=True)
                )
                return
            except ConflictError:
                continue  # a concurrent retry of the same task wrote first: keep its writes
        raise ConflictError(f"pending writes of task {task_id!r:.80} kept conflicting; try again")

    def _keyed_rows(
        self,
        lane_: str,
        checkpoint_key: str,
        task_id: str,
        task_path: str,
        now: Any,
        rows: Mapping[int, tuple[str, Any]],
        *,
        create: bool,
    ) -> builtins.list[Put | _DeleteOp]:
        out: list[Put | _DeleteOp] = []
        for index, (channel, value) in rows.items():
            key = keyed_write_key(lane_, checkpoint_key, task_id, index)
            row = KeyedWrite(checkpoint_key, task_id, task_path, index, channel, value, now)
            out.append(
                Put(CKPT_WRITE_NS, key, self._ser.dumps(row, at=(CKPT_WRITE_NS, key)), if_absent=create)
            )
        return out

    async def _existing(self, lane_: str, checkpoint_key: str, task_id: str) -> set[int]:
        """The indexes a task's stored writes after ``checkpoint_key`` hold."""
        prefix = keyed_pack_key(lane_, checkpoint_key, task_id)[:-1]
        taken: set[int] = set()
        async for entry in self._driver.scan(CKPT_WRITE_NS, prefix=prefix):
            if is_keyed_pack_key(entry.key):
                pack = self._load(entry.value, KeyedWritePack, CKPT_WRITE_NS, entry.key)
                taken.update(i for i, _, _ in pack.writes)
            else:
                taken.add(int(entry.key.rsplit("/", 1)[1]) - 2**31)
        return taken

    # listing across threads ----------------------------------------------------------------------
    async def list_all(
        self,
        *,
        metadata: Mapping[str, Any] | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> builtins.list[Checkpoint]:
        """Checkpoints of every thread, newest first (by id), strictly older than the checkpoint
        id ``before``, whose metadata has every key/value of ``metadata``. With a filter on a
        scalar value (str, int, bool) the read goes through the metadata index of keyed
        checkpoints (those saved with an external key), so it reads about ``limit`` matching
        records whatever the size of the store; without a filter it walks checkpoint ids."""
        check_limit(limit)
        wanted = check_filter(metadata)
        if before is not None:
            validate_id(before, "before checkpoint id")
        indexed = [(k, v) for k, v in (wanted or {}).items() if isinstance(v, (str, int, bool))]
        out: list[Checkpoint] = []
        if limit == 0:
            return out
        if indexed:
            prefix = meta_index_prefix(*indexed[0])
            bound = None if before is None else prefix + before
            ids = (
                self._load(e.value, str, CKPT_META_NS, e.key)
                async for e in self._driver.scan(CKPT_META_NS, prefix=prefix, before=bound, reverse=True)
            )
        else:
            ids = (e.key async for e in self._driver.scan(CKPT_ID_NS, before=before, reverse=True))
        async for cp_id in ids:
            try:
                rec, writes = await self._read(cp_id)
            except NotFoundError:
                continue  # an index entry that outlived its checkpoint
            if matches(rec.metadata, wanted):
                out.append(await self._checkpoint(rec, writes))
                if len(out) == limit:
                    break
        return out

    async def ids_by_metadata(self, field: str, value: str | int | bool) -> builtins.list[str]:
        """Ids of keyed checkpoints whose metadata ``field`` equals ``value`` (an index scan)."""
        out: list[str] = []
        async for e in self._driver.scan(CKPT_META_NS, prefix=meta_index_prefix(field, value)):
            cp_id = self._load(e.value, str, CKPT_META_NS, e.key)
            try:
                rec = await self._record_of(cp_id)
            except NotFoundError:
                continue
            if rec.metadata.get(field) == value and type(rec.metadata.get(field)) is type(value):
                out.append(cp_id)
        return out

    # removal -------------------------------------------------------------------------------------
    async def _removal_ops(self, rec: Record) -> builtins.list[_DeleteOp]:
        """Delete operations for a record, its pending writes (both kinds) and its indexes."""
        lane_ = lane_of(rec)
        slot = slot_key(lane_, rec.seq)
        ops = [_DeleteOp(CKPT_NS, e.key) async for e in self._driver.scan(CKPT_NS, prefix=slot + "/")]
        ops += [_DeleteOp(CKPT_NS, slot), _DeleteOp(CKPT_ID_NS, rec.id)]
        if rec.key is not None:
            ops.append(_DeleteOp(CKPT_KEY_NS, ckpt_key_key(lane_, rec.key)))
            ops += [_DeleteOp(CKPT_META_NS, k) for k in meta_index_keys(rec.metadata, rec.id)]
            ops += [
                _DeleteOp(CKPT_WRITE_NS, e.key)
                async for e in self._driver.scan(CKPT_WRITE_NS, prefix=keyed_write_prefix(lane_, rec.key))
            ]
        self._locations.pop(rec.id, None)
        self._recent.pop(rec.id, None)
        self._keyed_seen.pop(rec.id, None)
        return ops

    async def delete_checkpoints(self, checkpoint_ids: Sequence[str]) -> builtins.list[str]:
        """Delete these checkpoints with their pending writes and indexes (LangGraph's
        ``delete_for_runs``: a run's checkpoints, usually the newest of their threads). Where a
        head is deleted, the head moves back to the newest checkpoint left in its namespace by
        compare-and-set, so a writer that saved meanwhile is never undone. Unknown ids are
        skipped; returns the ids deleted. Refused with RuntimeBusyError under a live lease."""
        by_lane: dict[str, list[Record]] = {}
        for cp_id in checkpoint_ids:
            try:
                rec = await self._record_of(cp_id)
            except NotFoundError:
                continue
            by_lane.setdefault(lane_of(rec), []).append(rec)
        deleted: list[str] = []
        for lane_, recs in by_lane.items():
            thread_id = recs[0].thread_id
            await self._leases.check_free(thread_id, "delete checkpoints of")
            ops: list[_DeleteOp] = []
            for rec in recs:
                ops += await self._removal_ops(rec)
            for i in range(0, len(ops), DELETE_BATCH):
                await self._driver.batch(ops[i : i + DELETE_BATCH])
            await self._move_head_back(lane_, {r.id for r in recs})
            deleted += [r.id for r in recs]
            await self._notify(thread_id, tuple(r.id for r in recs), None)
        return deleted

    async def _move_head_back(self, lane_: str, gone: set[str]) -> None:
        for _ in range(100):
            entry = await self._driver.get(HEAD_NS, lane_)
            if entry is None:
                return
            if self._load(entry.value, Head, HEAD_NS, lane_).id not in gone:
                return  # a writer moved it on meanwhile: keep theirs
            newest: Head | None = None
            async for e in self._scan(lane_, page=2):
                rec = e[0]
                newest = Head(rec.id, rec.seq, rec.step, rec.created_at)
                break
            try:
                if newest is None:
                    await self._driver.delete(HEAD_NS, lane_, if_version=entry.version)
                else:
                    await self._driver.put(
                        HEAD_NS, lane_, self._ser.dumps(newest, at=(HEAD_NS, lane_)), if_version=entry.version
                    )
                return
            except ConflictError:
                continue
        raise ConflictError(f"could not move the head of {lane_} back: too much contention")

    async def _lane_ops(self, thread_id: str) -> tuple[builtins.list[_DeleteOp], builtins.list[str]]:
        """Delete operations for every namespace but the thread's own (``thread_id+…``) and for
        the keyed areas of all of them; and the ids of the records they remove."""
        ops: list[_DeleteOp] = []
        removed: list[str] = []
        async for entry in self._driver.scan(CKPT_NS, prefix=f"{thread_id}+"):
            ops.append(_DeleteOp(CKPT_NS, entry.key))
            if entry.key.count("/") == 1:
                rec = self._load(entry.value, Record, CKPT_NS, entry.key)
                removed.append(rec.id)
                ops.append(_DeleteOp(CKPT_ID_NS, rec.id))
                if rec.key is not None:
                    ops += [_DeleteOp(CKPT_META_NS, k) for k in meta_index_keys(rec.metadata, rec.id)]
        async for entry in self._driver.scan(CKPT_NS, prefix=f"{thread_id}/"):
            if entry.key.count("/") == 1:
                rec = self._load(entry.value, Record, CKPT_NS, entry.key)
                if rec.key is not None:
                    ops += [_DeleteOp(CKPT_META_NS, k) for k in meta_index_keys(rec.metadata, rec.id)]
        for ns in (HEAD_NS, NS_NS):
            ops += [_DeleteOp(ns, e.key) async for e in self._driver.scan(ns, prefix=f"{thread_id}+")]
        for ns in (CKPT_KEY_NS, CKPT_WRITE_NS):
            ops += [_DeleteOp(ns, e.key) async for e in self._driver.scan(ns, prefix=thread_id)]
        return ops, removed


def _key_of_thread(external_key: str) -> str:
    return thread_key_key(_check_key(external_key, "thread external key"))
