# Generated from packages/runtime-persistence/src/runtime_persistence/storage/drivers/_async/mysql.py by scripts/gen_sync.py: edit that file and rerun the script.
"""The MySQL / MariaDB driver's I/O, written once as async code on aiomysql, with a small asyncio
connection pool (the blocking :class:`MysqlDriver` over PyMySQL, with a thread-safe pool, is
generated from it into ``_sync/mysql.py``). The layout, guarantees and options are described in
:mod:`runtime_persistence.storage.drivers.mysql`; statements, options and connection parameters
live in ``_mysql_sql.py``, the loops shared with PostgreSQL in ``_async/_sql.py``.

aiomysql raises PyMySQL's exception classes, so errors are named ``pymysql.err.X`` in both twins."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pymysql
from runtime_core import ConflictError, Durability, KeepupError, StorageError, utc_now

from runtime_persistence.storage.drivers import _mysql_sql as my
from runtime_persistence.storage.drivers._schema import SchemaStatus
from runtime_persistence.storage.drivers._servers import (
    DEFAULT_CONNECT_TIMEOUT,
    unavailable,
)
from runtime_persistence.storage.drivers._sync._sql import SqlDriver
from runtime_persistence.storage.drivers._sync._streams import password_from_file
from runtime_persistence.storage.drivers._sync.migrations import MigrationRunner

__all__ = ["MysqlDriver"]


def _acquire(slots: Any, wait: float) -> bool:
    """Take a pool slot, waiting at most ``wait`` seconds; whether one was taken."""
    return bool(slots.acquire(timeout=wait))


class _Pool:
    """A small pool of autocommit connections (PyMySQL has none; aiomysql's is not used, so that
    both twins share one design): at most ``size`` in use, idle ones reused newest first, pinged when idle long, and never
    reused after an error that may have left them broken or mid-transaction."""

    def __init__(self, connect: Callable[[], Any], size: int, wait: float) -> None:
        self._connect = connect
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[tuple[Any, float]] = []  # (connection, idle since); list.pop is atomic
        self._wait = wait
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[Any]:
        if self._closed:
            raise StorageError("this MySQL store was closed")
        if not _acquire(self._slots, self._wait):
            raise StorageError(f"no MySQL connection became free within {self._wait:g} seconds")
        conn: Any = None
        healthy = True
        try:
            conn = self._take()
            yield conn
        except BaseException as exc:
            # a lost connection, or an interruption mid-statement: never reuse it
            if isinstance(exc, (pymysql.err.OperationalError, pymysql.err.InterfaceError)) or not isinstance(
                exc, Exception
            ):
                healthy = False
            raise
        finally:
            if conn is not None:
                if healthy and not self._closed and _is_open(conn):
                    self._idle.append((conn, time.monotonic()))
                else:
                    _close_quietly(conn)
            self._slots.release()

    def _take(self) -> Any:
        while True:
            try:
                conn, since = self._idle.pop()
            except IndexError:
                return self._connect()
            if time.monotonic() - since < my.IDLE_CHECK:
                return conn
            try:
                conn.ping(reconnect=False)
                return conn
            except pymysql.MySQLError:
                _close_quietly(conn)

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                conn, _ = self._idle.pop()
            except IndexError:  # empty (another thread may have taken the last one)
                return
            _close_quietly(conn)


def _is_open(conn: Any) -> bool:
    return bool(conn.open)


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # already closed or broken: nothing to release
        return


class _Cursor(pymysql.cursors.Cursor):  # type: ignore[misc,unused-ignore]
    """A cursor that sends bytes as hexadecimal literals (``X'…'``, as PyMySQL 1.1+ does), so they
    are never read in the connection's character set: aiomysql 0.3 calls a PyMySQL helper for bytes
    that PyMySQL 1.1 removed."""

    def _escape_args(self, args: Any, conn: Any) -> Any:
        if isinstance(args, (tuple, list)):
            return tuple(_literal(arg, conn) for arg in args)
        return super()._escape_args(args, conn)

    def _show_warnings(self, conn: Any) -> None:
        """Skip aiomysql's extra ``SHOW WARNINGS`` round trip (PyMySQL 1.x does not make it
        either): expected notes such as "table already exists" are not the caller's business."""
        return None


