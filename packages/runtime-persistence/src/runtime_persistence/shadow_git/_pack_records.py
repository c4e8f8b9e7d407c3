"""The stored shape of a snapshot pack record and its namespace (shared by ``SnapshotPacks``, its
async twin, garbage collection and export; no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec
from runtime_core import CorruptionError

from runtime_persistence.shadow_git.sharing import is_full_commit

__all__ = ["PACK_FORMAT", "PACK_NS", "PackRecord", "checked_record", "live_closure"]

PACK_NS = "shadow.pack"
PACK_FORMAT = 1


class PackRecord(msgspec.Struct, array_like=True, frozen=True):
    """A snapshot published to the store: the pack blob (hex SHA-256 in the blob area) that holds
    the objects ``commit`` adds to its ``prerequisites`` (snapshots whose packs come first)."""

    format: int
    commit: str
    digest: str
    size: int
    prerequisites: list[str]
    created_at: datetime


def checked_record(rec: PackRecord, key: str) -> PackRecord:
    """``rec`` read under ``key``, refused (CorruptionError) unless it is a pack record of that
    very snapshot: the store is untrusted and a record copied under another key is misplaced."""
    if rec.format != PACK_FORMAT:
        raise CorruptionError(f"snapshot pack record {key} has an unknown format {rec.format!r}")
    if rec.commit != key or not is_full_commit(key):
        raise CorruptionError(f"the snapshot pack record under {key} names snapshot {rec.commit!r:.80}")
    if any(not is_full_commit(p) or p == key for p in rec.prerequisites):
        raise CorruptionError(f"snapshot pack record {key} names an invalid prerequisite")
    if len(rec.digest) != 64 or any(c not in "0123456789abcdef" for c in rec.digest) or rec.size < 0:
        raise CorruptionError(f"snapshot pack record {key} names an invalid blob")
    return rec


def live_closure(records: dict[str, PackRecord], live: Iterable[str]) -> set[str]:
    """The commits of ``records`` that the snapshots in ``live`` need: themselves and, through
    their prerequisites, every pack they are built on."""
    needed: set[str] = set()
    todo = [c for c in live if c in records]
    while todo:
        commit = todo.pop()
        if commit in needed:
            continue
        needed.add(commit)
        todo.extend(p for p in records[commit].prerequisites if p in records)
    return needed
