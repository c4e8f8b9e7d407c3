"""The migration runner's I/O, written once as async code (the sync twin, used by SQLite and the
blocking server drivers, is generated into ``_sync/migrations.py``).

The runner records each applied migration in the table ``keepup_migrations(version, name,
applied_at)`` (its name prefixed like the driver's other tables) and applies the missing ones, in
order, when the store is opened. A store whose schema is newer than the code, or whose recorded
history disagrees with the code's list, is refused; a store opened read-only that needs a migration
is refused with a message saying how to migrate.

It speaks DB-API 2 (or its async form: psycopg's ``AsyncConnection``, aiomysql): it needs a
connection, the driver's placeholder (``?`` or ``%s``), and optionally ``begin`` (a callable that
opens the migration transaction and takes the cross-process lock) or, for a database whose DDL is
transactional (PostgreSQL), ``lock``: a callable that takes a transaction-scoped lock as the first
statement of the one transaction that creates the migrations table and applies the migrations, so
the lock is released by that transaction's commit or rollback on the same server connection (a
session lock would be taken on one server connection and released on another behind a pooler in
transaction mode, such as PgBouncer)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from runtime_core import utc_now

from runtime_persistence.storage.drivers._schema import Migration, MigrationPlan, SchemaStatus

__all__ = ["AsyncMigrationRunner"]


async def _cursor(connection: Any) -> Any:
    cursor = connection.cursor()
    # aiomysql hands its cursor out as an awaitable; psycopg and DB-API 2 return it
    if inspect.isawaitable(cursor):  # sync: -
        cursor = await cursor  # sync: -
    return cursor


class AsyncMigrationRunner(MigrationPlan):
    """Applies an ordered list of migrations (versions 1, 2, 3, … without gaps)."""

    async def applied(self, cursor: Any) -> list[tuple[int, str]]:
        """The recorded (version, name) pairs, in version order. Raises the database's own error
        if the migrations table does not exist."""
        await cursor.execute(self.select_sql())
        return [(int(v), str(n)) for v, n in await cursor.fetchall()]

    async def status(self, connection: Any, store: str = "the store") -> SchemaStatus:
        """The schema status, reading without writing (a missing table means version 0)."""
        cursor = await _cursor(connection)
        try:
            applied = await self.applied(cursor)
        except Exception:
            await connection.rollback()
            applied = []
        else:
            await connection.commit()
        finally:
            await cursor.close()
        return self.status_of(applied, store)

    async def migrate(
        self,
        connection: Any,
        *,
        read_only: bool = False,
        store: str = "the store",
        begin: Callable[[Any], Any] | None = None,
        lock: Callable[[Any], Any] | None = None,
        before: Callable[[SchemaStatus], Any] | None = None,
    ) -> list[Migration]:
        """Bring the schema up to date and return the migrations applied (oldest first).

        With ``read_only`` nothing is written: a store that needs migrations raises StorageError
        saying how to migrate it. Otherwise every pending migration runs in one transaction
        started by ``begin(cursor)`` (which should also take the cross-process lock, so that two
        processes opening an old store migrate it once), then commits; on any error the
        transaction is rolled back and the error propagates.

        With ``lock`` instead, nothing is committed before the lock is held: ``lock(cursor)`` runs
        first, then the migrations table is created, the history read and the pending migrations
        applied, all in that one transaction, which the final commit ends (releasing a
        transaction-scoped lock).

        ``before(status)`` runs once the lock is held and the history read, when pending
        migrations rewrite the store (:attr:`SchemaStatus.rewrites`), before the first is applied (the server drivers take their backup there, so only
        the opener that migrates takes one); an error from it rolls back and applies nothing."""
        if read_only:
            self.refuse_read_only(await self.status(connection, store), store)
            return []
        if begin is not None and lock is not None:
            raise ValueError("migrate() takes begin or lock, not both")
        cursor = await _cursor(connection)
        try:
            if lock is not None:
                await lock(cursor)
            await cursor.execute(self.create_table_sql())
            if lock is None:
                await connection.commit()
            if begin is not None:
                await begin(cursor)
            status = self.status_of(await self.applied(cursor), store)
            if before is not None and status.rewrites:
                await before(status)
            for migration in status.pending:
                await self._apply(cursor, migration)
            await connection.commit()
            return list(status.pending)
        except BaseException:
            await connection.rollback()
            raise
        finally:
            await cursor.close()

    async def _apply(self, cursor: Any, migration: Migration) -> None:
        if callable(migration.steps):
            await migration.steps(cursor)
        else:
            for statement in migration.steps:
                await cursor.execute(statement)
        await cursor.execute(self.record_sql(), (migration.version, migration.name, utc_now().isoformat()))
