"""The old import path ``runtime_persistence.drivers._migrations``, kept working: the code lives in :mod:`runtime_persistence.storage.drivers._migrations`."""

from runtime_persistence.storage.drivers._migrations import (
    MIGRATIONS_TABLE,
    AsyncMigrationRunner,
    Migration,
    MigrationPlan,
    MigrationRunner,
    SchemaStatus,
)

__all__ = [
    "MIGRATIONS_TABLE",
    "AsyncMigrationRunner",
    "Migration",
    "MigrationPlan",
    "MigrationRunner",
    "SchemaStatus",
]
