"""Forward-only schema migrations for the SQL drivers (SQLite, PostgreSQL, MySQL/MariaDB).

A driver lists its migrations in order; the runner records each applied one in the table
``keepup_migrations(version, name, applied_at)`` (its name prefixed like the driver's other
tables) and applies the missing ones, in order, when the store is opened. The I/O-free part lives
in :mod:`._schema`; the runner is written once as async code (:class:`AsyncMigrationRunner`, in
``_async/migrations.py``) and :class:`MigrationRunner` is its generated blocking twin."""

from runtime_persistence.storage.drivers._async.migrations import AsyncMigrationRunner
from runtime_persistence.storage.drivers._schema import (
    MIGRATIONS_TABLE,
    Migration,
    MigrationPlan,
    SchemaStatus,
)
from runtime_persistence.storage.drivers._sync.migrations import MigrationRunner

__all__ = [
    "MIGRATIONS_TABLE",
    "AsyncMigrationRunner",
    "Migration",
    "MigrationPlan",
    "MigrationRunner",
    "SchemaStatus",
]
