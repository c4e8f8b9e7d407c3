"""The old import path ``runtime_persistence.drivers.memory``, kept working: the code lives in :mod:`runtime_persistence.storage.drivers.memory`."""

from runtime_persistence.storage.drivers.memory import (
    MemoryDriver,
)

__all__ = [
    "MemoryDriver",
]
