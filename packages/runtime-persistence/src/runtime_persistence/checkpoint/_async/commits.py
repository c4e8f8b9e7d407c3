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

from runtime_persistence.checkpoint._async.core import _AsyncCore
from runtime_persistence.checkpoint._records import (
    CKPT_NS,
    Head,
    Record,
    WriteRecord,
    slot_key,
    write_key,
)
from runtime_persistence.checkpoint._shared import record_for
from runtime_persistence.checkpoint._state import iter_blob_refs

__all__ = ["_AsyncCommits"]


class _AsyncCommits(_AsyncCore):
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
    ) -> Checkpoint:
        """Write a checkpoint after ``parent_id`` (default: the thread's head) and make it the head.

        ``step`` defaults to the parent's step + 1 (0 for the first checkpoint). When this
        returns, the checkpoint is stored with the driver's durability and is the head. Raises
        ConflictError when the head is not ``parent_id`` (or moved while saving: re-read the head
        and decide again), NotFoundError for an unknown thread, ValidationError for bad input
        (nothing is written)."""
        head, version = await self._head(thread_id)
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
        )
        known = await self._known_blobs(head)
        encoded = self._channels.encode(cp.state, known)
        rec = record_for(cp, head.seq + 1 if head else 0, encoded.refs)
        await self._commit(rec, encoded, version)
        self._telemetry.count("checkpoint.saved")
        return cp

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
        thread_id, seq = await self._locate(checkpoint_id)
        slot = slot_key(thread_id, seq)
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
