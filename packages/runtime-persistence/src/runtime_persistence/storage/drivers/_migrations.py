"""Forward-only schema migrations for the SQL drivers (SQLite, PostgreSQL, MySQL/MariaDB).

A driver lists its migrations in order; the runner records each applied one in the table
``keepup_migrations(version, name, applied_at)`` (its name prefixed like the driver's other
tables) and applies the missing ones, in order, when the store is opened. A store whose schema is
newer than the code, or whose recorded history disagrees with the code's list, is refused; a
store opened read-only that needs a migration is refused with a message saying how to migrate.

The runner speaks plain DB-API 2: it needs a connection, the driver's placeholder (``?`` or
``%s``), and optionally ``begin`` (a callable that opens the migration transaction and takes the
cross-process lock, e.g. ``BEGIN IMMEDIATE`` on SQLite or ``pg_advisory_xact_lock`` on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from runtime_core import StorageError, ValidationError, utc_now

__all__ = ["MIGRATIONS_TABLE", "Migration", "MigrationRunner", "SchemaStatus"]

MIGRATIONS_TABLE = "keepup_migrations"


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step. ``steps`` is a sequence of SQL statements, or a callable given a DB-API
    cursor (for steps that transform data). It runs inside the migration transaction where the
    database has transactional DDL (SQLite, PostgreSQL)."""

    version: int
    name: str
    steps: Sequence[str] | Callable[[Any], None]


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


class MigrationRunner:
    """Applies an ordered list of migrations (versions 1, 2, 3, … without gaps)."""

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

    def applied(self, cursor: Any) -> list[tuple[int, str]]:
        """The recorded (version, name) pairs, in version order. Raises the database's own error
        if the migrations table does not exist."""
        cursor.execute(f"SELECT version, name FROM {self._table} ORDER BY version")
        return [(int(v), str(n)) for v, n in cursor.fetchall()]

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

    def status(self, connection: Any, store: str = "the store") -> SchemaStatus:
        """The schema status, reading without writing (a missing table means version 0)."""
        cursor = connection.cursor()
        try:
            applied = self.applied(cursor)
        except Exception:
            connection.rollback()
            applied = []
        else:
            connection.commit()
        finally:
            cursor.close()
        return self.status_of(applied, store)

    def migrate(
        self,
        connection: Any,
        *,
        read_only: bool = False,
        store: str = "the store",
        begin: Callable[[Any], None] | None = None,
    ) -> list[Migration]:
        """Bring the schema up to date and return the migrations applied (oldest first).

        With ``read_only`` nothing is written: a store that needs migrations raises StorageError
        saying how to migrate it. Otherwise every pending migration runs in one transaction
        started by ``begin(cursor)`` (which should also take the cross-process lock, so that two
        processes opening an old store migrate it once), then commits; on any error the
        transaction is rolled back and the error propagates."""
        if read_only:
            status = self.status(connection, store)
            if status.pending:
                raise StorageError(
                    f"{store} is at schema version {status.current} and this Keepup needs "
                    f"{status.latest}; it was opened read-only, so it was not migrated: open it "
                    "read-write once or run `keepup store migrate`"
                )
            return []
        cursor = connection.cursor()
        try:
            cursor.execute(self.create_table_sql())
            connection.commit()
            if begin is not None:
                begin(cursor)
            status = self.status_of(self.applied(cursor), store)
            for migration in status.pending:
                self._apply(cursor, migration)
            connection.commit()
            return list(status.pending)
        except BaseException:
            connection.rollback()
            raise
        finally:
            cursor.close()

    def _apply(self, cursor: Any, migration: Migration) -> None:
        if callable(migration.steps):
            migration.steps(cursor)
        else:
            for statement in migration.steps:
                cursor.execute(statement)
        cursor.execute(
            f"INSERT INTO {self._table} (version, name, applied_at) VALUES ({self._ph}, {self._ph}, {self._ph})",
            (migration.version, migration.name, utc_now().isoformat()),
        )
