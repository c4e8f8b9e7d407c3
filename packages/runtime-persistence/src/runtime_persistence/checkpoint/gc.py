"""Garbage collection of blobs nothing references, safe against concurrent writers.

**Roots.** Checkpoint records and pending writes are marked here. Every other repository that
keeps blobs in the driver's blob area registers a *root provider* with
:func:`register_blob_roots` (``fn(driver) -> iterable of hex digests``); the artifact store does
so when imported, and gc imports the built-in repositories before collecting so their roots are
never missing. Third-party packages register through the ``keepup.blob_roots`` entry-point group
(``name = "module:function"``). A blob in the blob area that no provider names is garbage: a
package that stores blobs must register its roots.

**Safety.** Writes go bottom-up (blobs, then the record that names them, then the head) and
collection top-down: list the blobs older than ``grace``, then mark from every live record, then
delete the listed blobs nothing marked. A writer that stored a blob but has not yet published its
record is protected by the grace period as long as it publishes within it (each KV blob carries
its write time, refreshed whenever a save writes it again; a re-put between our read and our
delete wins through the delete's version check). Listing before marking means any record
published before the marking reaches it is seen, so a blob that later saves share (the pieces
of a growing list) is never lost to a collection that started while its first record was being
written. Records
published during the collection that reuse old blobs without rewriting them (restore, fork,
copy) are found by a second look at every checkpoint id created since shortly before the
collection began, and their blobs are spared.

**Sync and async.** The collector is written once as async code (``_async/gc.py``) and its sync
twin generated. :func:`collect` takes a :class:`Driver`; :func:`collect_async` an
:class:`AsyncDriver`, and asks each provider for its async form. A provider registered without
one is called with the sync driver behind an :class:`AsyncThreadDriver` in a worker thread; on a
natively async driver the async collector refuses (ValidationError) and deletes nothing.
"""

from runtime_persistence.checkpoint._async.gc import collect as collect_async
from runtime_persistence.checkpoint._collect import DEFAULT_GRACE
from runtime_persistence.checkpoint._sync.gc import collect
from runtime_persistence.storage.blob_roots import (
    ENTRY_POINT_GROUP,
    BlobRootProvider,
    blob_root_providers,
    register_blob_roots,
    unregister_blob_roots,
)

__all__ = [
    "DEFAULT_GRACE",
    "ENTRY_POINT_GROUP",
    "BlobRootProvider",
    "blob_root_providers",
    "collect",
    "collect_async",
    "register_blob_roots",
    "unregister_blob_roots",
]
