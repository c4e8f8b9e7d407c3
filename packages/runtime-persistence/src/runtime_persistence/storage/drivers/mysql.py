"""The MySQL / MariaDB driver (``mysql://user:password@host:port/db?prefix=p_``, also ``mariadb://``),
PyMySQL with a small connection pool (extra ``[mysql]``).

Layout (InnoDB): a key-value table ``<prefix>keepup_kv`` (namespace, key as ``VARBINARY`` so keys
compare in UTF-8 byte order whatever the collation, value, version), a blob table
``<prefix>keepup_blobs`` and its chunk table ``<prefix>keepup_blob_chunks``, and the migrations
table.

Guarantees: every put and delete is one statement (create-only is a plain ``INSERT`` that fails on
the primary key, compare-and-set is ``UPDATE … WHERE version = …``), a batch is one transaction
(``atomic_batch``), a blob is written in one transaction and becomes visible only when complete.
Statements the server aborts for a deadlock are run again (an aborted statement had no effect).

Durability is the server's: MySQL has no per-session switch, so ``durable`` and ``relaxed`` behave
the same here. A write is on stable storage when acknowledged only if the server runs with
``innodb_flush_log_at_trx_commit = 1`` (the default) and, with binary logging, ``sync_binlog = 1``.

Limits: PyMySQL sends values escaped in the statement text, which can double their size, so
``max_value_size`` is half the server's ``max_allowed_packet`` (read when the store is opened)
less some headroom, and at most 64 MiB. Larger data belongs in the blob area.

URL options: ``prefix`` (table-name prefix, at most 32 of ``a-z 0-9 _``), ``pool_size`` (most
connections this process opens, default 4), ``connect_timeout`` (seconds, default 5),
``max_value_size`` (to lower the limit), ``unix_socket``, ``ssl_ca`` (a CA file: use TLS),
``read_only`` (``1``: never migrate, refuse a store that needs it, and open read-only sessions)."""

from __future__ import annotations

import hashlib
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import pymysql
from runtime_core import (
    BlobInfo,
    ConflictError,
    Delete,
    Durability,
    Entry,
    KeepupError,
    NotFoundError,
    Put,
    StorageError,
    ValidationError,
    utc_now,
    validate_digest,
)

from runtime_persistence.storage.drivers._common import (
    DEFAULT_CHUNK,
    check_batch,
    check_chunk_size,
    check_digest_of,
    check_key_op,
    check_put,
    check_scan,
    key_bounds,
    verified_chunks,
)
from runtime_persistence.storage.drivers._migrations import Migration, MigrationRunner, SchemaStatus
from runtime_persistence.storage.drivers._servers import (
    DEFAULT_CONNECT_TIMEOUT,
    bool_option,
    float_option,
    int_option,
    merged_options,
    missing_chunk,
    pieces,
    rechunk,
    split_options,
    storage_failure,
    store_prefix,
    unavailable,
)
from runtime_persistence.storage.stores import redact_url

__all__ = ["MysqlDriver", "migrations", "table_names"]

_T = TypeVar("_T")
_KIND = "MySQL"
_OPTIONS = ("prefix", "pool_size", "connect_timeout", "max_value_size", "unix_socket", "ssl_ca", "read_only")
_MAX_VALUE = 64 << 20
_HEADROOM = 64 << 10  # statement text around a value: keys, names, escaping prefix
_STORED_CHUNK = 1 << 20
_READ_AHEAD = 4
_SCAN_PAGE = 500
_IDLE_CHECK = 30.0  # seconds idle after which a pooled connection is pinged before use
_RETRIES = 5
_ER_DUP_ENTRY = 1062
_ER_LOCK_DEADLOCK = 1213

_MIGRATION_STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "key-value table",
        (
            "CREATE TABLE {kv} (ns VARCHAR(63) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, "
            "k VARBINARY(512) NOT NULL, v LONGBLOB NOT NULL, ver BIGINT NOT NULL, "
            "PRIMARY KEY (ns, k)) ENGINE=InnoDB",
        ),
    ),
    (
        "blob area",
        (
            "CREATE TABLE {blobs} (digest CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL "
            "PRIMARY KEY, upload BIGINT NOT NULL, size BIGINT NOT NULL, created_at DATETIME(6) NOT NULL) "
            "ENGINE=InnoDB",
            "CREATE TABLE {chunks} (upload BIGINT NOT NULL, seq INT NOT NULL, data MEDIUMBLOB NOT NULL, "
            "PRIMARY KEY (upload, seq)) ENGINE=InnoDB",
        ),
    ),
)
# Append new steps at the end; never edit or reorder old ones (stores record them by number and name).


