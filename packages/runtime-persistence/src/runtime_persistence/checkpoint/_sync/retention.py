# Generated from packages/runtime-persistence/src/runtime_persistence/checkpoint/_async/retention.py by scripts/gen_sync.py: edit that file and rerun the script.
"""Retention of checkpoints: pins, prune, delete of one checkpoint, and garbage collection.
Written once as async code; ``_sync/retention.py`` is generated from it."""

from __future__ import annotations

from datetime import timedelta

from runtime_core import Delete as _DeleteOp
from runtime_core import GcReport, PruneReport, ValidationError

from runtime_persistence.checkpoint._records import (
    CKPT_PIN_NS,
    FORK_NS,
    SEQ_DIGITS,
    lane,
    lane_of,
    slot_key,
)
from runtime_persistence.checkpoint._shared import DELETE_BATCH, RemovalListener, check_namespace
from runtime_persistence.checkpoint._sync.keyed import _Keyed
from runtime_persistence.checkpoint.retention import plan_prune

__all__ = ["_Retention"]


class _Retention(_Keyed):
    """Pins, prune, delete and gc of :class:`Checkpoints`."""

    def pin(self, checkpoint_id: str, reason: str = "pinned") -> None:
        """Protect a checkpoint from retention (labeled checkpoints are protected already)."""
        rec = self._record_of(checkpoint_id)
        key = f"{rec.thread_id}/{rec.id}"
        self._driver.put(CKPT_PIN_NS, key, self._ser.dumps(reason, at=(CKPT_PIN_NS, key)))

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
        namespace: str = "",
    ) -> PruneReport:
        """Remove old checkpoints of a thread: those beyond the newest ``keep_last`` and (when
        given) created more than ``older_than`` ago. Never removes the head, a pinned checkpoint,
        a labeled one (unless ``keep_labeled=False``), or one a fork starts from. Refused with
        RuntimeBusyError while a live lease holds the thread. Later checkpoints stay readable;
        their parent link may name a removed id, and history skips it. Blobs are freed by gc.
        ``on_removed`` (and every removal listener) is called with the removed ids. ``namespace``
        prunes one of the thread's checkpoint namespaces (each keeps its own head)."""
        self._thread_rec(thread_id)
        lane_ = lane(thread_id, check_namespace(namespace))
        self._leases.check_free(thread_id, "prune")
        start = len(thread_id) + 1
        forks = {
            int(entry.key[start : start + SEQ_DIGITS])
            for entry in self._driver.scan(FORK_NS, prefix=f"{thread_id}/")
        }
        pins = {entry.key[start:] for entry in self._driver.scan(CKPT_PIN_NS, prefix=f"{thread_id}/")}
        records = [rec for rec, _ in self._scan(lane_, page=512)]
        by_id = {r.id: r for r in records}
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
        for cp_id, _seq in doomed:
            ops.extend(self._removal_ops(by_id[cp_id]))
        for i in range(0, len(ops), DELETE_BATCH):
            self._driver.batch(ops[i : i + DELETE_BATCH])
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
        head, _ = self._head(lane_of(rec))
        if head is not None and head.id == rec.id:
            raise ValidationError(
                f"checkpoint {rec.id} is the head of thread {thread_id}; restore another checkpoint first"
            )
        slot = slot_key(lane_of(rec), rec.seq)
        for _ in self._driver.scan(FORK_NS, prefix=slot + "/", limit=1):
            raise ValidationError(f"checkpoint {rec.id} cannot be deleted: a fork starts from it")
        if self._driver.get(CKPT_PIN_NS, f"{thread_id}/{rec.id}") is not None:
            raise ValidationError(f"checkpoint {rec.id} is pinned; unpin it first")
        ops = self._removal_ops(rec)
        for i in range(0, len(ops), DELETE_BATCH):
            self._driver.batch(ops[i : i + DELETE_BATCH])
        self._notify(thread_id, (rec.id,), None)

    def gc(self, *, grace: timedelta | None = None, dry_run: bool = False) -> GcReport:
        """Collect blobs nothing references (checkpoints, pending writes, and the roots every
        repository registers in :mod:`runtime_persistence.checkpoint.gc`) once older than ``grace``
        (default one hour), plus dangling id entries and records of threads that no longer exist.
        Safe against concurrent writers: see :func:`runtime_persistence.checkpoint.gc.collect`."""
        from runtime_persistence.checkpoint._sync.gc import collect

        return collect(self._driver, grace=grace, dry_run=dry_run, clock=self._clock, serializer=self._ser)
