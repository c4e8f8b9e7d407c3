"""Shared snapshots: every snapshot's new objects published to the store's blob area as a git pack,
fetched (and verified) by any host sharing the store before it diffs or restores a snapshot it
lacks. ``SnapshotPacks`` (sync, generated) and ``AsyncSnapshotPacks`` are twins; the git half is
:mod:`runtime_persistence.shadow_git.sharing`."""

from runtime_persistence.shadow_git._async.packs import AsyncSnapshotPacks
from runtime_persistence.shadow_git._async.packs import pack_roots as pack_roots_async
from runtime_persistence.shadow_git._pack_records import PACK_NS, PackRecord
from runtime_persistence.shadow_git._sync.packs import SnapshotPacks, pack_roots
from runtime_persistence.shadow_git.sharing import SHARED_REFS, SharedSnapshots
from runtime_persistence.storage.blob_roots import register_blob_roots

__all__ = ["PACK_NS", "SHARED_REFS", "AsyncSnapshotPacks", "PackRecord", "SharedSnapshots", "SnapshotPacks"]

# importing this module (garbage collection does, see storage.blob_roots) keeps every pack alive
# while its record exists
register_blob_roots("snapshot-packs", pack_roots, pack_roots_async)