def table_names(prefix: str = "") -> dict[str, str]:
    """The quoted names of a store's tables (``kv``, ``blobs``, ``chunks``, ``migrations``)."""
    store_prefix(prefix)  # [a-z0-9_] only, so backquotes need no escaping
    tables = {"kv": "kv", "blobs": "blobs", "chunks": "blob_chunks", "migrations": "migrations"}
    return {role: f"`{prefix}keepup_{table}`" for role, table in tables.items()}


def migrations(prefix: str = "") -> list[Migration]:
    """The schema of a store with ``prefix`` as the ordered migrations the shared runner applies
    (version 1 is the oldest schema). MySQL commits each DDL statement on its own, so a crash in
    the middle of a migration can leave it half applied; opening again reports the mismatch."""
    names = table_names(prefix)
    return [
        Migration(version, title, tuple(step.format(**names) for step in steps))
        for version, (title, steps) in enumerate(_MIGRATION_STEPS, start=1)
    ]


class _Dedup(Exception):
    """Raised inside a blob transaction to roll it back: the blob was already stored."""


class _Pool:
    """A small thread-safe pool of autocommit PyMySQL connections (PyMySQL has none)."""

    def __init__(self, connect: Callable[[], pymysql.Connection[Any]], size: int, wait: float) -> None:
        self._connect = connect
        self._slots = threading.BoundedSemaphore(size)
        self._idle: queue.LifoQueue[tuple[pymysql.Connection[Any], float]] = queue.LifoQueue()
        self._wait = wait
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[pymysql.Connection[Any]]:
        if self._closed:
            raise StorageError("this MySQL store was closed")
        if not self._slots.acquire(timeout=self._wait):
            raise StorageError(f"no MySQL connection became free within {self._wait:g} seconds")
        conn: pymysql.Connection[Any] | None = None
        healthy = True
        try:
            conn = self._take()
            yield conn
        except (pymysql.err.OperationalError, pymysql.err.InterfaceError):
            healthy = False  # the connection may be broken or mid-transaction: never reuse it
            raise
        finally:
            if conn is not None:
                if healthy and not self._closed and conn.open:
                    self._idle.put((conn, time.monotonic()))
                else:
                    _close_quietly(conn)
            self._slots.release()

    def _take(self) -> pymysql.Connection[Any]:
        while True:
            try:
                conn, since = self._idle.get_nowait()
            except queue.Empty:
                return self._connect()
            if time.monotonic() - since < _IDLE_CHECK:
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
                conn, _ = self._idle.get_nowait()
            except queue.Empty:
                return
            _close_quietly(conn)


def _close_quietly(conn: pymysql.Connection[Any]) -> None:
    try:
        conn.close()
    except Exception:  # already closed or broken: nothing to release
        return


def _error_code(exc: BaseException | None) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


