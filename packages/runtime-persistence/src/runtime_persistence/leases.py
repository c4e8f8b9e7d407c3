"""The old import path ``runtime_persistence.leases``, kept working: the code lives in :mod:`runtime_persistence.storage.leases`."""

from runtime_persistence.storage.leases import (
    LEASE_NS,
    AsyncLeases,
    Leases,
)

__all__ = [
    "LEASE_NS",
    "AsyncLeases",
    "Leases",
]
