"""The old import path ``runtime_persistence.drivers.mysql``, kept working: the code lives in :mod:`runtime_persistence.storage.drivers.mysql`."""

from runtime_persistence.storage.drivers.mysql import (
    AsyncMysqlDriver,
    MysqlDriver,
    migrations,
    table_names,
)

__all__ = [
    "AsyncMysqlDriver",
    "MysqlDriver",
    "migrations",
    "table_names",
]
