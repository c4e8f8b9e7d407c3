"""Saving checkpoints and their pending writes (:meth:`AsyncCheckpoints.save`,
:meth:`AsyncCheckpoints.put_writes`). Written once as async code; ``_sync/commits.py`` is
generated from it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime_core import (
    ArtifactRef,
    Checkpoint,
    CheckpointSource,
    ConflictError,
    NotFoundError,
    PendingWrite,
    Put,
    ValidationError,
    WorkspaceRef,
    new_id,
    validate_id,
)
from runtime_core import Delete as _DeleteOp

from runtime_persistence.checkpoint._async.keyed import _AsyncKeyed
from runtime_persistence.checkpoint._records import (
    CKPT_NS,
    Head,
    Record,
    WriteRecord,
    lane,
    lane_of,
    slot_key,
    write_key,
)
from runtime_persistence.checkpoint._shared import check_namespace, record_for
from runtime_persistence.checkpoint._state import iter_blob_refs

__all__ = ["_AsyncCommits"]


class _AsyncCommits(_AsyncKeyed):
    """The write path of :class:`AsyncCheckpoints`: new checkpoints and pending writes."""

    async def save(
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
        namespace: str = "",
        external_key: str | None = None,
        branch_from: str | None = None,
        new_root: bool = False,
    ) -> Checkpoint:
        """Write a checkpoint after ``parent_id`` (default: the thread's head) and make it the head.

        ``step`` defaults to the parent's step + 1 (0 for the first checkpoint). When this
        returns, the checkpoint is stored with the driver's durability and is the head. Raises
        ConflictError when the head is not ``parent_id`` (or moved while saving: re-read the head
        and decide again), NotFoundError for an unknown thread, ValidationError for bad input
        (nothing is written).

        ``namespace`` saves into one of the thread's checkpoint namespaces (each has its own
        head). ``external_key`` is a caller-chosen id, unique in the thread's namespace
        (ConflictError if taken), found again with :meth:`get_by_key`; the checkpoint's top-level
        scalar metadata is then indexed too (:meth:`list_all`). ``branch_from`` saves an explicit
        branch: the parent is that checkpoint (of this thread and namespace) whether or not it is
        the head, the checkpoint is recorded with ``branch=True`` and becomes the head; a
        concurrent writer cannot make it fail, as it claims nothing about the head. ``new_root``
        is a branch from nothing: a checkpoint without a parent in a namespace that may already
        hold checkpoints."""
        if branch_from is not None or new_root:
            if parent_id is not None or (branch_from is not None and new_root):
                raise ValidationError("give one of parent_id (extend the head), branch_from or new_root")
            return await self._save_branch(
                thread_id,
                state,
                branch_from,
                source=source,
                step=step,
                label=label,
                metadata=metadata,
                workspace=workspace,
                artifacts=artifacts,
                namespace=namespace,
                external_key=external_key,
            )
        lane_ = lane(validate_id(thread_id, "thread id"), check_namespace(namespace))
        known_head = self._heads.get(lane_) if self._guarded else None
        if known_head is not None and (parent_id is None or parent_id == known_head[0].id):
            # extend the head this object committed last, unread: the guarded compare-and-set
            # fails if it moved meanwhile, and then the save runs again on the head as read
            try:
                return await self._save_on(
                    thread_id, lane_, known_head[0], known_head[1], known_head[2], state, parent_id,
                    source=source, step=step, label=label, metadata=metadata, workspace=workspace,
                    artifacts=artifacts, namespace=namespace, external_key=external_key,
                )  # fmt: skip
            except ConflictError:
                self._heads.pop(lane_)
        head, version = await self._head(lane_)
        return await self._save_on(
            thread_id, lane_, head, version, None, state, parent_id,
            source=source, step=step, label=label, metadata=metadata, workspace=workspace,
            artifacts=artifacts, namespace=namespace, external_key=external_key,
        )  # fmt: skip

    async def _save_on(
        self,
        thread_id: str,
        lane_: str,
        head: Head | None,
        version: int | None,
        head_guard: bytes | None,
        state: Mapping[str, Any],
        parent_id: str | None,
        *,
        source: CheckpointSource,
        step: int | None,
        label: str | None,
        metadata: Mapping[str, Any] | None,
        workspace: WorkspaceRef | None,
        artifacts: tuple[ArtifactRef, ...],
        namespace: str,
        external_key: str | None,
    ) -> Checkpoint:
        """:meth:`save` after ``head`` at ``version`` (read, or with ``head_guard``: known from
        this object's last commit)."""
        if head is None:
            await self._thread_rec(thread_id)
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
            namespace=namespace,
            external_key=external_key,
        )
        known = await self._known_blobs(head)
        encoded = self._channels.encode(cp.state, known, checked=True)
        rec = record_for(cp, head.seq + 1 if head else 0, encoded.refs)
        indexes = await self._indexes(rec, first=head is None)
        try:
            await self._commit(rec, encoded, version, indexes, checked=True, head_guard=head_guard)
        except ConflictError:
            await self._check_key_free(rec)
            raise
        self._telemetry.count("checkpoint.saved")
        return cp

    async def _save_branch(
        self,
        thread_id: str,
        state: Mapping[str, Any],
        branch_from: str | None,
        *,
        source: CheckpointSource,
        step: int | None,
        label: str | None,
        metadata: Mapping[str, Any] | None,
        workspace: WorkspaceRef | None,
        artifacts: tuple[ArtifactRef, ...],
        namespace: str,
        external_key: str | None,
    ) -> Checkpoint:
        lane_ = lane(validate_id(thread_id, "thread id"), check_namespace(namespace))
        parent = None if branch_from is None else await self._record_of(branch_from)
        if parent is not None and lane_of(parent) != lane_:
            raise ValidationError(
                f"checkpoint {branch_from} is not in thread {thread_id} namespace {namespace!r}"
            )
        if parent is None:
            await self._thread_rec(thread_id)
        cp = Checkpoint(
            id=new_id(),
            thread_id=thread_id,
            parent_id=None if parent is None else parent.id,
            step=(0 if parent is None else parent.step + 1) if step is None else step,
            source=source,
            created_at=self._clock.now(),
            state=dict(state),
            label=label,
            metadata=dict(metadata or {}),
            workspace=workspace,
            artifacts=tuple(artifacts),
            namespace=namespace,
            external_key=external_key,
            branch=True,
        )
        known = set() if parent is None else set(iter_blob_refs(parent.channels))
        encoded = self._channels.encode(cp.state, known, checked=True)
        for _ in range(100):
            head, version = await self._head(lane_)
            rec = record_for(cp, head.seq + 1 if head else 0, encoded.refs)
            indexes = await self._indexes(rec, first=head is None)
            try:
                await self._commit(rec, encoded, version, indexes, checked=True)
            except ConflictError:
                await self._check_key_free(rec)
                continue
            self._telemetry.count("checkpoint.saved")
            return cp
        raise ConflictError(f"thread {thread_id} kept moving while saving a branch; try again")

    async def _known_blobs(self, head: Head | None) -> set[bytes]:
        if head is None:
            return set()
        try:
            return set(iter_blob_refs((await self._record_of(head.id)).channels))
        except NotFoundError:
            return set()

    async def put_writes(self, checkpoint_id: str, task_id: str, writes: Mapping[str, Any]) -> None:
        """Store writes (channel -> value) made by ``task_id`` after ``checkpoint_id``, returned
        with that checkpoint as its pending writes. A write of the same task and channel replaces
        the earlier one, so retrying after a crash is safe. Durable when this returns."""
        lane_, seq = await self._locate(checkpoint_id)
        slot = slot_key(lane_, seq)
        landed = await self._driver.get(CKPT_NS, slot)
        if landed is None or self._load(landed.value, Record, CKPT_NS, slot).id != checkpoint_id:
            raise NotFoundError(f"checkpoint {checkpoint_id} not found")
        if not isinstance(writes, Mapping):
            raise ValidationError("writes must be a mapping of channel name to value")
        now = self._clock.now()
        ops: list[Put | _DeleteOp] = []
        for channel, value in writes.items():
            PendingWrite(checkpoint_id, task_id, channel, value, now)  # validates
            encoded = self._channels.encode({"v": value})
            await self._channels.write_area_blobs(encoded)
            ops.extend(encoded.kv_puts)
            key = write_key(slot, task_id, channel)
            write = WriteRecord(task_id, channel, encoded.refs["v"], now)
            ops.append(Put(CKPT_NS, key, self._ser.dumps(write, at=(CKPT_NS, key))))
        if ops:
            await self._driver.batch(ops)
