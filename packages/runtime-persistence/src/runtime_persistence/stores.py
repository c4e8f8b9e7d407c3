"""The old import path ``runtime_persistence.stores``, kept working: the code lives in :mod:`runtime_persistence.storage.stores`."""

from runtime_persistence.storage.stores import (
    BUILTIN_SCHEMES,
    DriverSpec,
    open_store,
    open_store_async,
    redact_url,
)

__all__ = [
    "BUILTIN_SCHEMES",
    "DriverSpec",
    "open_store",
    "open_store_async",
    "redact_url",
]
