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

# Made lazy by scripts/gen_facade.py: add a re-export to the imports under TYPE_CHECKING,
# then run the script, which rewrites __all__, _SOURCES and __getattr__ from them.

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Where each name is imported from, on first use.
_SOURCES: dict[str, str] = {
    "BUILTIN_SCHEMES": "runtime_persistence.storage.stores",
    "ENTRY_POINT_GROUP": "runtime_persistence.storage.blob_roots",
    "LEASE_NS": "runtime_persistence.storage.leases",
    "MAX_DEPTH": "runtime_persistence.storage.serialization",
    "MAX_PAYLOAD": "runtime_persistence.storage.serialization",
    "AsyncLeases": "runtime_persistence.storage.leases",
    "BlobRootProvider": "runtime_persistence.storage.blob_roots",
    "DriverSpec": "runtime_persistence.storage.stores",
    "EnvelopeSerializer": "runtime_persistence.storage.serialization",
    "Keyring": "runtime_persistence.storage.serialization",
    "Leases": "runtime_persistence.storage.leases",
    "blob_root_providers": "runtime_persistence.storage.blob_roots",
    "dumps": "runtime_persistence.storage.serialization",
    "loads": "runtime_persistence.storage.serialization",
    "open_store": "runtime_persistence.storage.stores",
    "open_store_async": "runtime_persistence.storage.stores",
    "redact_url": "runtime_persistence.storage.stores",
    "register_blob_roots": "runtime_persistence.storage.blob_roots",
    "unregister_blob_roots": "runtime_persistence.storage.blob_roots",
}

# Submodules reachable as attributes, as they were when this module imported them.
_SUBMODULES = frozenset(
    {
        "_async",
        "_backup_stream",
        "_lease_record",
        "_sync",
        "backup",
        "blob_roots",
        "drivers",
        "encryption",
        "leases",
        "private",
        "serialization",
        "stores",
        "threaded",
    }
)


if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        source = _SOURCES.get(name)
        if source is not None:
            value = getattr(importlib.import_module(source), name)
            globals()[name] = value  # later lookups skip this function
            return value
        if name in _SUBMODULES:
            return importlib.import_module(f"{__name__}.{name}")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
