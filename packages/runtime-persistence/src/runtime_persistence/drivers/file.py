"""The old import path ``runtime_persistence.drivers.file``, kept working: the code lives in :mod:`runtime_persistence.storage.drivers.file`."""

from runtime_persistence.storage.drivers.file import (
    FORMAT,
    FileDriver,
    LockInfo,
)

__all__ = [
    "FORMAT",
    "FileDriver",
    "LockInfo",
]
