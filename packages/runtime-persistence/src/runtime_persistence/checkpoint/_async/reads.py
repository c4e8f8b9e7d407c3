"""Reading checkpoints: one by id, the head, a page of a thread, the lineage (history).
Written once as async code; ``_sync/reads.py`` is generated from it."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Mapping
from typing import Any

from runtime_core import Checkpoint, CorruptionError, NotFoundError, ValidationError, validate_id

from runtime_persistence.checkpoint._async.core import _AsyncCore
from runtime_persistence.checkpoint._records import CKPT_ID_NS, Record, WriteRecord, lane, lane_of, slot_key
from runtime_persistence.checkpoint._shared import check_filter, check_limit, check_namespace, matches

__all__ = ["_AsyncReads"]


class _AsyncReads(_AsyncCore):
    """The read operations of :class:`AsyncCheckpoints`."""

    async def get(self, checkpoint_id: str) -> Checkpoint:
        """The checkpoint with its state and pending writes. Raises NotFoundError; CorruptionError
        if its stored bytes are damaged."""
        rec, writes = await self._read(checkpoint_id)
        return await self._checkpoint(rec, writes)

    async def latest(self, thread_id: str, *, namespace: str = "") -> Checkpoint | None:
        """The head of the thread (of one of its checkpoint namespaces; None while empty), in
        constant time: one read of the head key and one of its record. Raises NotFoundError for
        an unknown thread."""
        lane_ = lane(validate_id(thread_id, "thread id"), check_namespace(namespace))
        head, _ = await self._head(lane_)
        if head is None:
            await self._thread_rec(thread_id)
            return None
        found = await self._read_slot(lane_, head.seq)
        if found is None:
            raise CorruptionError(f"the head {head.id} of thread {thread_id} has no record")
        return await self._checkpoint(*found)

    async def list(
        self,
        thread_id: str,
        *,
        before: str | None = None,
        after: str | None = None,
        limit: int = 50,
        metadata: Mapping[str, Any] | None = None,
        namespace: str = "",
    ) -> builtins.list[Checkpoint]:
        """Checkpoints of a thread (of one of its checkpoint namespaces), newest first, strictly
        older than ``before`` and strictly newer than ``after`` (checkpoint ids of this thread),
        at most ``limit``, whose metadata has every key/value of ``metadata``. Reads about
        ``limit`` records, whatever the length of the thread (more only when a metadata filter
        rejects records)."""
        check_limit(limit)
        wanted = check_filter(metadata)
        thread_key = validate_id(thread_id, "thread id")
        thread_id = lane(thread_key, check_namespace(namespace))
        upper = await self._bound(thread_id, before, "before")
        lower = await self._bound(thread_id, after, "after")
        if limit == 0:
            return []
        out: builtins.list[Checkpoint] = []
        page = limit + 1 if wanted is None else max(64, limit)
        async for rec, writes in self._scan(
            thread_id, before=upper, after=None if lower is None else lower + "0", page=page
        ):
            if matches(rec.metadata, wanted):
                out.append(await self._checkpoint(rec, writes))
                if len(out) == limit:
                    break
        if not out:
            await self._thread_rec(thread_key)  # NotFoundError for an unknown thread
        return out

    async def _bound(self, thread_id: str, checkpoint_id: str | None, what: str) -> str | None:
        if checkpoint_id is None:
            return None
        owner, seq = await self._locate(checkpoint_id)
        if owner != thread_id:
            raise ValidationError(f"{what}={checkpoint_id} is a checkpoint of another thread ({owner})")
        return slot_key(thread_id, seq)

    async def _lineage(self, checkpoint_id: str) -> AsyncIterator[tuple[Record, builtins.list[WriteRecord]]]:
        rec, writes = await self._read(checkpoint_id)
        yield rec, writes
        seen = {rec.thread_id}
        want = rec.parent_id
        while True:
            async for item in self._scan(lane_of(rec), before=slot_key(lane_of(rec), rec.seq), page=64):
                if want is None:
                    break  # a root: what is older in the slot order is another line
                if item[0].id != want and await self._driver.get(CKPT_ID_NS, want) is not None:
                    continue  # a branch saved after the parent: not on this lineage
                yield item  # the parent, or the slot-order predecessor of a pruned parent
                want = item[0].parent_id
            try:
                thread_rec, _ = await self._thread_rec(rec.thread_id)
            except NotFoundError:
                return
            origin = thread_rec.forked_from
            if origin is None:
                return
            try:
                rec, writes = await self._read(origin)
            except NotFoundError:
                return
            if rec.thread_id in seen:
                return
            seen.add(rec.thread_id)
            yield rec, writes
            want = rec.parent_id

    async def history(self, checkpoint_id: str) -> AsyncIterator[Checkpoint]:
        """The checkpoint, then its lineage back to the root, newest first, crossing into the
        thread a fork came from. Within a thread the lineage follows parent links, so the
        checkpoints of a branch saved from an older one (``save(branch_from=...)``) are not
        part of another line's history; a pruned parent is skipped (the walk goes on from its
        slot-order predecessor). Lazy: states are read as the iterator advances."""
        async for rec, writes in self._lineage(checkpoint_id):
            yield await self._checkpoint(rec, writes)
