"""The old import path ``runtime_persistence.drivers.mongodb``, kept working: the code lives in :mod:`runtime_persistence.storage.drivers.mongodb`."""

from runtime_persistence.storage.drivers.mongodb import (
    AsyncMongoDriver,
    MongoDriver,
)

__all__ = [
    "AsyncMongoDriver",
    "MongoDriver",
]
