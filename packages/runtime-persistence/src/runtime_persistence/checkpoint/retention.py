"""Retention rules: which checkpoints of a thread a prune removes and which it keeps, and why.

Pure decisions over record summaries, so the rules are testable without storage; the store
(:meth:`runtime_persistence.Checkpoints.prune`) applies them."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from runtime_core import PruneReport, ValidationError

__all__ = ["plan_prune"]


def plan_prune(
    thread_id: str,
    records: Sequence[tuple[str, int, datetime, str | None]],
    *,
    now: datetime,
    keep_last: int | None,
    older_than: timedelta | None,
    keep_labeled: bool,
    fork_seqs: Collection[int],
    pinned: Collection[str],
    dry_run: bool,
) -> tuple[PruneReport, list[tuple[str, int]]]:
    """Decide a prune. ``records`` are (id, seq, created_at, label), newest first.

    A checkpoint goes when it is beyond the newest ``keep_last`` (if given) and older than
    ``older_than`` (if given) and nothing protects it. Protected, whatever the rules: the head
    (the newest), pinned checkpoints, labeled ones while ``keep_labeled``, and checkpoints a fork
    starts from. Returns the report and the (id, seq) pairs to delete."""
    if keep_last is None and older_than is None:
        raise ValidationError("prune needs keep_last, older_than or both (otherwise it would remove nothing)")
    if keep_last is not None and (
        isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 0
    ):
        raise ValidationError(f"keep_last must be a non-negative integer, got {keep_last!r:.40}")
    if older_than is not None and (not isinstance(older_than, timedelta) or older_than < timedelta(0)):
        raise ValidationError(f"older_than must be a non-negative timedelta, got {older_than!r:.40}")
    cutoff = now - older_than if older_than is not None else None
    removed: list[str] = []
    kept: list[str] = []
    protected: dict[str, str] = {}
    doomed: list[tuple[str, int]] = []
    for index, (cp_id, seq, created_at, label) in enumerate(records):
        reason: str | None = None
        if index == 0:
            reason = "head"
        elif seq in fork_seqs:
            reason = "fork source"
        elif cp_id in pinned:
            reason = "pinned"
        elif label is not None and keep_labeled:
            reason = f"labeled {label!r}"
        if reason is not None:
            protected[cp_id] = reason
            kept.append(cp_id)
            continue
        within_last = keep_last is not None and index < keep_last
        young = cutoff is not None and created_at >= cutoff
        if within_last or young:
            kept.append(cp_id)
        else:
            removed.append(cp_id)
            doomed.append((cp_id, seq))
    report = PruneReport(thread_id, tuple(removed), tuple(kept), protected, dry_run)
    return report, doomed
