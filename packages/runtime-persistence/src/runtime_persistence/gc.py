"""The old import path ``runtime_persistence.gc``, kept working: the code lives in :mod:`runtime_persistence.checkpoint.gc`."""

from runtime_persistence.checkpoint.gc import (
    DEFAULT_GRACE,
    ENTRY_POINT_GROUP,
    BlobRootProvider,
    blob_root_providers,
    collect,
    collect_async,
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
