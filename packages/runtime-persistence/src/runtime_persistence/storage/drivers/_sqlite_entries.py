"""The key-value part of the SQLite driver (see :mod:`runtime_persistence.storage.drivers.sqlite`):
get, scan, put, delete and batch over the ``kv`` table."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from runtime_core import (
    ConflictError,
    CorruptionError,
    Delete,
    Entry,
    Put,
)

from runtime_persistence.storage.drivers._common import (
    GuardedPut,
    check_batch,
    check_key_op,
    check_put,
    check_scan,
    checked_key_bytes,
)
from runtime_persistence.storage.drivers._sqlite_connections import (
    _SqliteConnections,
    _storage_error,
)
from runtime_persistence.storage.drivers._sqlite_rows import _row_ok

_SCAN_PAGE = 512  # rows fetched per statement while scanning

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

_CAS_SAME = (
    "UPDATE kv SET value = ?3, version = version + 1, checksum = keepup_sum(ns, key, version + 1, ?3) "
    "WHERE ns = ?1 AND key = ?2 AND version = ?4 AND value = ?5 RETURNING version"
)


class _SqliteEntries(_SqliteConnections):
    """The ordered key-value store of one SQLite store file."""

    guarded_cas = True
    """Batches accept :class:`GuardedPut` (a compare-and-set on the version and the value)."""

    # key-value -----------------------------------------------------------------------------------
    def _entry(self, namespace: str, key: bytes, value: bytes, version: int, checksum: bytes | None) -> Entry:
        if not _row_ok(namespace, key, version, value, checksum):
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
        kb = checked_key_bytes(namespace, key)
        try:
            row = self._conn().execute(_GET, (namespace, kb)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise _storage_error(exc, self._path) from exc
        if row is None:
            return None
        value, version, checksum = row
        if not _row_ok(namespace, kb, version, value, checksum):
            raise CorruptionError(
                f"row {kb!r:.80} in namespace {namespace!r} of {self._path} failed its checksum"
            )
        return Entry(key, value, version)

    def namespaces(self) -> Iterator[str]:
        """The namespaces that hold keys, in byte order (for backups)."""
        try:
            rows = self._conn().execute("SELECT DISTINCT ns FROM kv ORDER BY ns").fetchall()
        except sqlite3.DatabaseError as exc:
            raise _storage_error(exc, self._path) from exc
        return iter([str(ns) for (ns,) in rows])

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
            params: list[Any] = [namespace]
            if lo is not None:
                params.append(lo)
            if hi is not None:
                params.append(hi)
            page = _SCAN_PAGE if remaining is None else min(_SCAN_PAGE, remaining)
            shape = (lo is not None, lo_inclusive, hi is not None, reverse, page)
            sql = _SCAN_SQL.get(shape)
            if sql is None:
                sql = _SCAN_SQL[shape] = _scan_sql(*shape)
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

    @staticmethod
    def _put_guarded(conn: sqlite3.Connection, op: GuardedPut) -> int:
        rows = conn.execute(
            _CAS_SAME, (op.namespace, op.key.encode("utf-8"), bytes(op.value), op.if_version, op.expect)
        ).fetchall()
        if not rows:
            raise ConflictError(
                f"key {op.key!r:.200} in {op.namespace!r} no longer holds the expected value "
                f"at version {op.if_version} (or is absent)"
            )
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
                    if isinstance(op, GuardedPut):
                        results.append(self._put_guarded(conn, op))
                    elif isinstance(op, Put):
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


_SCAN_SQL: dict[tuple[bool, bool, bool, bool, int], str] = {}
"""The text of each shape of scan statement (bounds present, reverse, page size): built once."""


def _scan_sql(has_lo: bool, lo_inclusive: bool, has_hi: bool, reverse: bool, page: int) -> str:
    clauses = ["ns = ?"]
    if has_lo:
        clauses.append("key >= ?" if lo_inclusive else "key > ?")
    if has_hi:
        clauses.append("key < ?")
    return (
        f"SELECT key, value, version, checksum FROM kv WHERE {' AND '.join(clauses)} "
        f"ORDER BY key {'DESC' if reverse else 'ASC'} LIMIT {int(page)}"
    )


def _bytes_upper_bound(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix``."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])
