"""Set-up of the SQLite driver (see :mod:`runtime_persistence.storage.drivers.sqlite`): the schema
history, one connection per thread, migrations and the removal of stale uploads on open, the
driver's properties, close and destroy. :class:`_SqliteConnections` is the base that the key-value
and blob parts of :class:`~runtime_persistence.storage.drivers.sqlite.SqliteDriver` build on."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import weakref
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from runtime_core import (
    CorruptionError,
    Durability,
    NotFoundError,
    StorageError,
    utc_now,
)

from runtime_persistence.storage.drivers._schema import Migration, SchemaStatus
from runtime_persistence.storage.drivers._sqlite_rows import _row_sum
from runtime_persistence.storage.drivers._sync.migrations import MigrationRunner
from runtime_persistence.storage.private import create_private_file

_STALE_UPLOAD = timedelta(days=1)  # unfinished blob uploads older than this are removed on open
_DEFAULT_MAX_VALUE = 256 << 20


_blake2b = hashlib.blake2b


def _add_checksums(cursor: Any) -> None:
    cursor.execute("ALTER TABLE kv ADD COLUMN checksum BLOB")
    rows = cursor.execute("SELECT ns, key, version, value FROM kv").fetchall()
    for ns, key, version, value in rows:
        cursor.execute(
            "UPDATE kv SET checksum = ? WHERE ns = ? AND key = ?",
            (_row_sum(ns, key, version, value), ns, key),
        )


def _mark_fast_sums(cursor: Any) -> None:
    """Nothing to rewrite: rows keep the checksum they were written with (the reader tells the
    two formats apart, see ``_sqlite_rows``). The version marks that the store may now hold rows
    an older Keepup could not verify, so that such a Keepup refuses the store as newer than
    itself instead of reporting those rows as damaged."""


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
    Migration(
        3, "XXH3-128 row checksums for new rows (old rows keep BLAKE2b-64)", _mark_fast_sums, rewrites=False
    ),
)
"""The SQLite schema history (public so that tests can build an older schema)."""


class _SqliteConnections:
    """The connections, schema and lifecycle of one SQLite store file."""

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
        self._url = url or "sqlite:///" + quote(self._path.as_posix(), safe="/")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        _reset_after_fork(self)
        self._runner = MigrationRunner(MIGRATIONS)
        if not read_only:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            create_private_file(self._path)  # SQLite gives -wal and -shm the database's mode
        elif not self._path.exists():
            raise NotFoundError(f"no SQLite store at {self._path} (opened read-only, so not created)")
        conn = self._conn()
        try:
            if not read_only:
                status = self._runner.status(conn, f"the SQLite store {self._path}")
                if status.rewrites and status.current > 0:  # a store with data: keep a way back
                    # Imported here, not at the top: opening a store (every command) needs no backup code.
                    from runtime_persistence.storage.drivers._sqlite_backup import backup_before_migration

                    backup_before_migration(self._path)
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


def _reset_after_fork(driver: _SqliteConnections) -> None:
    ref = weakref.ref(driver)

    def after_fork() -> None:
        alive = ref()
        if alive is not None:
            alive._forget_connections()

    os.register_at_fork(after_in_child=after_fork)


def _begin(cursor: Any) -> None:
    cursor.execute("BEGIN IMMEDIATE")


def _storage_error(exc: sqlite3.DatabaseError, path: Path) -> Exception:
    text = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and (
        "malformed" in text or "not a database" in text or "file is encrypted" in text
    ):
        from runtime_persistence.storage.drivers._sqlite_backup import damaged_hint

        return CorruptionError(f"the SQLite store {path} is damaged: {text}{damaged_hint(path)}")
    return StorageError(f"the SQLite store {path} failed: {text}")
