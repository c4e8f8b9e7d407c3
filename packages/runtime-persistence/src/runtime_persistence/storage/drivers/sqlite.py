"""The SQLite driver, Keepup's default store (``sqlite:///path/to/keepup.db``).

Guarantees:

* **Durability**: WAL journal. ``durable`` (the default) runs with ``synchronous=FULL``: a write
  is fsynced before it is acknowledged. ``relaxed`` runs with ``synchronous=NORMAL``: commits are
  fsynced at checkpoints, so a power loss may lose the newest writes but never corrupts the file.
* **Atomicity**: every put and delete, conditions included, is one SQL statement; a batch is one
  ``BEGIN IMMEDIATE`` transaction (``atomic_batch`` is true).
* **Concurrency**: any number of threads (one connection per thread) and processes; writers are
  serialised by SQLite's lock and wait up to ``busy_timeout`` seconds (default 30) for it.
* **Order**: keys are stored as their UTF-8 bytes in a BLOB column, so SQLite's memcmp order is the
  contract's byte order.
* **Integrity**: each row carries a BLAKE2b-64 checksum of its namespace, key, version and value,
  checked on every read (a damaged row raises CorruptionError). Blobs are stored in 1 MiB chunk
  rows, written and read in bounded memory, and verified against their digest as they are read.
* **Schema**: migrated forward on open (table ``keepup_migrations``); ``read_only=1`` refuses a
  store that needs a migration instead of migrating it.

URL: ``sqlite:///abs/path.db`` or ``sqlite:////abs/path.db`` (absolute), ``sqlite://rel/path.db``
(relative to the working directory). Query options: ``busy_timeout`` (seconds), ``read_only``
(``1``/``true``), ``max_value_size`` (bytes).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from runtime_core import (
    BlobInfo,
    ConflictError,
    CorruptionError,
    Delete,
    Durability,
    Entry,
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
    verified_chunks,
)
from runtime_persistence.storage.drivers._migrations import Migration, MigrationRunner, SchemaStatus

__all__ = ["MIGRATIONS", "SqliteDriver"]

_STORED_CHUNK = 1 << 20  # bytes per blob_chunks row
_COMMIT_EVERY = 16  # chunk rows per transaction while streaming a blob in
_SCAN_PAGE = 512  # rows fetched per statement while scanning
_STALE_UPLOAD = timedelta(days=1)  # unfinished blob uploads older than this are removed on open
_DEFAULT_MAX_VALUE = 256 << 20


_blake2b = hashlib.blake2b


def _row_sum(namespace: str, key: bytes, version: int, value: bytes) -> bytes:
    """BLAKE2b-64 over a row's namespace, key, version and value. Namespaces and keys contain no
    NUL, so the concatenation is unambiguous."""
    if len(value) > 4096:  # hash large values in place rather than copying them
        h = _blake2b(
            b"".join((namespace.encode(), b"\x00", key, b"\x00", version.to_bytes(8, "big"))), digest_size=8
        )
        h.update(value)
        return h.digest()
    return _blake2b(
        b"".join((namespace.encode(), b"\x00", key, b"\x00", version.to_bytes(8, "big"), value)),
        digest_size=8,
    ).digest()


def _add_checksums(cursor: Any) -> None:
    cursor.execute("ALTER TABLE kv ADD COLUMN checksum BLOB")
    rows = cursor.execute("SELECT ns, key, version, value FROM kv").fetchall()
    for ns, key, version, value in rows:
        cursor.execute(
            "UPDATE kv SET checksum = ? WHERE ns = ? AND key = ?",
            (_row_sum(ns, key, version, value), ns, key),
        )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "key-value table and chunked blobs",
        (
            "CREATE TABLE kv (ns TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, "
            "version INTEGER NOT NULL, PRIMARY KEY (ns, key))",
            "CREATE TABLE blobs (id INTEGER PRIMARY KEY, digest TEXT UNIQUE, size INTEGER NOT NULL, "
            "created_at TEXT NOT NULL)",
            "CREATE TABLE blob_chunks (blob_id INTEGER NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, "
            "PRIMARY KEY (blob_id, seq))",
        ),
    ),
    Migration(2, "row checksums", _add_checksums),
)
"""The SQLite schema history (public so that tests can build an older schema)."""

_GET = "SELECT value, version, checksum FROM kv WHERE ns = ? AND key = ?"
_UPSERT = (
    "INSERT INTO kv (ns, key, value, version, checksum) VALUES (?1, ?2, ?3, 1, keepup_sum(?1, ?2, 1, ?3)) "
    "ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, version = kv.version + 1, "
    "checksum = keepup_sum(kv.ns, kv.key, kv.version + 1, excluded.value) RETURNING version"
)
_CREATE = (
    "INSERT INTO kv (ns, key, value, version, checksum) VALUES (?1, ?2, ?3, 1, keepup_sum(?1, ?2, 1, ?3)) "
    "ON CONFLICT (ns, key) DO NOTHING RETURNING version"
)
_CAS = (
    "UPDATE kv SET value = ?3, version = version + 1, checksum = keepup_sum(ns, key, version + 1, ?3) "
    "WHERE ns = ?1 AND key = ?2 AND version = ?4 RETURNING version"
)


def _path_from_url(url: str) -> tuple[Path, dict[str, str]]:
    if not url.lower().startswith("sqlite://"):
        raise ValidationError(f"not a sqlite:// URL: {url!r:.200}")
    parts = urlsplit(url)
    raw = unquote(url[len("sqlite://") :].split("?", 1)[0].split("#", 1)[0])
    if raw.startswith("//"):
        raw = "/" + raw.lstrip("/")
    if not raw or raw == "/":
        raise ValidationError(f"a sqlite URL names a file: sqlite:///path/to/keepup.db; got {url!r:.200}")
    return Path(raw), dict(parse_qsl(parts.query))


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class SqliteDriver:
    """An ordered key-value store and blob area in one SQLite file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability | str = Durability.DURABLE,
        busy_timeout: float = 30.0,
        read_only: bool = False,
        max_value_size: int = _DEFAULT_MAX_VALUE,
        url: str | None = None,
    ) -> None:
        self._path = Path(path)
        self._durability = Durability(durability)
        self._busy_timeout = float(busy_timeout)
        self._read_only = read_only
        self._max_value_size = int(max_value_size)
        self._url = url or f"sqlite://{self._path if self._path.is_absolute() else self._path.as_posix()}"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        _reset_after_fork(self)
        self._runner = MigrationRunner(MIGRATIONS)
        if not read_only:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        elif not self._path.exists():
            raise NotFoundError(f"no SQLite store at {self._path} (opened read-only, so not created)")
        conn = self._conn()
        try:
            self._runner.migrate(
                conn, read_only=read_only, store=f"the SQLite store {self._path}", begin=_begin
            )
            if not read_only:
                self._remove_stale_uploads(conn)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise _storage_error(exc, self._path) from exc
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_url(
        cls, url: str, *, durability: Durability = Durability.DURABLE, **options: Any
    ) -> SqliteDriver:
        """Open (creating it if needed) the store at ``sqlite:///path``."""
        path, query = _path_from_url(url)
        merged: dict[str, Any] = {**query, **options}
        kwargs: dict[str, Any] = {}
        if "busy_timeout" in merged:
            kwargs["busy_timeout"] = float(merged.pop("busy_timeout"))
        if "read_only" in merged:
            kwargs["read_only"] = _flag(merged.pop("read_only"))
        if "max_value_size" in merged:
            kwargs["max_value_size"] = int(merged.pop("max_value_size"))
        if "durability" in merged:
            durability = Durability(merged.pop("durability"))
        if merged:
            raise ValidationError(f"unknown sqlite store options: {', '.join(sorted(merged))}")
        return cls(path, durability=durability, url=url.split("#", 1)[0], **kwargs)

    # connections ---------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._read_only:
            try:
                return self._connect_read_only(immutable=False)
            except StorageError:
                # A WAL store in a folder this process cannot write (a read-only home): SQLite
                # cannot make the -shm index a reader needs. Read the file as it is instead.
                if os.access(self._path.parent, os.W_OK):
                    raise
                return self._connect_read_only(immutable=True)
        return self._setup(
            sqlite3.connect(
                self._path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
        )

    def _connect_read_only(self, *, immutable: bool) -> sqlite3.Connection:
        flags = "mode=ro&immutable=1" if immutable else "mode=ro"
        uri = f"{self._path.resolve().as_uri()}?{flags}"
        conn = sqlite3.connect(
            uri, uri=True, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn = self._setup(conn)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise _storage_error(exc, self._path) from exc
        return conn

    def _setup(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            if not self._read_only:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StorageError(f"SQLite refused WAL mode for {self._path} (got {mode})")
            sync = "FULL" if self._durability is Durability.DURABLE else "NORMAL"
            conn.execute(f"PRAGMA synchronous = {sync}")
            conn.create_function("keepup_sum", 4, _row_sum, deterministic=True)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise _storage_error(exc, self._path) from exc
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StorageError(f"the SQLite store {self._path} is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _remove_stale_uploads(self, conn: sqlite3.Connection) -> None:
        cutoff = (utc_now() - _STALE_UPLOAD).isoformat()
        stale = [
            r[0]
            for r in conn.execute("SELECT id FROM blobs WHERE digest IS NULL AND created_at < ?", (cutoff,))
        ]
        for blob_id in stale:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM blob_chunks WHERE blob_id = ?", (blob_id,))
            conn.execute("DELETE FROM blobs WHERE id = ?", (blob_id,))
            conn.execute("COMMIT")

    def _forget_connections(self) -> None:
        """In a forked child: never use (or close) the parent's connections."""
        self._local = threading.local()
        self._connections = []
        self._lock = threading.Lock()

    # properties ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self._url

    @property
    def path(self) -> Path:
        return self._path

    @property
    def durability(self) -> Durability:
        return self._durability

    @property
    def atomic_batch(self) -> bool:
        return True

    @property
    def max_value_size(self) -> int:
        return self._max_value_size

    def schema_status(self) -> SchemaStatus:
        """The store's schema version against this code's (up to date after a read-write open)."""
        return self._runner.status(self._conn(), f"the SQLite store {self._path}")

    # key-value -----------------------------------------------------------------------------------
    def _entry(self, namespace: str, key: bytes, value: bytes, version: int, checksum: bytes | None) -> Entry:
        if checksum != _row_sum(namespace, key, version, value):
            raise CorruptionError(
                f"row {key!r:.80} in namespace {namespace!r} of {self._path} failed its checksum"
            )
        try:
            text = key.decode("utf-8")
        except UnicodeDecodeError:
            raise CorruptionError(f"a key in namespace {namespace!r} of {self._path} is not UTF-8") from None
        return Entry(text, value, version)

    def get(self, namespace: str, key: str) -> Entry | None:
        """The entry at ``key``, or None. CorruptionError if its row fails the checksum."""
        check_key_op(namespace, key)
        kb = key.encode("utf-8")
        try:
            row = self._conn().execute(_GET, (namespace, kb)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise _storage_error(exc, self._path) from exc
        if row is None:
            return None
        return self._entry(namespace, kb, row[0], row[1], row[2])

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
        """Entries in UTF-8 byte order of the key (see :meth:`runtime_core.Driver.scan`). Rows are
        read in pages, each page its own statement, so a long scan holds no read transaction open
        and sees writes committed between pages."""
        check_scan(namespace, prefix, after, before, limit)
        return self._scan(namespace, prefix.encode(), after, before, reverse, limit)

    def _scan(
        self,
        namespace: str,
        prefix: bytes,
        after: str | None,
        before: str | None,
        reverse: bool,
        limit: int | None,
    ) -> Iterator[Entry]:
        lo: bytes | None = prefix or None
        lo_inclusive = True
        hi = _bytes_upper_bound(prefix) if prefix else None
        if after is not None:
            ab = after.encode()
            if lo is None or ab >= lo:
                lo, lo_inclusive = ab, False
        if before is not None:
            bb = before.encode()
            if hi is None or bb <= hi:
                hi = bb
        remaining = limit
        while remaining is None or remaining > 0:
            clauses = ["ns = ?"]
            params: list[Any] = [namespace]
            if lo is not None:
                clauses.append("key >= ?" if lo_inclusive else "key > ?")
                params.append(lo)
            if hi is not None:
                clauses.append("key < ?")
                params.append(hi)
            page = _SCAN_PAGE if remaining is None else min(_SCAN_PAGE, remaining)
            sql = (
                f"SELECT key, value, version, checksum FROM kv WHERE {' AND '.join(clauses)} "
                f"ORDER BY key {'DESC' if reverse else 'ASC'} LIMIT {page}"
            )
            try:
                rows = self._conn().execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                raise _storage_error(exc, self._path) from exc
            for key, value, version, checksum in rows:
                yield self._entry(namespace, key, value, version, checksum)
            if len(rows) < page:
                return
            if remaining is not None:
                remaining -= len(rows)
            last = rows[-1][0]
            if reverse:
                hi = last
            else:
                lo, lo_inclusive = last, False

    def put(
        self,
        namespace: str,
        key: str,
        value: bytes,
        *,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> int:
        """Write ``value`` in one statement and return the new version; ConflictError (nothing
        written) when the condition fails. Durable on return in ``durable`` mode."""
        check_put(namespace, key, value, if_absent, if_version, self._max_value_size)
        try:
            return self._put(self._conn(), namespace, key, bytes(value), if_absent, if_version)
        except sqlite3.DatabaseError as exc:
            raise _storage_error(exc, self._path) from exc

    @staticmethod
    def _put(
        conn: sqlite3.Connection,
        namespace: str,
        key: str,
        value: bytes,
        if_absent: bool,
        if_version: int | None,
    ) -> int:
        kb = key.encode("utf-8")
        if if_absent:
            rows = conn.execute(_CREATE, (namespace, kb, value)).fetchall()
            if not rows:
                raise ConflictError(f"key {key!r:.200} already exists in {namespace!r}")
        elif if_version is not None:
            rows = conn.execute(_CAS, (namespace, kb, value, if_version)).fetchall()
            if not rows:
                raise ConflictError(
                    f"key {key!r:.200} in {namespace!r} is no longer at version {if_version} (or is absent)"
                )
        else:
            rows = conn.execute(_UPSERT, (namespace, kb, value)).fetchall()
        return int(rows[0][0])

    def delete(self, namespace: str, key: str, *, if_version: int | None = None) -> bool:
        """Remove ``key`` in one statement; False if absent, ConflictError if ``if_version`` no
        longer matches (or the key is absent)."""
        check_key_op(namespace, key, if_version)
        try:
            return self._delete(self._conn(), namespace, key, if_version)
        except sqlite3.DatabaseError as exc:
            raise _storage_error(exc, self._path) from exc

    @staticmethod
    def _delete(conn: sqlite3.Connection, namespace: str, key: str, if_version: int | None) -> bool:
        kb = key.encode("utf-8")
        if if_version is None:
            return conn.execute("DELETE FROM kv WHERE ns = ? AND key = ?", (namespace, kb)).rowcount > 0
        cur = conn.execute(
            "DELETE FROM kv WHERE ns = ? AND key = ? AND version = ?", (namespace, kb, if_version)
        )
        if cur.rowcount == 0:
            raise ConflictError(
                f"key {key!r:.200} in {namespace!r} is no longer at version {if_version} (or is absent)"
            )
        return True

    def batch(self, ops: Sequence[Put | Delete]) -> list[int | bool]:
        """Apply ``ops`` in one ``BEGIN IMMEDIATE`` transaction: all or nothing. Every op is
        validated before the transaction starts."""
        check_batch(ops, self._max_value_size)
        if not ops:
            return []
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                results: list[int | bool] = []
                for op in ops:
                    if isinstance(op, Put):
                        results.append(
                            self._put(
                                conn, op.namespace, op.key, bytes(op.value), op.if_absent, op.if_version
                            )
                        )
                    else:
                        results.append(self._delete(conn, op.namespace, op.key, op.if_version))
                conn.execute("COMMIT")
                return results
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise _storage_error(exc, self._path) from exc

    # blobs ---------------------------------------------------------------------------------------
    def _blob_row(self, digest: str) -> tuple[int, int, str] | None:
        row = (
            self._conn()
            .execute("SELECT id, size, created_at FROM blobs WHERE digest = ?", (digest,))
            .fetchone()
        )
        return None if row is None else (int(row[0]), int(row[1]), str(row[2]))

    def put_blob(self, data: bytes, digest: str | None = None) -> BlobInfo:
        """Store ``data`` under its SHA-256 in one transaction (a no-op if already stored)."""
        actual = check_digest_of(bytes(data), digest)
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                existing = conn.execute(
                    "SELECT size, created_at FROM blobs WHERE digest = ?", (actual,)
                ).fetchone()
                if existing is not None:
                    conn.execute("COMMIT")
                    return BlobInfo(actual, int(existing[0]), datetime.fromisoformat(existing[1]))
                now = utc_now()
                blob_id = conn.execute(
                    "INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?) RETURNING id",
                    (actual, len(data), now.isoformat()),
                ).fetchall()[0][0]
                view = memoryview(data)
                for seq, start in enumerate(range(0, len(view), _STORED_CHUNK)):
                    conn.execute(
                        "INSERT INTO blob_chunks (blob_id, seq, data) VALUES (?, ?, ?)",
                        (blob_id, seq, view[start : start + _STORED_CHUNK]),
                    )
                conn.execute("COMMIT")
                return BlobInfo(actual, len(data), now)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise _storage_error(exc, self._path) from exc

    def put_blob_stream(self, chunks: Iterable[bytes]) -> BlobInfo:
        """Store a stream of any length in bounded memory: 1 MiB rows written under a pending
        upload id, committed every 16 MiB, published under the digest at the end in one
        transaction (or dropped if the same content is already stored). An upload interrupted
        by a crash leaves an unpublished upload, removed on a later open after a day."""
        conn = self._conn()
        h = hashlib.sha256()
        size = 0
        try:
            blob_id = conn.execute(
                "INSERT INTO blobs (digest, size, created_at) VALUES (NULL, 0, ?) RETURNING id",
                (utc_now().isoformat(),),
            ).fetchall()[0][0]
            try:
                seq = 0
                buffer = bytearray()
                conn.execute("BEGIN IMMEDIATE")
                for chunk in chunks:
                    if not isinstance(chunk, (bytes, bytearray, memoryview)):
                        raise ValidationError(f"a blob stream yields bytes, got {type(chunk).__name__}")
                    h.update(chunk)
                    size += len(chunk)
                    buffer += chunk
                    while len(buffer) >= _STORED_CHUNK:
                        conn.execute(
                            "INSERT INTO blob_chunks (blob_id, seq, data) VALUES (?, ?, ?)",
                            (blob_id, seq, bytes(buffer[:_STORED_CHUNK])),
                        )
                        del buffer[:_STORED_CHUNK]
                        seq += 1
                        if seq % _COMMIT_EVERY == 0:
                            conn.execute("COMMIT")
                            conn.execute("BEGIN IMMEDIATE")
                if buffer:
                    conn.execute(
                        "INSERT INTO blob_chunks (blob_id, seq, data) VALUES (?, ?, ?)",
                        (blob_id, seq, bytes(buffer)),
                    )
                    buffer.clear()
                conn.execute("COMMIT")
                digest = h.hexdigest()
                now = utc_now()
                conn.execute("BEGIN IMMEDIATE")
                existing = conn.execute(
                    "SELECT size, created_at FROM blobs WHERE digest = ?", (digest,)
                ).fetchone()
                if existing is not None:
                    conn.execute("DELETE FROM blob_chunks WHERE blob_id = ?", (blob_id,))
                    conn.execute("DELETE FROM blobs WHERE id = ?", (blob_id,))
                    conn.execute("COMMIT")
                    return BlobInfo(digest, int(existing[0]), datetime.fromisoformat(existing[1]))
                conn.execute(
                    "UPDATE blobs SET digest = ?, size = ?, created_at = ? WHERE id = ?",
                    (digest, size, now.isoformat(), blob_id),
                )
                conn.execute("COMMIT")
                return BlobInfo(digest, size, now)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("DELETE FROM blob_chunks WHERE blob_id = ?", (blob_id,))
                conn.execute("DELETE FROM blobs WHERE id = ?", (blob_id,))
                conn.execute("COMMIT")
                raise
        except sqlite3.DatabaseError as exc:
            raise _storage_error(exc, self._path) from exc

    def get_blob(self, digest: str) -> bytes:
        return b"".join(self.open_blob(digest))

    def open_blob(self, digest: str, chunk_size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
        """Stream the blob one stored row at a time; CorruptionError at the end if the bytes do
        not hash to ``digest`` or a row is missing."""
        validate_digest(digest)
        check_chunk_size(chunk_size)
        try:
            row = self._blob_row(digest)
        except sqlite3.DatabaseError as exc:
            raise _storage_error(exc, self._path) from exc
        if row is None:
            raise NotFoundError(f"blob {digest} not found")
        return verified_chunks(self._read_rows(row[0], row[1], digest, chunk_size), digest)

    def _read_rows(self, blob_id: int, size: int, digest: str, chunk_size: int) -> Iterator[bytes]:
        seen = 0
        seq = 0
        pending = b""
        while seen < size:
            try:
                row = (
                    self._conn()
                    .execute("SELECT data FROM blob_chunks WHERE blob_id = ? AND seq = ?", (blob_id, seq))
                    .fetchone()
                )
            except sqlite3.DatabaseError as exc:
                raise _storage_error(exc, self._path) from exc
            if row is None:
                if self._blob_row(digest) is None:
                    raise NotFoundError(f"blob {digest} was deleted while it was being read")
                raise CorruptionError(f"blob {digest} is missing part {seq}: the stored blob is damaged")
            data: bytes = row[0]
            if not data:
                raise CorruptionError(f"blob {digest} has an empty part {seq}: the stored blob is damaged")
            seen += len(data)
            seq += 1
            pending = pending + data if pending else data
            while len(pending) >= chunk_size:
                yield pending[:chunk_size]
                pending = pending[chunk_size:]
        if seen != size:
            raise CorruptionError(f"blob {digest} holds {seen} bytes, not its recorded {size}")
        if pending:
            yield pending

    def has_blob(self, digest: str) -> bool:
        validate_digest(digest)
        try:
            return self._blob_row(digest) is not None
        except sqlite3.DatabaseError as exc:
            raise _storage_error(exc, self._path) from exc

    def delete_blob(self, digest: str) -> bool:
        """Remove the blob and its rows in one transaction; False if it was not there."""
        validate_digest(digest)
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT id FROM blobs WHERE digest = ?", (digest,)).fetchone()
                if row is not None:
                    conn.execute("DELETE FROM blob_chunks WHERE blob_id = ?", (row[0],))
                    conn.execute("DELETE FROM blobs WHERE id = ?", (row[0],))
                conn.execute("COMMIT")
                return row is not None
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise _storage_error(exc, self._path) from exc

    def list_blobs(self) -> Iterator[BlobInfo]:
        try:
            rows = (
                self._conn()
                .execute("SELECT digest, size, created_at FROM blobs WHERE digest IS NOT NULL")
                .fetchall()
            )
        except sqlite3.DatabaseError as exc:
            raise _storage_error(exc, self._path) from exc
        return iter([BlobInfo(d, int(s), datetime.fromisoformat(c)) for d, s, c in rows])

    # lifecycle -----------------------------------------------------------------------------------
    def close(self) -> None:
        """Close every connection this driver opened (in any thread). Idempotent."""
        with self._lock:
            connections, self._connections = self._connections, []
            self._closed = True
        for conn in connections:
            conn.close()

    def destroy(self) -> None:
        """Close the store and delete its file (and WAL and shared-memory files)."""
        self.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self._path}{suffix}").unlink(missing_ok=True)


def _reset_after_fork(driver: SqliteDriver) -> None:
    ref = weakref.ref(driver)

    def after_fork() -> None:
        alive = ref()
        if alive is not None:
            alive._forget_connections()

    os.register_at_fork(after_in_child=after_fork)


def _begin(cursor: Any) -> None:
    cursor.execute("BEGIN IMMEDIATE")


def _bytes_upper_bound(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix``."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def _storage_error(exc: sqlite3.DatabaseError, path: Path) -> Exception:
    text = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and (
        "malformed" in text or "not a database" in text or "file is encrypted" in text
    ):
        return CorruptionError(f"the SQLite store {path} is damaged: {text}")
    return StorageError(f"the SQLite store {path} failed: {text}")
