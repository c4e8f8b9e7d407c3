"""The old import path ``runtime_persistence.stores``, kept working: the code lives in :mod:`runtime_persistence.storage.stores`."""

from runtime_persistence.storage.stores import (
    BUILTIN_SCHEMES,
    DriverSpec,
    open_async_store,
    open_store,
    redact_url,
)

__all__ = [
    "BUILTIN_SCHEMES",
    "DriverSpec",
    "open_async_store",
    "open_store",
    "redact_url",
]
