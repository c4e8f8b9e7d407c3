"""The old import path ``runtime_persistence.drivers.postgres``, kept working: the code lives in :mod:`runtime_persistence.storage.drivers.postgres`."""

from runtime_persistence.storage.drivers.postgres import (
    AsyncPostgresDriver,
    PostgresDriver,
    migrations,
    table_names,
)

__all__ = [
    "AsyncPostgresDriver",
    "PostgresDriver",
    "migrations",
    "table_names",
]
