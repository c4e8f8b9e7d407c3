# Generated from packages/runtime-persistence/src/runtime_persistence/storage/drivers/_async/postgres.py by scripts/gen_sync.py: edit that file and rerun the script.
"""The PostgreSQL driver's I/O, written once as async code on psycopg 3's ``Connection`` and
``psycopg_pool.ConnectionPool`` (the blocking :class:`PostgresDriver` is generated from it
into ``_sync/postgres.py``). The layout, guarantees and options are described in
:mod:`runtime_persistence.storage.drivers.postgres`; statements and option parsing live in
``_postgres_sql.py``, the loops shared with MySQL in ``_async/_sql.py``."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
import psycopg_pool
from psycopg import sql
from runtime_core import ConflictError, Delete, Durability, KeepupError, Put, ValidationError

from runtime_persistence.storage.drivers import _postgres_sql as pg
from runtime_persistence.storage.drivers._common import GuardedPut, check_batch
from runtime_persistence.storage.drivers._schema import SchemaStatus
from runtime_persistence.storage.drivers._servers import DEFAULT_CONNECT_TIMEOUT, one_line, unavailable
from runtime_persistence.storage.drivers._sync._sql import SqlDriver
from runtime_persistence.storage.drivers._sync.migrations import MigrationRunner
from runtime_persistence.storage.stores import redact_url

__all__ = ["PostgresDriver"]


class PostgresDriver(SqlDriver):
    """An ordered key-value store and blob area in PostgreSQL tables (see
    :mod:`runtime_persistence.storage.drivers.postgres` for the layout and guarantees). Safe to
    share between concurrent tasks (threads, for the sync twin): each operation takes a pooled
    connection. Open with :meth:`from_url`; one per process."""

    _KIND = pg.KIND
    guarded_cas = True
    """Batches accept :class:`GuardedPut` (a compare-and-set on the version and the value)."""
    _parse_options = staticmethod(pg.parse_options)
    _errors = (psycopg.Error, psycopg_pool.PoolTimeout)

    def __init__(
        self,
        url: str,
        *,
        durability: Durability = Durability.DURABLE,
        prefix: str = "",
        schema: str | None = None,
        pool_size: int = 4,
        max_value_size: int = pg.MAX_VALUE,
        read_only: bool = False,
        prepare: bool = True,
    ) -> None:
        """Set up (no I/O): :meth:`from_url` opens the store."""
        super().__init__(url, durability=durability, prefix=prefix, read_only=read_only)
        self._schema = pg.check_schema(schema)
        self._max_value_size = max_value_size
        self._chunk = pg.STORED_CHUNK
        self._pool_size = pool_size
        # psycopg prepares a statement run 5 times; PgBouncer in transaction mode (before 1.21)
        # loses it with the server connection, so ``prepare=0`` turns that off
        self._connect_kwargs: dict[str, Any] = {"autocommit": True}
        if not prepare:
            self._connect_kwargs["prepare_threshold"] = None
        conninfo = pg.libpq_url(url)
        try:
            self._conninfo = psycopg.conninfo.make_conninfo(conninfo, **pg.connect_kwargs(conninfo))
        except psycopg.ProgrammingError as exc:  # libpq cannot parse the URL: a usage mistake
            raise ValidationError(
                f"malformed PostgreSQL store URL {redact_url(url)}: {one_line(exc, url)}"
            ) from None
        names = pg.table_names(self._prefix, self._schema)
        self._names_plain = names
        self._fused: dict[tuple[str, ...], bytes] = {}
        self._q = dict(pg.queries(names))
        self._scans = pg.scans(names)
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] | None = None

    def _open(self) -> None:
        try:
            with psycopg.Connection.connect(self._conninfo) as conn:
                self._migrate(conn)
        except KeepupError:
            raise
        except psycopg.Error as exc:
            raise unavailable(self._KIND, self._raw_url, exc) from None
        pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = psycopg_pool.ConnectionPool(
            self._conninfo,
            kwargs=self._connect_kwargs,
            min_size=1,
            max_size=self._pool_size,
            configure=self._configure,
            open=False,
            num_workers=1,
            name=f"keepup-{self._prefix or 'store'}",
        )
        try:
            pool.open(wait=True, timeout=DEFAULT_CONNECT_TIMEOUT * 2)
        except psycopg_pool.PoolTimeout as exc:
            pool.close()
            raise unavailable(self._KIND, self._raw_url, exc) from None
        self._pool = pool

    def _names(self) -> dict[str, sql.Composable]:
        return {role: sql.SQL(name) for role, name in pg.table_names(self._prefix, self._schema).items()}

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        for statement in pg.session_settings(self._durability is Durability.DURABLE, self._read_only):
            conn.execute(statement)

    # schema ------------------------------------------------------------------------------------
    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        """Create or migrate the tables, one opener at a time: a transaction-scoped advisory lock
        keyed by the table names is the first statement of the one migration transaction, so its
        commit or rollback releases it on the server connection that took it (a session lock
        leaks behind PgBouncer in transaction mode, where the unlock may reach another one)."""
        if self._read_only:
            if self._check_schema:
                self._runner().migrate(conn, read_only=True, store=self._url)
        else:
            runner = self._runner()
            runner.migrate(conn, store=self._url, lock=self._migration_lock, before=self._backup_first)

    def _reader_options(self) -> dict[str, Any]:
        return {**super()._reader_options(), "schema": self._schema}

    @staticmethod
    def _blocking_class() -> Any:
        from runtime_persistence.storage.drivers._sync.postgres import PostgresDriver

        return PostgresDriver

    def _migration_lock(self, cursor: psycopg.Cursor[Any]) -> None:
        key = hashlib.blake2b(f"keepup:{self._schema}:{self._prefix}".encode(), digest_size=8).digest()
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (int.from_bytes(key, "big", signed=True),))
        if self._schema:
            cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self._schema)))

    def _runner(self) -> MigrationRunner:
        return MigrationRunner(
            pg.migrations(self._prefix, self._schema),
            table=pg.table_names(self._prefix, self._schema)["migrations"],
            placeholder="%s",
        )

    def schema_status(self) -> SchemaStatus:
        """The store's schema version against this code's (up to date after a read-write open)."""
        with self._op("read the schema version") as conn:
            return self._runner().status(conn, self._url)

    # hooks of the shared SQL loops ---------------------------------------------------------------
    @contextmanager
    def _session(self) -> Iterator[psycopg.Connection[Any]]:
        if self._pool is None:
            raise psycopg.OperationalError("this PostgreSQL store is not open")
        with self._pool.connection() as conn:
            yield conn

    def _transaction(self, handle: Any) -> Any:
        return handle.transaction()

    def _rows(self, handle: Any, query: Any, params: Sequence[Any]) -> list[Any]:
        cursor = handle.execute(query, params, binary=True)
        return list(cursor.fetchall())

    def _row(self, handle: Any, query: Any, params: Sequence[Any]) -> Any:
        cursor = handle.execute(query, params, binary=True)
        return cursor.fetchone()

    def _exec(self, handle: Any, query: Any, params: Sequence[Any]) -> int:
        cursor = handle.execute(query, params)
        return int(cursor.rowcount)

    def _is_deadlock(self, exc: BaseException | None) -> bool:
        return isinstance(exc, psycopg.errors.DeadlockDetected)

    def _drop_statements(self) -> list[str]:
        return pg.drop_statements(pg.table_names(self._prefix, self._schema))

    def _statement(self, op: Put | Delete) -> tuple[str, tuple[Any, ...]]:
        """The kind of statement (a key of ``_postgres_sql.queries``) of one key-value write and
        its parameters; it returns a row exactly when the write happened (see :meth:`_outcome`)."""
        k = op.key.encode()
        if isinstance(op, Delete):
            if op.if_version is None:
                return "delete", (op.namespace, k)
            return "delete_if", (op.namespace, k, op.if_version)
        if op.if_absent:
            return "insert", (op.namespace, k, bytes(op.value))
        if isinstance(op, GuardedPut):
            return "update_if_same", (bytes(op.value), op.namespace, k, op.if_version, op.expect)
        if op.if_version is not None:
            return "update_if", (bytes(op.value), op.namespace, k, op.if_version)
        return "upsert", (op.namespace, k, bytes(op.value))

    @staticmethod
    def _outcome(op: Put | Delete, ver: Any) -> int | bool:
        """What a write returns (a put: the new version; a delete: whether the key existed), or
        ConflictError when its condition failed (its statement returned no ``ver``)."""
        if isinstance(op, Delete):
            if op.if_version is not None and ver is None:
                raise ConflictError(
                    f"key {op.key!r} in {op.namespace!r} is no longer at version {op.if_version}"
                )
            return ver is not None
        if ver is None:
            if op.if_absent:
                raise ConflictError(f"key {op.key!r} already exists in {op.namespace!r}")
            raise ConflictError(f"key {op.key!r} in {op.namespace!r} is no longer at version {op.if_version}")
        return int(ver)

    def _put(
        self, handle: Any, namespace: str, key: str, value: bytes, if_absent: bool, if_version: int | None
    ) -> int:
        op = Put(namespace, key, value, if_absent=if_absent, if_version=if_version)
        kind, params = self._statement(op)
        row = self._row(handle, self._q[kind], params)
        return int(self._outcome(op, None if row is None else row[0]))

    def _put_guarded(self, handle: Any, op: GuardedPut) -> int:
        kind, params = self._statement(op)
        row = self._row(handle, self._q[kind], params)
        return int(self._outcome(op, None if row is None else row[0]))

    def _delete(self, handle: Any, namespace: str, key: str, if_version: int | None) -> bool:
        op = Delete(namespace, key, if_version=if_version)
        kind, params = self._statement(op)
        row = self._row(handle, self._q[kind], params)
        return bool(self._outcome(op, None if row is None else row[0]))

    def batch(self, ops: Sequence[Put | Delete]) -> list[int | bool]:
        """All or nothing; a lost condition raises ConflictError and rolls back every op of the
        batch. A batch of distinct keys (every commit of a checkpoint) is one statement, one
        round trip (``_postgres_sql.fused_batch``); any other runs as a transaction of one
        statement per op."""
        check_batch(ops, self._max_value_size)
        if not ops:
            return []
        if len(ops) > pg.FUSED_MAX_OPS or len({(op.namespace, op.key) for op in ops}) < len(ops):
            return super().batch(ops)
        kinds: list[str] = []
        params: list[Any] = []
        for op in ops:
            kind, bound = self._statement(op)
            kinds.append(kind)
            params.extend(bound)
        key = tuple(kinds)
        statement = self._fused.get(key)
        if statement is None:
            statement = self._fused[key] = pg.fused_batch(self._names_plain["kv"], key)

        def work(conn: Any) -> Any:
            try:
                return self._row(conn, statement, params)
            except psycopg.errors.DivisionByZero:
                return None

        row = self._retrying("batch", work, transaction=False)
        if row is None:  # a condition failed and the statement was rolled back: say which
            for op in ops:
                if isinstance(op, Put) and op.if_absent:
                    if self.get(op.namespace, op.key) is not None:
                        self._outcome(op, None)
                elif op.if_version is not None:
                    entry = self.get(op.namespace, op.key)
                    if entry is None or entry.version != op.if_version:
                        self._outcome(op, None)
            raise ConflictError("a condition of the batch failed (nothing was written)")
        return [self._outcome(op, ver) for op, ver in zip(ops, row, strict=False)]

    def _insert_blob(self, handle: Any, digest: str, upload: int, size: int) -> datetime | None:
        row = self._row(handle, self._q["insert_blob"], (digest, upload, size))
        return None if row is None else self._timestamp(row[0])

    def _delete_blob_on(self, handle: Any, digest: str) -> bool:
        row = self._row(handle, self._q["delete_blob"], (digest,))
        if row is None:
            return False
        self._exec(handle, self._q["delete_chunks"], (row[0],))
        return True

    # lifecycle ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Close every pooled connection. Idempotent."""
        if self._pool is not None:
            self._pool.close()
