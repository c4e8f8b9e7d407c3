"""The bottom layer of runtime-persistence: everything that stores bytes, and nothing that knows
what they mean.

* ``drivers/``: the driver contract's implementations (memory, file, SQLite, PostgreSQL, MySQL,
  Redis, MongoDB), each imported only when its URL scheme is opened;
* ``stores``: opening a store by URL; ``serialization``: the checksummed, typed envelope codec;
* ``leases``: who runs which thread, consulted by restore, prune and delete;
* ``blob_roots``: the registry through which repositories keep their blobs alive through gc.

A change that alters how bytes reach a backend belongs here; anything that names a checkpoint,
an artifact, a session or a workspace belongs in the layers above, which import this one and
are never imported by it (an import-linter contract says so)."""

from runtime_persistence.storage.blob_roots import (
    ENTRY_POINT_GROUP,
    BlobRootProvider,
    blob_root_providers,
    register_blob_roots,
    unregister_blob_roots,
)
from runtime_persistence.storage.leases import (
    LEASE_NS,
    AsyncLeases,
    Leases,
)
from runtime_persistence.storage.serialization import (
    MAX_DEPTH,
    MAX_PAYLOAD,
    EnvelopeSerializer,
    Keyring,
    dumps,
    loads,
)
from runtime_persistence.storage.stores import (
    BUILTIN_SCHEMES,
    DriverSpec,
    open_store,
    open_store_async,
    redact_url,
)

__all__ = [
    "BUILTIN_SCHEMES",
    "ENTRY_POINT_GROUP",
    "LEASE_NS",
    "MAX_DEPTH",
    "MAX_PAYLOAD",
    "AsyncLeases",
    "BlobRootProvider",
    "DriverSpec",
    "EnvelopeSerializer",
    "Keyring",
    "Leases",
    "blob_root_providers",
    "dumps",
    "loads",
    "open_store",
    "open_store_async",
    "redact_url",
    "register_blob_roots",
    "unregister_blob_roots",
]