class MysqlDriver:
    """An ordered key-value store and blob area in MySQL / MariaDB tables (see the module
    docstring for the layout and guarantees). Thread-safe; open one per process."""

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
    ) -> None:
        self._url = redact_url(url)
        self._read_only = read_only
        self._raw_url = url
        self._prefix = store_prefix(prefix)
        self._durability = Durability(durability)
        parts = urlsplit(url)
        database = unquote(parts.path.lstrip("/"))
        if not database or "/" in database:
            raise ValidationError(f"a MySQL store URL names one database: mysql://host/db; got {self._url}")
        self._params: dict[str, Any] = {
            "host": parts.hostname or "localhost",
            "port": parts.port or 3306,
            "user": unquote(parts.username) if parts.username else "root",
            "password": unquote(parts.password) if parts.password else "",
            "database": database,
            "autocommit": True,
            "charset": "utf8mb4",
            "binary_prefix": True,
            "connect_timeout": connect_timeout,
            "init_command": "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",
        }
        if unix_socket:
            self._params["unix_socket"] = unix_socket
        if ssl_ca:
            self._params["ssl"] = {"ca": ssl_ca}
        self._names = table_names(self._prefix)
        try:
            conn = self._connect()
            try:
                self._migrate(conn)
                with conn.cursor() as cur:
                    cur.execute("SELECT @@max_allowed_packet")
                    row = cur.fetchone()
                packet = int(row[0]) if row else 1 << 20
            finally:
                _close_quietly(conn)
        except KeepupError:
            raise
        except pymysql.MySQLError as exc:
            raise unavailable(_KIND, url, exc) from None
        limit = max(0, min(_MAX_VALUE, (packet - _HEADROOM) // 2))
        self._max_value_size = limit if max_value_size is None else min(limit, max_value_size)
        self._chunk = max(1 << 10, min(_STORED_CHUNK, (packet - _HEADROOM) // 2))
        self._pool = _Pool(self._connect, pool_size, 30.0)
        self._q = _queries(self._names)

    @classmethod
    def from_url(
        cls, url: str, *, durability: Durability = Durability.DURABLE, **options: Any
    ) -> MysqlDriver:
        """Open (creating or migrating the tables) the store at ``url``. Raises ValidationError
        for bad options and DriverUnavailableError when the server does not answer or refuses."""
        clean, query = split_options(url, _OPTIONS)
        if urlsplit(clean).query:
            raise ValidationError(
                f"unknown URL option(s) in {redact_url(url)}; the MySQL driver knows: {', '.join(_OPTIONS)}"
            )
        opts = merged_options(query, options, _OPTIONS, url)
        return cls(
            url,
            durability=durability,
            prefix=store_prefix(opts.get("prefix", "")),
            pool_size=int_option(opts, "pool_size", 4, low=1, high=256),
            connect_timeout=float_option(opts, "connect_timeout", DEFAULT_CONNECT_TIMEOUT, low=0.1, high=600),
            max_value_size=int_option(opts, "max_value_size", _MAX_VALUE, low=1, high=_MAX_VALUE)
            if "max_value_size" in opts
            else None,
            unix_socket=opts.get("unix_socket") or None,
            ssl_ca=opts.get("ssl_ca") or None,
            read_only=bool_option(opts, "read_only"),
        )

    def _connect(self) -> pymysql.Connection[Any]:
        conn = pymysql.connect(**self._params)
        if self._read_only:
            with conn.cursor() as cur:
                cur.execute("SET SESSION TRANSACTION READ ONLY")
        return conn

    def _migrate(self, conn: pymysql.Connection[Any]) -> None:
        """Create or migrate the tables, one opener at a time (a named server lock)."""
        lock = (
            "keepup:"
            + hashlib.blake2b(
                f"{self._params['database']}:{self._prefix}".encode(), digest_size=16
            ).hexdigest()
        )
        if self._read_only:
            self._runner().migrate(conn, read_only=True, store=self._url)
            return
        conn.autocommit(False)
        with conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, 60)", (lock,))
            got = cur.fetchone()
            if not got or got[0] != 1:
                raise StorageError(f"another process has been migrating {self._url} for a minute; try again")
            try:
                self._runner().migrate(conn, store=self._url)
            finally:
                cur.execute("SELECT RELEASE_LOCK(%s)", (lock,))
                conn.commit()
        conn.autocommit(True)

    def _runner(self) -> MigrationRunner:
        return MigrationRunner(migrations(self._prefix), table=self._names["migrations"], placeholder="%s")

    def schema_status(self) -> SchemaStatus:
        """The store's schema version against this code's (up to date after a read-write open)."""
        try:
            with self._pool.connection() as conn:
                return self._runner().status(conn, self._url)
        except pymysql.MySQLError as exc:
            raise storage_failure(_KIND, self._raw_url, "read the schema version", exc) from exc

    # plumbing ----------------------------------------------------------------------------------
    @contextmanager
    def _op(self, action: str) -> Iterator[Any]:
        try:
            with self._pool.connection() as conn, conn.cursor() as cur:
                yield cur
        except KeepupError:
            raise
        except pymysql.MySQLError as exc:
            raise storage_failure(_KIND, self._raw_url, action, exc) from exc

    def _run(self, action: str, work: Callable[[Any], _T], *, transaction: bool = False) -> _T:
        """Run ``work(cursor)``; again when the server aborted it for a deadlock (an aborted
        statement or transaction had no effect). With ``transaction``, inside BEGIN … COMMIT."""
        for attempt in range(_RETRIES):
            try:
                with self._op(action) as cur:
                    if not transaction:
                        return work(cur)
                    conn = cur.connection
                    conn.begin()
                    try:
                        result = work(cur)
                        conn.commit()
                        return result
                    except BaseException:
                        conn.rollback()
                        raise
            except StorageError as exc:
                if _error_code(exc.__cause__) == _ER_LOCK_DEADLOCK and attempt < _RETRIES - 1:
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    # properties --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self._url

    @property
    def atomic_batch(self) -> bool:
        return True

    @property
    def max_value_size(self) -> int:
        return self._max_value_size

    @property
    def durability(self) -> Durability:
        return self._durability

    # key-value ---------------------------------------------------------------------------------
    def get(self, namespace: str, key: str) -> Entry | None:
        check_key_op(namespace, key)
        with self._op("get") as cur:
            cur.execute(self._q["get"], (namespace, key.encode()))
            row = cur.fetchone()
        return Entry(key, bytes(row[0]), int(row[1])) if row else None

    def scan(
        self,
        namespace: str,
        *,
        prefix: str = "",
        after: str | None = None,
        before: str | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[Entry]:
        """See :meth:`runtime_core.Driver.scan`. Large scans are read in pages of a few hundred
        rows; keys written during the scan may or may not appear."""
        check_scan(namespace, prefix, after, before, limit)
        low, low_inclusive, high = key_bounds(prefix, after, before)
        return self._scan_pages(namespace, low, low_inclusive, high, reverse, limit)

    def _scan_pages(
        self,
        namespace: str,
        low: bytes,
        low_inclusive: bool,
        high: bytes | None,
        reverse: bool,
        limit: int | None,
    ) -> Iterator[Entry]:
        remaining = limit
        while remaining is None or remaining > 0:
            page = _SCAN_PAGE if remaining is None else min(remaining, _SCAN_PAGE)
            where = "ns = %s AND k " + (">= %s" if low_inclusive else "> %s")
            params: list[Any] = [namespace, low]
            if high is not None:
                where += " AND k < %s"
                params.append(high)
            params.append(page)
            order = "DESC" if reverse else "ASC"
            with self._op("scan") as cur:
                cur.execute(
                    f"SELECT k, v, ver FROM {self._names['kv']} WHERE {where} ORDER BY k {order} LIMIT %s",
                    params,
                )
                rows = cur.fetchall()
            for k, v, ver in rows:
                yield Entry(bytes(k).decode(), bytes(v), int(ver))
            if len(rows) < page:
                return
            if remaining is not None:
                remaining -= len(rows)
            last = bytes(rows[-1][0])
            if reverse:
                high = last
            else:
                low, low_inclusive = last, False

    def put(
        self,
        namespace: str,
        key: str,
        value: bytes,
        *,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> int:
        check_put(namespace, key, value, if_absent, if_version, self._max_value_size)
        data = bytes(value)
        return self._run("put", lambda cur: self._put(cur, namespace, key, data, if_absent, if_version))

    def _put(
        self, cur: Any, namespace: str, key: str, value: bytes, if_absent: bool, if_version: int | None
    ) -> int:
        k = key.encode()
        if if_absent:
            try:
                cur.execute(self._q["insert"], (namespace, k, value))
            except pymysql.err.IntegrityError as exc:
                if _error_code(exc) == _ER_DUP_ENTRY:
                    raise ConflictError(f"key {key!r} already exists in {namespace!r}") from None
                raise
            return 1
        if if_version is not None:
            if cur.execute(self._q["update_if"], (value, namespace, k, if_version)) != 1:
                raise ConflictError(f"key {key!r} in {namespace!r} is no longer at version {if_version}")
            return if_version + 1
        # 1 row affected: inserted (version 1); 2: updated, and LAST_INSERT_ID carries the new version
        if cur.execute(self._q["upsert"], (namespace, k, value)) == 1:
            return 1
        return int(cur.lastrowid)

    def delete(self, namespace: str, key: str, *, if_version: int | None = None) -> bool:
        check_key_op(namespace, key, if_version)
        return self._run("delete", lambda cur: self._delete(cur, namespace, key, if_version))

    def _delete(self, cur: Any, namespace: str, key: str, if_version: int | None) -> bool:
        if if_version is None:
            return bool(cur.execute(self._q["delete"], (namespace, key.encode())) == 1)
        if cur.execute(self._q["delete_if"], (namespace, key.encode(), if_version)) != 1:
            raise ConflictError(f"key {key!r} in {namespace!r} is no longer at version {if_version}")
        return True

    def batch(self, ops: Sequence[Put | Delete]) -> list[int | bool]:
        """All or nothing, in one transaction; a lost condition raises ConflictError and rolls
        back every op of the batch."""
        check_batch(ops, self._max_value_size)

        def work(cur: Any) -> list[int | bool]:
            results: list[int | bool] = []
            for op in ops:
                if isinstance(op, Put):
                    results.append(
                        self._put(cur, op.namespace, op.key, bytes(op.value), op.if_absent, op.if_version)
                    )
                else:
                    results.append(self._delete(cur, op.namespace, op.key, op.if_version))
            return results

        return self._run("batch", work, transaction=True) if ops else []

    # blobs -------------------------------------------------------------------------------------
    def put_blob(self, data: bytes, digest: str | None = None) -> BlobInfo:
        data = bytes(data)
        actual = check_digest_of(data, digest)
        existing = self._blob_info(actual)
        if existing is not None:
            return existing
        view = memoryview(data)
        size = self._chunk
        return self._store_blob(view[i : i + size] for i in range(0, len(data), size))

    def put_blob_stream(self, chunks: Iterable[bytes]) -> BlobInfo:
        """Store the stream in one transaction, one row per chunk, in bounded memory; the blob
        becomes visible only when the whole stream is stored."""
        return self._store_blob(rechunk(chunks, self._chunk))

    def _store_blob(self, chunks: Iterable[bytes | memoryview]) -> BlobInfo:
        upload = secrets.randbits(63)

        def work(cur: Any) -> BlobInfo:
            h = hashlib.sha256()
            size = 0
            for seq, chunk in enumerate(chunks):
                h.update(chunk)
                size += len(chunk)
                cur.execute(self._q["insert_chunk"], (upload, seq, bytes(chunk)))
            digest = h.hexdigest()
            created = utc_now()
            try:
                cur.execute(self._q["insert_blob"], (digest, upload, size, created.replace(tzinfo=None)))
            except pymysql.err.IntegrityError as exc:
                if _error_code(exc) == _ER_DUP_ENTRY:
                    raise _Dedup(digest) from None
                raise
            return BlobInfo(digest, size, created)

        try:
            # a stream can be consumed once: no retry of the transaction here
            with self._op("put_blob") as cur:
                conn = cur.connection
                conn.begin()
                try:
                    info = work(cur)
                    conn.commit()
                    return info
                except BaseException:
                    conn.rollback()
                    raise
        except _Dedup as dup:
            info_or_none = self._blob_info(str(dup.args[0]))
            if info_or_none is None:
                raise ConflictError("a blob with this content was deleted while storing it; retry") from None
            return info_or_none

    def _blob_info(self, digest: str) -> BlobInfo | None:
        with self._op("blob lookup") as cur:
            cur.execute(self._q["blob_info"], (digest,))
            row = cur.fetchone()
        return BlobInfo(digest, int(row[0]), _utc(row[1])) if row else None

    def get_blob(self, digest: str) -> bytes:
        return b"".join(self.open_blob(digest))

    def open_blob(self, digest: str, chunk_size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
        validate_digest(digest)
        check_chunk_size(chunk_size)
        upload = self._upload_of(digest)
        if upload is None:
            raise NotFoundError(f"blob {digest} not found")
        return verified_chunks(self._read_chunks(digest, upload, chunk_size), digest)

    def _upload_of(self, digest: str) -> int | None:
        with self._op("blob lookup") as cur:
            cur.execute(self._q["blob_upload"], (digest,))
            row = cur.fetchone()
        return int(row[0]) if row else None

    def _read_chunks(self, digest: str, upload: int, chunk_size: int) -> Iterator[bytes]:
        seq = 0
        while True:
            with self._op("read blob") as cur:
                cur.execute(self._q["read_chunks"], (upload, seq, _READ_AHEAD))
                rows = cur.fetchall()
            for got, data in rows:
                if got != seq:
                    raise missing_chunk(digest, self.has_blob(digest))
                yield from pieces(bytes(data), chunk_size)
                seq += 1
            if len(rows) < _READ_AHEAD:
                if not self.has_blob(digest):
                    raise NotFoundError(f"blob {digest} was deleted while it was being read")
                return

    def has_blob(self, digest: str) -> bool:
        validate_digest(digest)
        return self._upload_of(digest) is not None

    def delete_blob(self, digest: str) -> bool:
        validate_digest(digest)

        def work(cur: Any) -> bool:
            cur.execute(self._q["blob_upload_for_update"], (digest,))
            row = cur.fetchone()
            if row is None:
                return False
            cur.execute(self._q["delete_blob"], (digest,))
            cur.execute(self._q["delete_chunks"], (row[0],))
            return True

        return self._run("delete_blob", work, transaction=True)

    def list_blobs(self) -> Iterator[BlobInfo]:
        """Every blob with its size and creation time, read in pages (no particular order is
        promised; today it is by digest)."""
        last = ""
        while True:
            with self._op("list_blobs") as cur:
                cur.execute(self._q["list_blobs"], (last, _SCAN_PAGE))
                rows = cur.fetchall()
            for digest, size, created_at in rows:
                yield BlobInfo(str(digest), int(size), _utc(created_at))
            if len(rows) < _SCAN_PAGE:
                return
            last = str(rows[-1][0])

    # lifecycle ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Close every pooled connection. Idempotent."""
        self._pool.close()

    def destroy(self) -> None:
        """Drop every table of this store (its data is gone for good). For tests and ``keepup store
        destroy``; the driver cannot be used afterwards except to close it."""
        with self._op("destroy") as cur:
            for role in ("chunks", "blobs", "kv", "migrations"):
                cur.execute(f"DROP TABLE IF EXISTS {self._names[role]}")

    # test hooks: let the corruption tests damage stored bytes the way a disk would
    def _raw_blob(self, digest: str) -> bytes:
        upload = self._upload_of(digest)
        with self._op("raw blob") as cur:
            cur.execute(self._q["read_chunks"], (upload, 0, 1 << 30))
            return b"".join(bytes(r[1]) for r in cur.fetchall())

    def _set_raw_blob(self, digest: str, data: bytes) -> None:
        upload = self._upload_of(digest)

        def work(cur: Any) -> None:
            cur.execute(self._q["delete_chunks"], (upload,))
            for seq, chunk in enumerate(rechunk([data], self._chunk)):
                cur.execute(self._q["insert_chunk"], (upload, seq, chunk))

        self._run("raw blob", work, transaction=True)


def _utc(value: Any) -> datetime | None:
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) else None


def _queries(names: dict[str, str]) -> dict[str, str]:
    kv, blobs, chunks = names["kv"], names["blobs"], names["chunks"]
    return {
        "get": f"SELECT v, ver FROM {kv} WHERE ns = %s AND k = %s",
        "insert": f"INSERT INTO {kv} (ns, k, v, ver) VALUES (%s, %s, %s, 1)",
        "update_if": f"UPDATE {kv} SET v = %s, ver = ver + 1 WHERE ns = %s AND k = %s AND ver = %s",
        "upsert": f"INSERT INTO {kv} (ns, k, v, ver) VALUES (%s, %s, %s, 1) "
        "ON DUPLICATE KEY UPDATE v = VALUES(v), ver = LAST_INSERT_ID(ver + 1)",
        "delete": f"DELETE FROM {kv} WHERE ns = %s AND k = %s",
        "delete_if": f"DELETE FROM {kv} WHERE ns = %s AND k = %s AND ver = %s",
        "insert_chunk": f"INSERT INTO {chunks} (upload, seq, data) VALUES (%s, %s, %s)",
        "insert_blob": f"INSERT INTO {blobs} (digest, upload, size, created_at) VALUES (%s, %s, %s, %s)",
        "blob_info": f"SELECT size, created_at FROM {blobs} WHERE digest = %s",
        "blob_upload": f"SELECT upload FROM {blobs} WHERE digest = %s",
        "blob_upload_for_update": f"SELECT upload FROM {blobs} WHERE digest = %s FOR UPDATE",
        "read_chunks": f"SELECT seq, data FROM {chunks} WHERE upload = %s AND seq >= %s ORDER BY seq LIMIT %s",
        "delete_blob": f"DELETE FROM {blobs} WHERE digest = %s",
        "delete_chunks": f"DELETE FROM {chunks} WHERE upload = %s",
        "list_blobs": f"SELECT digest, size, created_at FROM {blobs} WHERE digest > %s ORDER BY digest LIMIT %s",
    }
