"""The PostgreSQL driver (``postgresql://user:password@host:port/db?prefix=p_&schema=s``), psycopg 3
with a connection pool (extra ``[postgres]``).

Layout: a key-value table ``<prefix>keepup_kv`` (namespace, key as ``bytea`` so keys compare in
UTF-8 byte order whatever the database collation, value, version), a blob table
``<prefix>keepup_blobs`` and its chunk table ``<prefix>keepup_blob_chunks``, plus the migrations
table. ``schema=`` puts them in that schema (created if missing).

Guarantees: every put and delete is one statement (create-only is ``INSERT … ON CONFLICT DO
NOTHING``, compare-and-set is ``UPDATE … WHERE version = …``), a batch is one transaction
(``atomic_batch``), a blob is written in one transaction and becomes visible only when complete.
``durable`` runs with ``synchronous_commit = on`` (acknowledged after the WAL is flushed; the
server's ``fsync`` setting must be on), ``relaxed`` with ``synchronous_commit = off`` (a crash
of the server may lose the last few hundred milliseconds of acknowledged writes, never corrupt).

URL options: ``prefix`` (table-name prefix, at most 32 of ``a-z 0-9 _``), ``schema``,
``pool_size`` (most connections this process opens, default 4), ``max_value_size``, ``read_only``
(``1``: never migrate, refuse a store that needs it, and open read-only sessions); every other
query parameter is a libpq parameter (``connect_timeout`` defaults to 5 seconds)."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg import sql
from runtime_core import (
    BlobInfo,
    ConflictError,
    Delete,
    Durability,
    Entry,
    KeepupError,
    NotFoundError,
    Put,
    ValidationError,
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

__all__ = ["PostgresDriver", "migrations", "table_names"]

_T = TypeVar("_T")
_KIND = "PostgreSQL"
_OWN_OPTIONS = ("prefix", "schema", "pool_size", "max_value_size", "read_only")
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_STORED_CHUNK = 1 << 20  # blob bytes per chunk row
_READ_AHEAD = 4  # chunk rows fetched per query when streaming a blob out
_SCAN_PAGE = 500  # rows fetched per query when a scan has no (small) limit
_MAX_VALUE = 64 << 20
_DEADLOCK_RETRIES = 5

_MIGRATION_STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "key-value table",
        (
            "CREATE TABLE {kv} (ns text NOT NULL, k bytea NOT NULL, v bytea NOT NULL, "
            "ver bigint NOT NULL, PRIMARY KEY (ns, k))",
        ),
    ),
    (
        "blob area",
        (
            "CREATE TABLE {blobs} (digest text PRIMARY KEY, upload bigint NOT NULL, "
            "size bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
            "CREATE TABLE {chunks} (upload bigint NOT NULL, seq integer NOT NULL, data bytea NOT NULL, "
            "PRIMARY KEY (upload, seq))",
            # blobs are usually compressed already: do not spend CPU on TOAST compression
            "ALTER TABLE {chunks} ALTER COLUMN data SET STORAGE EXTERNAL",
        ),
    ),
)
# Append new steps at the end; never edit or reorder old ones (stores record them by number and name).


def table_names(prefix: str = "", schema: str | None = None) -> dict[str, str]:
    """The quoted, schema-qualified names of a store's tables (``kv``, ``blobs``, ``chunks``,
    ``migrations``), for ``prefix`` and ``schema``."""
    store_prefix(prefix)
    if schema is not None and not _SCHEMA_RE.match(schema):
        raise ValidationError(f"a schema name is 1-63 characters of a-z, 0-9, '_'; got {schema!r:.80}")
    # both parts are validated to [a-z0-9_], so double quotes need no escaping
    qualifier = f'"{schema}".' if schema else ""
    tables = {"kv": "kv", "blobs": "blobs", "chunks": "blob_chunks", "migrations": "migrations"}
    return {role: f'{qualifier}"{prefix}keepup_{table}"' for role, table in tables.items()}


def migrations(prefix: str = "", schema: str | None = None) -> list[Migration]:
    """The schema of a store with ``prefix`` and ``schema``, as the ordered migrations the shared
    runner applies (version 1 is the oldest schema)."""
    names = table_names(prefix, schema)
    return [
        Migration(version, title, tuple(step.format(**names) for step in steps))
        for version, (title, steps) in enumerate(_MIGRATION_STEPS, start=1)
    ]


class _Dedup(Exception):
    """Raised inside a blob transaction to roll it back: the blob was already stored."""


class PostgresDriver:
    """An ordered key-value store and blob area in PostgreSQL tables (see the module docstring
    for the layout and guarantees). Thread-safe; open one per process."""

    def __init__(
        self,
        url: str,
        *,
        durability: Durability = Durability.DURABLE,
        prefix: str = "",
        schema: str | None = None,
        pool_size: int = 4,
        max_value_size: int = _MAX_VALUE,
        read_only: bool = False,
    ) -> None:
        self._url = redact_url(url)
        self._read_only = read_only
        self._raw_url = url
        self._prefix = store_prefix(prefix)
        if schema is not None and not _SCHEMA_RE.match(schema):
            raise ValidationError(f"a schema name is 1-63 characters of a-z, 0-9, '_'; got {schema!r:.80}")
        self._schema = schema
        self._durability = Durability(durability)
        self._max_value_size = max_value_size
        conninfo, _ = split_options(self._libpq_url(url), _OWN_OPTIONS)
        kwargs: dict[str, Any] = {}
        if "connect_timeout" not in conninfo:
            kwargs["connect_timeout"] = int(DEFAULT_CONNECT_TIMEOUT)
        self._conninfo = psycopg.conninfo.make_conninfo(conninfo, **kwargs)
        try:
            with psycopg.connect(self._conninfo) as conn:
                self._migrate(conn)
                self._q = _Queries(conn, self._names())
        except KeepupError:
            raise
        except psycopg.Error as exc:
            raise unavailable(_KIND, url, exc) from None
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = psycopg_pool.ConnectionPool(
            self._conninfo,
            kwargs={"autocommit": True},
            min_size=1,
            max_size=pool_size,
            configure=self._configure,
            open=False,
            num_workers=1,
            name=f"keepup-{self._prefix or 'store'}",
        )
        try:
            self._pool.open(wait=True, timeout=DEFAULT_CONNECT_TIMEOUT * 2)
        except psycopg_pool.PoolTimeout as exc:
            self._pool.close()
            raise unavailable(_KIND, url, exc) from None

    @classmethod
    def from_url(
        cls, url: str, *, durability: Durability = Durability.DURABLE, **options: Any
    ) -> PostgresDriver:
        """Open (creating or migrating the tables) the store at ``url``. Raises ValidationError
        for bad options and DriverUnavailableError when the server does not answer or refuses."""
        _, query = split_options(url, _OWN_OPTIONS)
        opts = merged_options(query, options, _OWN_OPTIONS, url)
        return cls(
            url,
            durability=durability,
            prefix=store_prefix(opts.get("prefix", "")),
            schema=opts.get("schema") or None,
            pool_size=int_option(opts, "pool_size", 4, low=1, high=256),
            max_value_size=int_option(opts, "max_value_size", _MAX_VALUE, low=1, high=_MAX_VALUE),
            read_only=bool_option(opts, "read_only"),
        )

    @staticmethod
    def _libpq_url(url: str) -> str:
        scheme, rest = url.split("://", 1)
        return "postgresql://" + rest if scheme.lower().startswith(("postgresql", "postgres")) else url

    def _names(self) -> dict[str, sql.Composable]:
        return {role: sql.SQL(name) for role, name in table_names(self._prefix, self._schema).items()}

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        level = "on" if self._durability is Durability.DURABLE else "off"
        conn.execute(sql.SQL("SET synchronous_commit TO {}").format(sql.SQL(level)))
        if self._read_only:
            conn.execute("SET default_transaction_read_only TO on")

    # schema ------------------------------------------------------------------------------------
    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        """Create or migrate the tables, one opener at a time (a session advisory lock keyed by the
        table names, held around the shared runner's transaction)."""
        key = hashlib.blake2b(f"keepup:{self._schema}:{self._prefix}".encode(), digest_size=8).digest()
        lock = int.from_bytes(key, "big", signed=True)
        conn.execute("SELECT pg_advisory_lock(%s)", (lock,))
        conn.commit()
        try:
            if self._schema and not self._read_only:
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self._schema)))
                conn.commit()
            self._runner().migrate(conn, read_only=self._read_only, store=self._url)
        finally:
            conn.rollback()
            conn.execute("SELECT pg_advisory_unlock(%s)", (lock,))
            conn.commit()

    def _runner(self) -> MigrationRunner:
        return MigrationRunner(
            migrations(self._prefix, self._schema),
            table=table_names(self._prefix, self._schema)["migrations"],
            placeholder="%s",
        )

    def schema_status(self) -> SchemaStatus:
        """The store's schema version against this code's (up to date after a read-write open)."""
        with self._op("read the schema version") as conn:
            return self._runner().status(conn, self._url)

    # plumbing ----------------------------------------------------------------------------------
    @contextmanager
    def _op(self, action: str) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except KeepupError:
            raise
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise storage_failure(_KIND, self._raw_url, action, exc) from exc

    def _retrying(self, action: str, work: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """Run ``work`` in a transaction, again if the server aborted it for a deadlock (an
        aborted transaction has no effect, so running it again is safe)."""
        for attempt in range(_DEADLOCK_RETRIES):
            try:
                with self._op(action) as conn, conn.transaction():
                    return work(conn)
            except KeepupError as exc:
                cause = exc.__cause__
                if isinstance(cause, psycopg.errors.DeadlockDetected) and attempt < _DEADLOCK_RETRIES - 1:
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
        with self._op("get") as conn:
            row = conn.execute(self._q.get, (namespace, key.encode()), binary=True).fetchone()
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
        rows, each page a consistent snapshot; keys written during the scan may or may not appear."""
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
            query = self._q.scan(reverse, low_inclusive, high is not None)
            params: list[Any] = [namespace, low]
            if high is not None:
                params.append(high)
            params.append(page)
            with self._op("scan") as conn:
                rows = conn.execute(query, params, binary=True).fetchall()
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
        with self._op("put") as conn:
            return self._put(conn, namespace, key, bytes(value), if_absent, if_version)

    def _put(
        self,
        conn: psycopg.Connection[Any],
        namespace: str,
        key: str,
        value: bytes,
        if_absent: bool,
        if_version: int | None,
    ) -> int:
        k = key.encode()
        if if_absent:
            row = conn.execute(self._q.insert, (namespace, k, value)).fetchone()
            if row is None:
                raise ConflictError(f"key {key!r} already exists in {namespace!r}")
            return 1
        if if_version is not None:
            row = conn.execute(self._q.update_if, (value, namespace, k, if_version)).fetchone()
            if row is None:
                raise ConflictError(f"key {key!r} in {namespace!r} is no longer at version {if_version}")
            return int(row[0])
        row = conn.execute(self._q.upsert, (namespace, k, value)).fetchone()
        assert row is not None
        return int(row[0])

    def delete(self, namespace: str, key: str, *, if_version: int | None = None) -> bool:
        check_key_op(namespace, key, if_version)
        with self._op("delete") as conn:
            return self._delete(conn, namespace, key, if_version)

    def _delete(
        self, conn: psycopg.Connection[Any], namespace: str, key: str, if_version: int | None
    ) -> bool:
        if if_version is None:
            return conn.execute(self._q.delete, (namespace, key.encode())).fetchone() is not None
        if conn.execute(self._q.delete_if, (namespace, key.encode(), if_version)).fetchone() is None:
            raise ConflictError(f"key {key!r} in {namespace!r} is no longer at version {if_version}")
        return True

    def batch(self, ops: Sequence[Put | Delete]) -> list[int | bool]:
        """All or nothing, in one transaction; a lost condition raises ConflictError and rolls
        back every op of the batch."""
        check_batch(ops, self._max_value_size)

        def work(conn: psycopg.Connection[Any]) -> list[int | bool]:
            results: list[int | bool] = []
            for op in ops:
                if isinstance(op, Put):
                    results.append(
                        self._put(conn, op.namespace, op.key, bytes(op.value), op.if_absent, op.if_version)
                    )
                else:
                    results.append(self._delete(conn, op.namespace, op.key, op.if_version))
            return results

        return self._retrying("batch", work) if ops else []

    # blobs -------------------------------------------------------------------------------------
    def put_blob(self, data: bytes, digest: str | None = None) -> BlobInfo:
        data = bytes(data)
        actual = check_digest_of(data, digest)
        existing = self._blob_info(actual)
        if existing is not None:
            return existing
        view = memoryview(data)
        return self._store_blob(
            (view[i : i + _STORED_CHUNK] for i in range(0, len(data), _STORED_CHUNK)), actual
        )

    def put_blob_stream(self, chunks: Iterable[bytes]) -> BlobInfo:
        """Store the stream in one transaction, 1 MiB per row, in bounded memory; the blob becomes
        visible only when the whole stream is stored."""
        return self._store_blob(rechunk(chunks, _STORED_CHUNK), None)

    def _store_blob(self, chunks: Iterable[bytes | memoryview], expected: str | None) -> BlobInfo:
        upload = secrets.randbits(63)
        try:
            with self._op("put_blob") as conn, conn.transaction():
                h = hashlib.sha256()
                size = 0
                with conn.cursor() as cur:
                    for seq, chunk in enumerate(chunks):
                        h.update(chunk)
                        size += len(chunk)
                        cur.execute(self._q.insert_chunk, (upload, seq, chunk))
                digest = h.hexdigest()
                if expected is not None and digest != expected:
                    raise ValidationError(f"blob digest {expected} does not match its content ({digest})")
                row = conn.execute(self._q.insert_blob, (digest, upload, size)).fetchone()
                if row is None:
                    raise _Dedup(digest)
                return BlobInfo(digest, size, row[0])
        except _Dedup as dup:
            info = self._blob_info(str(dup.args[0]))
            if info is None:  # deleted again in between: store it now
                raise ConflictError("a blob with this content was deleted while storing it; retry") from None
            return info

    def _blob_info(self, digest: str) -> BlobInfo | None:
        with self._op("blob lookup") as conn:
            row = conn.execute(self._q.blob_info, (digest,)).fetchone()
        return BlobInfo(digest, int(row[0]), row[1]) if row else None

    def get_blob(self, digest: str) -> bytes:
        return b"".join(self.open_blob(digest))

    def open_blob(self, digest: str, chunk_size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
        validate_digest(digest)
        check_chunk_size(chunk_size)
        with self._op("open_blob") as conn:
            row = conn.execute(self._q.blob_upload, (digest,)).fetchone()
        if row is None:
            raise NotFoundError(f"blob {digest} not found")
        return verified_chunks(self._read_chunks(digest, int(row[0]), chunk_size), digest)

    def _read_chunks(self, digest: str, upload: int, chunk_size: int) -> Iterator[bytes]:
        seq = 0
        while True:
            with self._op("read blob") as conn:
                rows = conn.execute(self._q.read_chunks, (upload, seq, _READ_AHEAD), binary=True).fetchall()
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
        with self._op("has_blob") as conn:
            return conn.execute(self._q.blob_upload, (digest,)).fetchone() is not None

    def delete_blob(self, digest: str) -> bool:
        validate_digest(digest)

        def work(conn: psycopg.Connection[Any]) -> bool:
            row = conn.execute(self._q.delete_blob, (digest,)).fetchone()
            if row is None:
                return False
            conn.execute(self._q.delete_chunks, (row[0],))
            return True

        return self._retrying("delete_blob", work)

    def list_blobs(self) -> Iterator[BlobInfo]:
        """Every blob with its size and creation time, read in pages (no particular order is
        promised; today it is by digest)."""
        last = ""
        while True:
            with self._op("list_blobs") as conn:
                rows = conn.execute(self._q.list_blobs, (last, _SCAN_PAGE)).fetchall()
            for digest, size, created_at in rows:
                yield BlobInfo(str(digest), int(size), created_at)
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
        names = self._names()
        with self._op("destroy") as conn, conn.transaction():
            for table in ("chunks", "blobs", "kv", "migrations"):
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(names[table]))

    # test hooks: let the corruption tests damage stored bytes the way a disk would
    def _raw_blob(self, digest: str) -> bytes:
        with self._op("raw blob") as conn:
            row = conn.execute(self._q.blob_upload, (digest,)).fetchone()
            assert row is not None
            rows = conn.execute(self._q.read_chunks, (row[0], 0, 1 << 30), binary=True).fetchall()
        return b"".join(bytes(r[1]) for r in rows)

    def _set_raw_blob(self, digest: str, data: bytes) -> None:
        with self._op("raw blob") as conn, conn.transaction():
            row = conn.execute(self._q.blob_upload, (digest,)).fetchone()
            assert row is not None
            conn.execute(self._q.delete_chunks, (row[0],))
            for seq, chunk in enumerate(rechunk([data], _STORED_CHUNK)):
                conn.execute(self._q.insert_chunk, (row[0], seq, chunk))


class _Queries:
    """Every statement, composed once with the store's table names (bytes, so psycopg can
    prepare them and need not compose them again)."""

    def __init__(self, conn: psycopg.Connection[Any], names: dict[str, sql.Composable]) -> None:
        def q(text: str) -> bytes:
            return sql.SQL(text).format(**names).as_bytes(conn)

        self.get = q("SELECT v, ver FROM {kv} WHERE ns = %s AND k = %b")
        self.insert = q(
            "INSERT INTO {kv} (ns, k, v, ver) VALUES (%s, %b, %b, 1) ON CONFLICT (ns, k) DO NOTHING RETURNING ver"
        )
        self.update_if = q(
            "UPDATE {kv} SET v = %b, ver = ver + 1 WHERE ns = %s AND k = %b AND ver = %s RETURNING ver"
        )
        self.upsert = q(
            "INSERT INTO {kv} AS t (ns, k, v, ver) VALUES (%s, %b, %b, 1) "
            "ON CONFLICT (ns, k) DO UPDATE SET v = EXCLUDED.v, ver = t.ver + 1 RETURNING ver"
        )
        self.delete = q("DELETE FROM {kv} WHERE ns = %s AND k = %b RETURNING ver")
        self.delete_if = q("DELETE FROM {kv} WHERE ns = %s AND k = %b AND ver = %s RETURNING ver")
        self._scans: dict[tuple[bool, bool, bool], bytes] = {}
        for reverse in (False, True):
            for low_inclusive in (False, True):
                for has_high in (False, True):
                    where = "ns = %s AND k " + (">= %b" if low_inclusive else "> %b")
                    if has_high:
                        where += " AND k < %b"
                    order = "DESC" if reverse else "ASC"
                    self._scans[(reverse, low_inclusive, has_high)] = q(
                        f"SELECT k, v, ver FROM {{kv}} WHERE {where} ORDER BY k {order} LIMIT %s"
                    )
        self.insert_chunk = q("INSERT INTO {chunks} (upload, seq, data) VALUES (%s, %s, %b)")
        self.insert_blob = q(
            "INSERT INTO {blobs} (digest, upload, size) VALUES (%s, %s, %s) "
            "ON CONFLICT (digest) DO NOTHING RETURNING created_at"
        )
        self.blob_info = q("SELECT size, created_at FROM {blobs} WHERE digest = %s")
        self.blob_upload = q("SELECT upload FROM {blobs} WHERE digest = %s")
        self.read_chunks = q(
            "SELECT seq, data FROM {chunks} WHERE upload = %s AND seq >= %s ORDER BY seq LIMIT %s"
        )
        self.delete_blob = q("DELETE FROM {blobs} WHERE digest = %s RETURNING upload")
        self.delete_chunks = q("DELETE FROM {chunks} WHERE upload = %s")
        self.list_blobs = q(
            "SELECT digest, size, created_at FROM {blobs} WHERE digest > %s ORDER BY digest LIMIT %s"
        )

    def scan(self, reverse: bool, low_inclusive: bool, has_high: bool) -> bytes:
        return self._scans[(reverse, low_inclusive, has_high)]
