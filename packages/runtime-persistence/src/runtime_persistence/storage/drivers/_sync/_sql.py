# Generated from packages/runtime-persistence/src/runtime_persistence/storage/drivers/_async/_sql.py by scripts/gen_sync.py: edit that file and rerun the script.
"""What the SQL server drivers (PostgreSQL, MySQL/MariaDB) share, written once as async code (the
blocking twin is generated into ``_sync/_sql.py``): the scan paging loop, batches in one
transaction, the retry of transactions the server aborted for a deadlock, and the blob chunk loops
(store in one transaction, read a few chunk rows per query with a digest check, list in pages).

A backend subclasses :class:`SqlDriver` (which gives it ``from_url``) and supplies the
hooks: ``_parse_options``, ``_open``, ``_session`` (a pooled
connection or cursor, the *handle* every statement runs on), ``_transaction``, ``_rows`` /
``_row`` / ``_exec`` (run a query, return its rows), ``_put`` / ``_delete`` (one key-value write on a handle,
where the two SQL dialects differ), ``_insert_blob``, ``_delete_blob_on``, ``_is_deadlock``; and
the attributes ``_q`` (statement by name), ``_scans`` (see ``_servers.scan_statements``),
``_errors`` (its library's exception classes) and ``_chunk`` (blob bytes per chunk row)."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Self, TypeVar

from runtime_core import (
    BlobInfo,
    ConflictError,
    CorruptionError,
    Delete,
    Durability,
    Entry,
    KeepupError,
    NotFoundError,
    Put,
    StorageError,
    ValidationError,
    validate_digest,
)

from runtime_persistence.storage.drivers._common import (
    DEFAULT_CHUNK,
    GuardedPut,
    check_batch,
    check_chunk_size,
    check_digest_of,
    check_key_op,
    check_put,
    check_scan,
    key_bounds,
)
from runtime_persistence.storage.drivers._schema import SchemaStatus
from runtime_persistence.storage.drivers._server_backup import backup_before_migration
from runtime_persistence.storage.drivers._servers import (
    Rechunker,
    check_server_url,
    missing_chunk,
    pieces,
    storage_failure,
    store_prefix,
)
from runtime_persistence.storage.drivers._sync._streams import paged_scan, rechunked, slices
from runtime_persistence.storage.stores import redact_url

__all__ = ["SqlDriver"]

_T = TypeVar("_T")
READ_AHEAD = 4  # chunk rows fetched per query when streaming a blob out
SCAN_PAGE = 500  # rows fetched per query when a scan has no (small) limit
RETRIES = 5  # runs of a transaction the server keeps aborting for a deadlock


class _Dedup(Exception):
    """Raised inside a blob transaction to roll it back: the blob was already stored."""


class SqlDriver:
    """The key-value and blob logic of a SQL server driver over backend hooks (see the module
    docstring). Subclasses set the attributes below in their set-up."""

    _KIND = "SQL"
    _url: str
    _raw_url: str
    _durability: Durability
    _max_value_size: int
    _chunk: int
    _q: dict[str, Any]
    _scans: dict[tuple[bool, bool, bool], Any]
    _errors: tuple[type[BaseException], ...]
    _options: dict[str, Any] = {}
    _check_schema = True  # False only on the reader of a pre-migration backup (see _backup_first)

    def __init__(
        self,
        url: str,
        *,
        durability: Durability = Durability.DURABLE,
        prefix: str = "",
        read_only: bool = False,
    ) -> None:
        """What every SQL store keeps (no I/O): :meth:`from_url` opens the store."""
        check_server_url(url, self._KIND)
        self._url = redact_url(url)
        self._raw_url = url
        self._read_only = read_only
        self._prefix = store_prefix(prefix)
        self._durability = Durability(durability)

    @classmethod
    def from_url(cls, url: str, *, durability: Durability = Durability.DURABLE, **options: Any) -> Self:
        """Open (creating or migrating the tables) the store at ``url``. Raises ValidationError
        for bad options and DriverUnavailableError when the server does not answer or refuses."""
        check_server_url(url, cls._KIND)
        keywords = dataclasses.asdict(cls._parse_options(url, options))
        driver: Any = cls(url, durability=durability, **keywords)
        driver._options = keywords
        driver._open()
        return driver  # type: ignore[no-any-return]

    # the backup before a migration ---------------------------------------------------------------
    def _backup_first(self, status: SchemaStatus) -> None:
        """The migration runner's ``before`` hook: a store that holds data (schema version > 0)
        is backed up (a verified ``.kbak``, see ``_server_backup.py``) before it is migrated; it
        runs under the migration lock, so only the opener that migrates takes it."""
        if status.current > 0:
            args = (self._open_reader, self._raw_url, status.current)
            backup_before_migration(*args)

    def _open_reader(self) -> Any:
        """A blocking, read-only instance of this store that leaves its (old) schema unchecked:
        what the backup before a migration reads through."""
        options = {**self._options, **self._reader_options()}
        reader = self._blocking_class()(self._raw_url, durability=self._durability, **options)
        reader._check_schema = False
        reader._open()  # the blocking class: no await, in either twin
        return reader

    def _reader_options(self) -> dict[str, Any]:
        return {"prefix": self._prefix, "read_only": True, "pool_size": 1}

    @staticmethod
    def _blocking_class() -> Any:
        """The blocking driver class of this store (the reader of a pre-migration backup)."""
        raise NotImplementedError

    # hooks ---------------------------------------------------------------------------------------
    @staticmethod
    def _parse_options(url: str, options: dict[str, Any]) -> Any:
        """The checked constructor keywords, as a dataclass, from ``url``'s query and ``options``."""
        raise NotImplementedError

    def _open(self) -> None:
        """The set-up I/O :meth:`from_url` awaits: migrate the tables, open the pool."""
        raise NotImplementedError

    def _session(self) -> Any:
        """An async context manager yielding a handle (connection or cursor) from the pool."""
        raise NotImplementedError

    def _transaction(self, handle: Any) -> Any:
        """An async context manager: a transaction on ``handle``, rolled back on any error."""
        raise NotImplementedError

    def _rows(self, handle: Any, query: Any, params: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def _exec(self, handle: Any, query: Any, params: Sequence[Any]) -> int:
        """Run a statement without a result set; the number of rows it changed."""
        raise NotImplementedError

    def _row(self, handle: Any, query: Any, params: Sequence[Any]) -> Any:
        """The first row of ``query``'s result, or None."""
        raise NotImplementedError

    def _put(
        self, handle: Any, namespace: str, key: str, value: bytes, if_absent: bool, if_version: int | None
    ) -> int:
        raise NotImplementedError

    def _put_guarded(self, handle: Any, op: GuardedPut) -> int:
        """A :class:`GuardedPut` (drivers whose ``guarded_cas`` is true)."""
        raise ValidationError(f"the {self._KIND} driver does not take guarded puts (guarded_cas is false)")

    def _delete(self, handle: Any, namespace: str, key: str, if_version: int | None) -> bool:
        raise NotImplementedError

    def _insert_blob(self, handle: Any, digest: str, upload: int, size: int) -> datetime | None:
        """Record a complete blob; its creation time, or None when ``digest`` is stored already."""
        raise NotImplementedError

    def _delete_blob_on(self, handle: Any, digest: str) -> bool:
        """Delete the blob and its chunks inside the current transaction; whether it existed."""
        raise NotImplementedError

    def _is_deadlock(self, exc: BaseException | None) -> bool:
        raise NotImplementedError

    def _timestamp(self, value: Any) -> datetime | None:
        """A blob's creation time as the database returns it, as an aware datetime."""
        return value if isinstance(value, datetime) else None

    def _drop_statements(self) -> list[str]:
        """What :meth:`destroy` runs."""
        raise NotImplementedError

    # plumbing ----------------------------------------------------------------------------------
    @contextmanager
    def _op(self, action: str) -> Iterator[Any]:
        """A handle for one operation; library errors become StorageError naming ``action``."""
        try:
            with self._session() as handle:
                yield handle
        except KeepupError:
            raise
        except self._errors as exc:
            raise storage_failure(self._KIND, self._raw_url, action, exc) from exc

    def _retrying(
        self,
        action: str,
        work: Callable[[Any], _T],
        *,
        transaction: bool = True,
    ) -> _T:
        """Run ``work(handle)`` (with ``transaction``, inside one), again if the server aborted it
        for a deadlock (an aborted statement or transaction had no effect, so running it again is
        safe)."""
        for attempt in range(RETRIES):
            try:
                with self._op(action) as handle:
                    if not transaction:
                        return work(handle)
                    with self._transaction(handle):
                        return work(handle)
            except StorageError as exc:
                if self._is_deadlock(exc.__cause__) and attempt < RETRIES - 1:
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
        with self._op("get") as handle:
            row = self._row(handle, self._q["get"], (namespace, key.encode()))
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

        def read(low: bytes, low_inclusive: bool, high: bytes | None, size: int) -> list[Entry]:
            params: list[Any] = [namespace, low]
            if high is not None:
                params.append(high)
            params.append(size)
            with self._op("scan") as handle:
                rows = self._rows(handle, self._scans[(reverse, low_inclusive, high is not None)], params)
            return [Entry(bytes(k).decode(), bytes(v), int(ver)) for k, v, ver in rows]

        low, low_inclusive, high = key_bounds(prefix, after, before)
        return paged_scan(read, low, low_inclusive, high, reverse=reverse, limit=limit, page_size=SCAN_PAGE)

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

        def work(handle: Any) -> int:
            return self._put(handle, namespace, key, data, if_absent, if_version)

        return self._retrying("put", work, transaction=False)

    def delete(self, namespace: str, key: str, *, if_version: int | None = None) -> bool:
        check_key_op(namespace, key, if_version)

        def work(handle: Any) -> bool:
            return self._delete(handle, namespace, key, if_version)

        return self._retrying("delete", work, transaction=False)

    def batch(self, ops: Sequence[Put | Delete]) -> list[int | bool]:
        """All or nothing, in one transaction; a lost condition raises ConflictError and rolls
        back every op of the batch."""
        check_batch(ops, self._max_value_size)

        def work(handle: Any) -> list[int | bool]:
            results: list[int | bool] = []
            for op in ops:
                if isinstance(op, GuardedPut):
                    results.append(self._put_guarded(handle, op))
                elif isinstance(op, Put):
                    results.append(
                        self._put(handle, op.namespace, op.key, bytes(op.value), op.if_absent, op.if_version)
                    )
                else:
                    results.append(self._delete(handle, op.namespace, op.key, op.if_version))
            return results

        return self._retrying("batch", work) if ops else []

    # blobs -------------------------------------------------------------------------------------
    def put_blob(self, data: bytes, digest: str | None = None) -> BlobInfo:
        data = bytes(data)
        actual = check_digest_of(data, digest)
        existing = self._blob_info(actual)
        if existing is not None:
            return existing
        return self._store_blob(slices(data, self._chunk), actual)

    def put_blob_stream(self, chunks: Iterable[bytes]) -> BlobInfo:
        """Store the stream in one transaction, one row per chunk, in bounded memory; the blob
        becomes visible only when the whole stream is stored."""
        return self._store_blob(rechunked(chunks, self._chunk), None)

    def _store_blob(self, chunks: Iterator[bytes], expected: str | None) -> BlobInfo:
        upload = secrets.randbits(63)
        try:
            # a stream can be consumed once: no retry of this transaction
            with self._op("put_blob") as handle, self._transaction(handle):
                h = hashlib.sha256()
                size = 0
                for seq, chunk in _numbered(chunks):
                    h.update(chunk)
                    size += len(chunk)
                    self._exec(handle, self._q["insert_chunk"], (upload, seq, chunk))
                digest = h.hexdigest()
                if expected is not None and digest != expected:
                    raise ValidationError(f"blob digest {expected} does not match its content ({digest})")
                created = self._insert_blob(handle, digest, upload, size)
                if created is None:
                    raise _Dedup(digest)
                return BlobInfo(digest, size, created)
        except _Dedup as dup:
            info = self._blob_info(str(dup.args[0]))
            if info is None:  # deleted again in between
                raise ConflictError("a blob with this content was deleted while storing it; retry") from None
            return info

    def _blob_info(self, digest: str) -> BlobInfo | None:
        with self._op("blob lookup") as handle:
            row = self._row(handle, self._q["blob_info"], (digest,))
        return BlobInfo(digest, int(row[0]), self._timestamp(row[1])) if row else None

    def _upload_of(self, digest: str) -> int | None:
        with self._op("blob lookup") as handle:
            row = self._row(handle, self._q["blob_upload"], (digest,))
        return int(row[0]) if row else None

    def get_blob(self, digest: str) -> bytes:
        return b"".join([chunk for chunk in self.open_blob(digest)])

    def open_blob(self, digest: str, chunk_size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
        """The blob's bytes in pieces of at most ``chunk_size``, read a few chunk rows per query;
        CorruptionError instead of the last piece when the content does not hash to ``digest``."""
        validate_digest(digest)
        check_chunk_size(chunk_size)
        upload = self._upload_of(digest)
        if upload is None:
            raise NotFoundError(f"blob {digest} not found")
        h = hashlib.sha256()
        held: bytes | None = None  # one piece held back until the digest is checked
        seq = 0
        while True:
            with self._op("read blob") as handle:
                rows = self._rows(handle, self._q["read_chunks"], (upload, seq, READ_AHEAD))
            for got, data in rows:
                if got != seq:
                    raise missing_chunk(digest, self.has_blob(digest))
                for piece in pieces(bytes(data), chunk_size):
                    if held is not None:
                        yield held
                    h.update(piece)
                    held = piece
                seq += 1
            if len(rows) < READ_AHEAD:
                break
        if not self.has_blob(digest):
            raise NotFoundError(f"blob {digest} was deleted while it was being read")
        if h.hexdigest() != digest:
            raise CorruptionError(f"blob {digest} failed its digest check: the stored bytes were damaged")
        if held is not None:
            yield held

    def has_blob(self, digest: str) -> bool:
        validate_digest(digest)
        return self._upload_of(digest) is not None

    def delete_blob(self, digest: str) -> bool:
        validate_digest(digest)

        def work(handle: Any) -> bool:
            return self._delete_blob_on(handle, digest)

        return self._retrying("delete_blob", work)

    def list_blobs(self) -> Iterator[BlobInfo]:
        """Every blob with its size and creation time, read in pages (no particular order is
        promised; today it is by digest)."""
        last = ""
        while True:
            with self._op("list_blobs") as handle:
                rows = self._rows(handle, self._q["list_blobs"], (last, SCAN_PAGE))
            for digest, size, created_at in rows:
                yield BlobInfo(str(digest), int(size), self._timestamp(created_at))
            if len(rows) < SCAN_PAGE:
                return
            last = str(rows[-1][0])

    # backups -----------------------------------------------------------------------------------
    def namespaces(self) -> Iterator[str]:
        """The namespaces that hold keys, in byte order (for backups)."""
        with self._op("namespaces") as handle:
            rows = self._rows(handle, self._q["namespaces"], ())
        for (namespace,) in rows:
            yield str(namespace)

    @contextmanager
    def read_snapshot(self) -> Iterator[Self]:
        """A read-only view of the store at one moment, for a consistent backup: every read of
        the view (scans, blobs, namespaces) runs on one connection inside one read-only
        REPEATABLE READ transaction, so it sees the store as it was when the view was opened,
        whatever others commit meanwhile. Use it only inside the block; never write through it."""
        with self._op("snapshot") as handle:
            for statement in self._q["snapshot"]:
                self._exec(handle, statement, ())
            view = copy.copy(self)
            view._session = _pinned(handle)  # type: ignore[method-assign]
            try:
                yield view
            finally:
                with contextlib.suppress(*self._errors):  # a broken connection is not reused anyway
                    self._exec(handle, self._q["rollback"], ())

    # lifecycle ---------------------------------------------------------------------------------
    def destroy(self) -> None:
        """Drop every table of this store (its data is gone for good). For tests and ``keepup store
        destroy``; the driver cannot be used afterwards except to close it."""

        def work(handle: Any) -> None:
            for statement in self._drop_statements():
                self._exec(handle, statement, ())

        self._retrying("destroy", work)

    # test hooks: let the corruption tests damage stored bytes the way a disk would
    def _raw_blob(self, digest: str) -> bytes:
        upload = self._upload_of(digest)
        with self._op("raw blob") as handle:
            rows = self._rows(handle, self._q["read_chunks"], (upload, 0, 1 << 30))
        return b"".join(bytes(r[1]) for r in rows)

    def _set_raw_blob(self, digest: str, data: bytes) -> None:
        upload = self._upload_of(digest)

        def work(handle: Any) -> None:
            self._exec(handle, self._q["delete_chunks"], (upload,))
            cutter = Rechunker(self._chunk)
            for seq, chunk in enumerate([*cutter.feed(data), *cutter.tail()]):
                self._exec(handle, self._q["insert_chunk"], (upload, seq, chunk))

        self._retrying("raw blob", work)


def _pinned(handle: Any) -> Callable[[], Any]:
    """A ``_session`` that always yields ``handle`` (the connection of a snapshot)."""

    @contextmanager
    def session() -> Iterator[Any]:
        yield handle

    return session


def _numbered(chunks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    yield from enumerate(chunks)