def _literal(arg: Any, conn: Any) -> Any:
    if isinstance(arg, (bytes, bytearray, memoryview)):
        return f"X'{bytes(arg).hex()}'"
    return conn.escape(arg)


@contextmanager
def _transaction(cur: Any) -> Iterator[None]:
    conn = cur.connection
    conn.begin()
    try:
        yield
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


class MysqlDriver(SqlDriver):
    """An ordered key-value store and blob area in MySQL / MariaDB tables (see
    :mod:`runtime_persistence.storage.drivers.mysql` for the layout and guarantees). Safe to share
    between concurrent tasks (threads, for the sync twin): each operation takes a pooled
    connection. Open with :meth:`from_url`; one per process."""

    _KIND = my.KIND
    _parse_options = staticmethod(my.parse_options)
    _errors = (pymysql.MySQLError,)

    def __init__(
        self,
        url: str,
        *,
        durability: Durability = Durability.DURABLE,
        prefix: str = "",
        pool_size: int = 4,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_value_size: int | None = None,
        unix_socket: str | None = None,
        ssl_ca: str | None = None,
        read_only: bool = False,
        password_file: str | None = None,
    ) -> None:
        """Set up (no I/O): :meth:`from_url` opens the store."""
        super().__init__(url, durability=durability, prefix=prefix, read_only=read_only)
        self._params = my.connect_params(
            url, connect_timeout=connect_timeout, unix_socket=unix_socket, ssl_ca=ssl_ca
        )
        self._password_file = password_file
        self._names = my.table_names(self._prefix)
        self._q = dict(my.queries(self._names))
        self._scans = my.scans(self._names)
        self._requested_max_value = max_value_size
        self._max_value_size, self._chunk = my.value_limits(1 << 20, max_value_size)
        self._pool = _Pool(self._connect, pool_size, my.POOL_WAIT)

    def _open(self) -> None:
        path, kind = self._password_file, self._KIND
        if path is not None:  # read here: __init__ does no I/O
            pw = password_from_file(path, kind)
            self._params["password"] = pw
        try:
            conn = self._connect()
            try:
                self._migrate(conn)
                with conn.cursor() as cur:
                    cur.execute(self._q["max_packet"])
                    row = cur.fetchone()
                packet = int(row[0]) if row else 1 << 20
            finally:
                _close_quietly(conn)
        except KeepupError:
            raise
        except pymysql.MySQLError as exc:
            raise unavailable(self._KIND, self._raw_url, exc) from None
        self._max_value_size, self._chunk = my.value_limits(packet, self._requested_max_value)

    def _connect(self) -> Any:
        params = dict(self._params)
        conn = pymysql.connect(**params, cursorclass=_Cursor)
        if self._read_only:
            with conn.cursor() as cur:
                cur.execute("SET SESSION TRANSACTION READ ONLY")
        return conn

    # schema ------------------------------------------------------------------------------------
    def _migrate(self, conn: Any) -> None:
        """Create or migrate the tables, one opener at a time (a named server lock)."""
        if self._read_only:
            if self._check_schema:
                self._runner().migrate(conn, read_only=True, store=self._url)
            return
        lock = my.migration_lock(self._params["database"], self._prefix)
        conn.autocommit(False)
        with conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, 60)", (lock,))
            got = cur.fetchone()
            if not got or got[0] != 1:
                raise StorageError(f"another process has been migrating {self._url} for a minute; try again")
            try:
                self._runner().migrate(conn, store=self._url, before=self._backup_first)
            finally:
                cur.execute("SELECT RELEASE_LOCK(%s)", (lock,))
                conn.commit()
        conn.autocommit(True)

    @staticmethod
    def _blocking_class() -> Any:
        from runtime_persistence.storage.drivers._sync.mysql import MysqlDriver

        return MysqlDriver

    def _runner(self) -> MigrationRunner:
        return MigrationRunner(my.migrations(self._prefix), table=self._names["migrations"], placeholder="%s")

    def schema_status(self) -> SchemaStatus:
        """The store's schema version against this code's (up to date after a read-write open)."""
        with self._op("read the schema version") as cur:
            return self._runner().status(cur.connection, self._url)

    # hooks of the shared SQL loops ---------------------------------------------------------------
    @contextmanager
    def _session(self) -> Iterator[Any]:
        with self._pool.connection() as conn, conn.cursor() as cur:
            yield cur

    def _transaction(self, handle: Any) -> Any:
        return _transaction(handle)

    def _rows(self, handle: Any, query: Any, params: Sequence[Any]) -> list[Any]:
        handle.execute(query, params)
        return list(handle.fetchall())

    def _row(self, handle: Any, query: Any, params: Sequence[Any]) -> Any:
        handle.execute(query, params)
        return handle.fetchone()

    def _exec(self, handle: Any, query: Any, params: Sequence[Any]) -> int:
        return int(handle.execute(query, params or None))

    def _is_deadlock(self, exc: BaseException | None) -> bool:
        return my.error_code(exc) == my.ER_LOCK_DEADLOCK

    def _timestamp(self, value: Any) -> datetime | None:
        return my.utc(value)

    def _drop_statements(self) -> list[str]:
        return my.drop_statements(self._names)

    def _put(
        self, handle: Any, namespace: str, key: str, value: bytes, if_absent: bool, if_version: int | None
    ) -> int:
        k = key.encode()
        if if_absent:
            try:
                handle.execute(self._q["insert"], (namespace, k, value))
            except pymysql.err.IntegrityError as exc:
                if my.error_code(exc) == my.ER_DUP_ENTRY:
                    raise ConflictError(f"key {key!r} already exists in {namespace!r}") from None
                raise
            return 1
        if if_version is not None:
            if handle.execute(self._q["update_if"], (value, namespace, k, if_version)) != 1:
                raise ConflictError(f"key {key!r} in {namespace!r} is no longer at version {if_version}")
            return if_version + 1
        # 1 row affected: inserted (version 1); 2: updated, and LAST_INSERT_ID carries the new version
        if handle.execute(self._q["upsert"], (namespace, k, value)) == 1:
            return 1
        return int(handle.lastrowid)

    def _delete(self, handle: Any, namespace: str, key: str, if_version: int | None) -> bool:
        if if_version is None:
            return bool(handle.execute(self._q["delete"], (namespace, key.encode())) == 1)
        if handle.execute(self._q["delete_if"], (namespace, key.encode(), if_version)) != 1:
            raise ConflictError(f"key {key!r} in {namespace!r} is no longer at version {if_version}")
        return True

    def _insert_blob(self, handle: Any, digest: str, upload: int, size: int) -> datetime | None:
        created = utc_now()
        try:
            handle.execute(self._q["insert_blob"], (digest, upload, size, created.replace(tzinfo=None)))
        except pymysql.err.IntegrityError as exc:
            if my.error_code(exc) == my.ER_DUP_ENTRY:
                return None
            raise
        return created

    def _delete_blob_on(self, handle: Any, digest: str) -> bool:
        row = self._row(handle, self._q["blob_upload_for_update"], (digest,))
        if row is None:
            return False
        self._exec(handle, self._q["delete_blob"], (digest,))
        self._exec(handle, self._q["delete_chunks"], (row[0],))
        return True

    # lifecycle ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Close every pooled connection. Idempotent."""
        self._pool.close()
