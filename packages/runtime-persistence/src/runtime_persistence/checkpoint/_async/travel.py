"""Time travel over checkpoints: fork, restore, replay and diff. Written once as async code;
``_sync/travel.py`` is generated from it."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from runtime_core import (
    Checkpoint,
    CheckpointSource,
    DiffEntry,
    NotFoundError,
    Thread,
    ValidationError,
    new_id,
    validate_id,
)

from runtime_persistence.checkpoint._async.reads import _AsyncReads
from runtime_persistence.checkpoint._records import (
    FORK_NS,
    THREAD_NS,
    Head,
    Record,
    ThreadRecord,
    WriteRecord,
    slot_key,
)
from runtime_persistence.checkpoint._shared import derived_record, diff_states, thread_of
from runtime_persistence.checkpoint._state import EncodedState

__all__ = ["_AsyncTravel"]

_Path = builtins.list[tuple[Record, builtins.list[WriteRecord]]]


class _AsyncTravel(_AsyncReads):
    """Fork, restore, replay and diff of :class:`AsyncCheckpoints`."""

    async def fork(
        self, checkpoint_id: str, *, name: str = "", metadata: Mapping[str, Any] | None = None
    ) -> Thread:
        """A new thread starting from ``checkpoint_id`` (of any thread): its first checkpoint
        (``source=fork``) has that checkpoint's state and it as parent; the thread records
        ``forked_from`` and ``parent_thread_id``. The source checkpoint is then protected from
        retention for as long as the fork exists."""
        src = await self._record_of(checkpoint_id)
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
        await self._driver.put(FORK_NS, f"{slot_key(src.thread_id, src.seq)}/{thread.id}", b"\x01")
        trec = ThreadRecord(thread.id, name, thread.metadata, src.thread_id, src.id, now, now)
        await self._driver.put(
            THREAD_NS, thread.id, self._ser.dumps(trec, at=(THREAD_NS, thread.id)), if_absent=True
        )
        rec = derived_record(
            src,
            id=new_id(),
            thread_id=thread.id,
            parent_id=src.id,
            seq=0,
            source=CheckpointSource.FORK,
            at=now,
            metadata={"forked_from": src.id},
        )
        await self._commit(rec, EncodedState(rec.channels, [], []), None)
        return thread_of(trec, Head(rec.id, 0, rec.step, now))

    async def restore(self, checkpoint_id: str) -> Checkpoint:
        """Make ``checkpoint_id`` current again by writing a new head (``source=restore``, its
        parent the current head) with that checkpoint's state, workspace and artifacts. Nothing
        is deleted, so a restore can itself be undone. Raises RuntimeBusyError (naming the
        holder) while a live lease holds the thread; ConflictError if the head moved meanwhile."""
        src = await self._record_of(checkpoint_id)
        await self._leases.check_free(src.thread_id, "restore")
        head, version = await self._head(src.thread_id)
        if head is None:
            raise NotFoundError(f"thread {src.thread_id} not found")
        rec = derived_record(
            src,
            id=new_id(),
            thread_id=src.thread_id,
            parent_id=head.id,
            seq=head.seq + 1,
            source=CheckpointSource.RESTORE,
            at=self._clock.now(),
            metadata={"restored_from": src.id},
        )
        await self._commit(rec, EncodedState(rec.channels, [], []), version)
        return await self._checkpoint(rec)

    async def replay(
        self,
        start_id: str,
        end_id: str | None = None,
        *,
        reverse: bool = False,
        callback: Callable[[Checkpoint], None] | None = None,
    ) -> AsyncIterator[Checkpoint]:
        """The checkpoints on the lineage between ``start_id`` and ``end_id`` (default: the head
        of start's thread), both included, from start to end: forward in time when start is the
        ancestor, backward when it is the descendant. ``reverse`` yields from end to start
        instead. ``callback`` is called with each checkpoint just before it is yielded (consume
        the iterator to drive it). Raises ValidationError when neither is an ancestor of the other."""
        start = await self._record_of(start_id)
        if end_id is None:
            head, _ = await self._head(start.thread_id)
            end_id = head.id if head else start.id
        validate_id(end_id, "end checkpoint id")
        path = await self._path(end_id, start_id)  # newest first, end ... start: start is older
        if path is not None:
            path.reverse()  # start ... end
        else:
            path = await self._path(start_id, end_id)  # start ... end, start is newer
            if path is None:
                raise ValidationError(
                    f"checkpoints {start_id} and {end_id} are not on one lineage (neither is an ancestor of the other)"
                )
        if reverse:
            path.reverse()
        return self._replay_iter(path, callback)

    async def _replay_iter(
        self, path: _Path, callback: Callable[[Checkpoint], None] | None
    ) -> AsyncIterator[Checkpoint]:
        for rec, writes in path:
            cp = await self._checkpoint(rec, writes)
            if callback is not None:
                callback(cp)
            yield cp

    async def _path(self, young: str, old: str) -> _Path | None:
        out: _Path = []
        old_loc = await self._locate(old)
        async for rec, writes in self._lineage(young):
            out.append((rec, writes))
            if rec.id == old:
                return out
            if rec.thread_id == old_loc[0] and rec.seq < old_loc[1]:
                return None
        return None

    async def diff(self, a: str, b: str) -> builtins.list[DiffEntry]:
        """Path-level differences from checkpoint ``a``'s state to ``b``'s (any two threads)."""
        return diff_states((await self.get(a)).state, (await self.get(b)).state)
