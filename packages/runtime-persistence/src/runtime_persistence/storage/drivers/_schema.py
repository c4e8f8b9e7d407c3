"""The I/O-free half of the SQL drivers' schema migrations: what a migration is, where a store's
schema stands, and the checks that compare a recorded history with the code's list. The runner
that reads and writes the database is :mod:`._async.migrations` (sync twin generated)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runtime_core import StorageError, ValidationError

__all__ = ["MIGRATIONS_TABLE", "Migration", "MigrationPlan", "SchemaStatus", "numbered"]

MIGRATIONS_TABLE = "keepup_migrations"


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step. ``steps`` is a sequence of SQL statements, or a callable given a DB-API
    cursor (for steps that transform data; the async runner awaits what it returns). It runs
    inside the migration transaction where the database has transactional DDL (SQLite, PostgreSQL).

    ``rewrites`` is False for a step that changes no table and no stored row, and only records
    that the store may from now on hold rows an older Keepup cannot read (so that such a Keepup
    refuses the store as newer than itself). This code reads a store that lacks only such steps
    as it is: a read-only open proceeds without them, and applying only such steps takes no
    backup first (there is nothing to lose)."""

    version: int
    name: str
    steps: Sequence[str] | Callable[[Any], Any]
    rewrites: bool = True


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where a store's schema stands: ``current`` (0 for an empty store), ``latest`` (what this
    code knows) and the migrations still to apply."""

    current: int
    latest: int
    pending: tuple[Migration, ...]

    @property
    def up_to_date(self) -> bool:
        return not self.pending

    @property
    def rewrites(self) -> bool:
        """Whether a pending migration changes tables or rows (see :attr:`Migration.rewrites`):
        only then does a read-only open need them applied, or their application a backup."""
        return any(m.rewrites for m in self.pending)


class MigrationPlan:
    """An ordered list of migrations (versions 1, 2, 3, … without gaps) and the SQL of its
    bookkeeping table; the runners add the database I/O."""

    def __init__(
        self, migrations: Sequence[Migration], *, table: str = MIGRATIONS_TABLE, placeholder: str = "?"
    ) -> None:
        versions = [m.version for m in migrations]
        if versions != list(range(1, len(versions) + 1)):
            raise ValidationError(f"migrations must be numbered 1, 2, 3, … in order; got {versions}")
        self._migrations = tuple(migrations)
        self._table = table
        self._ph = placeholder

    @property
    def migrations(self) -> tuple[Migration, ...]:
        return self._migrations

    @property
    def latest(self) -> int:
        return len(self._migrations)

    def create_table_sql(self) -> str:
        return (
            f"CREATE TABLE IF NOT EXISTS {self._table} ("
            "version INTEGER NOT NULL PRIMARY KEY, name VARCHAR(200) NOT NULL, applied_at VARCHAR(40) NOT NULL)"
        )

    def select_sql(self) -> str:
        return f"SELECT version, name FROM {self._table} ORDER BY version"

    def record_sql(self) -> str:
        return f"INSERT INTO {self._table} (version, name, applied_at) VALUES ({self._ph}, {self._ph}, {self._ph})"

    def status_of(self, applied: list[tuple[int, str]], store: str = "the store") -> SchemaStatus:
        """Compare a recorded history with this code's list; StorageError when they disagree or
        the store is newer than this code."""
        known = {m.version: m for m in self._migrations}
        for position, (version, name) in enumerate(applied, start=1):
            if version > self.latest:
                raise StorageError(
                    f"{store} has schema version {applied[-1][0]}, newer than this Keepup knows "
                    f"({self.latest}); upgrade Keepup to open it"
                )
            if version != position or known[version].name != name:
                raise StorageError(
                    f"{store} records migration {version} {name!r}, which does not match this "
                    f"Keepup's migration {position} {known[position].name!r}; refusing to touch it"
                )
        current = len(applied)
        return SchemaStatus(current, self.latest, self._migrations[current:])

    def refuse_read_only(self, status: SchemaStatus, store: str) -> None:
        """Raise StorageError when a store opened read-only needs migrations that rewrite it (a store
        lacking only marker migrations is read as it is)."""
        if status.rewrites:
            raise StorageError(
                f"{store} is at schema version {status.current} and this Keepup needs "
                f"{status.latest}; it was opened read-only, so it was not migrated: open it "
                "read-write once or run `keepup store migrate`"
            )


def numbered(steps: Sequence[tuple[str, Sequence[str]]], names: Mapping[str, str]) -> list[Migration]:
    """Migrations 1, 2, 3, … from ``(title, statements)`` pairs, each statement's ``{kv}``,
    ``{blobs}``, ``{chunks}`` filled in from the store's table ``names``."""
    return [
        Migration(version, title, tuple(step.format(**names) for step in statements))
        for version, (title, statements) in enumerate(steps, start=1)
    ]
