"""The old import path ``runtime_persistence.drivers.mongodb``, kept working: the code lives in :mod:`runtime_persistence.storage.drivers.mongodb`."""

from runtime_persistence.storage.drivers.mongodb import (
    MongoDriver,
)

__all__ = [
    "MongoDriver",
]
