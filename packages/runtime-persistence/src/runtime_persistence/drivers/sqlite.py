"""The old import path ``runtime_persistence.drivers.sqlite``, kept working: the code lives in :mod:`runtime_persistence.storage.drivers.sqlite`."""

from runtime_persistence.storage.drivers.sqlite import (
    MIGRATIONS,
    SqliteDriver,
    sqlite_url,
)

__all__ = [
    "MIGRATIONS",
    "SqliteDriver",
    "sqlite_url",
]
