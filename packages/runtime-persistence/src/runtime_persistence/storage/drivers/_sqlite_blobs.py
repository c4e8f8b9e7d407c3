"""The blob area of the SQLite driver (see :mod:`runtime_persistence.storage.drivers.sqlite`): blobs
stored in 1 MiB chunk rows (tables ``blobs`` and ``blob_chunks``), written and read in bounded
memory."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import datetime

from runtime_core import (
    BlobInfo,
    CorruptionError,
    NotFoundError,
    ValidationError,
    utc_now,
    validate_digest,
)

from runtime_persistence.storage.drivers._common import (
    DEFAULT_CHUNK,
    check_chunk_size,
    check_digest_of,
    verified_chunks,
)
from runtime_persistence.storage.drivers._sqlite_connections import _SqliteConnections, _storage_error

_STORED_CHUNK = 1 << 20  # bytes per blob_chunks row
_COMMIT_EVERY = 16  # chunk rows per transaction while streaming a blob in


class _SqliteBlobs(_SqliteConnections):
    """The blob area of one SQLite store file."""

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
