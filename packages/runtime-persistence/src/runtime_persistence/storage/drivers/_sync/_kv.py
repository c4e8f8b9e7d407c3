# Generated from packages/runtime-persistence/src/runtime_persistence/storage/drivers/_async/_kv.py by scripts/gen_sync.py: edit that file and rerun the script.
"""The loops the key-value server drivers (Redis, MongoDB) share, written once.

:class:`_KeyValueServer` holds everything around the I/O that those drivers do the same
way: argument checks before anything is sent, the mapping of the client library's errors to
StorageError, scan paging, the blob upload (hash and count on the way, chunk writes grouped per
round trip, publish, discard on failure), chunked reads with the digest check at the end, and
blob listing in pages. A driver subclasses it and supplies the primitives, each one round trip
(one page of a scan, one conditional write, one group of chunk writes ...).

Written once, as async code in ``drivers/_async/_kv.py``; the base of the sync drivers in
``drivers/_sync/_kv.py`` is generated from it by scripts/gen_sync.py."""

from __future__ import annotations

import hashlib
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar, Self

from runtime_core import BlobInfo, Delete, Durability, Entry, Put, utc_now, validate_digest
from runtime_core.errors import ConflictError, CorruptionError, KeepupError, NotFoundError, StorageError

from runtime_persistence.storage.drivers._common import (
    DEFAULT_CHUNK,
    check_batch,
    check_chunk_size,
    check_digest_of,
    check_key_op,
    check_put,
    check_scan,
    key_bounds,
)
from runtime_persistence.storage.drivers._servers import (
    check_server_url,
    int_option,
    merged_options,
    missing_chunk,
    pieces,
    split_options,
    storage_failure,
    store_prefix,
)
from runtime_persistence.storage.drivers._sync._streams import paged_scan, rechunked, slices
from runtime_persistence.storage.stores import redact_url

__all__ = ["SCAN_PAGE", "STORED_CHUNK", "UPLOAD_TTL", "Published"]

STORED_CHUNK = 1 << 20
"""Bytes per stored blob chunk (the last chunk of a blob may be shorter)."""
SCAN_PAGE = 256
"""Entries (or blobs) read per round trip by scans and listings."""
UPLOAD_TTL = 86_400
"""Seconds the chunks of an unfinished upload live before the server removes them."""


class Published(Enum):
    """What publishing an uploaded blob came to."""

    NEW = "new"  # the blob is stored and visible
    EXISTS = "exists"  # the same content was already stored: the upload is redundant
    EXPIRED = "expired"  # some chunk expired before publishing (the upload took over UPLOAD_TTL)


class _KeyValueServer(ABC):
    """The shared body of a key-value server driver (see the module docstring). Subclasses set
    the class attributes and implement the abstract primitives; the public driver API is here."""

    _kind: ClassVar[str]  # the backend's name in messages ("Redis")
    _errors: ClassVar[tuple[type[Exception], ...]]  # the client library's errors
    _options: ClassVar[tuple[str, ...]] = ("prefix", "max_value_size")
    _default_max_value: ClassVar[int]
    _max_value_ceiling: ClassVar[int]  # the highest max_value_size option accepted
    _atomic_batch: ClassVar[bool]
    _write_group_bytes: ClassVar[int] = 1  # chunk bytes gathered before one write round trip
    _read_ahead: ClassVar[int] = 4  # chunks fetched per read round trip

    def __init__(
        self,
        url: str,
        *,
        durability: Durability = Durability.DURABLE,
        prefix: str = "",
        max_value_size: int | None = None,
    ) -> None:
        """Set the driver up without I/O: :meth:`from_url` opens it (connects and checks)."""
        check_server_url(url, self._kind)
        self._url = redact_url(url)
        self._raw_url = url
        self._client_url, _ = split_options(url, self._options)
        self._prefix = store_prefix(prefix)
        self._durability = Durability(durability)
        self._requested_max_value = max_value_size
        self._max_value_size = self._default_max_value if max_value_size is None else max_value_size
        self._opened_with: dict[str, Any] = {}  # the URL and keyword options from_url merged
        self._make_client()

    @abstractmethod
    def _make_client(self) -> None:
        """Create the client library's objects (no I/O: connections are made when first used)."""

    @classmethod
    def from_url(cls, url: str, *, durability: Durability = Durability.DURABLE, **options: Any) -> Self:
        """Open the store at ``url``. Raises ValidationError for bad options and
        DriverUnavailableError when the server does not answer or refuses."""
        check_server_url(url, cls._kind)
        _, query = split_options(url, cls._options)
        opts = merged_options(query, options, cls._options, url)
        limit = None
        if opts.get("max_value_size") is not None:
            limit = int_option(opts, "max_value_size", 0, low=1, high=cls._max_value_ceiling)
        driver = cls(
            url, durability=durability, prefix=store_prefix(opts.get("prefix", "")), max_value_size=limit
        )
        driver._opened_with = opts
        driver._open()
        return driver

    @abstractmethod
    def _open(self) -> None:
        """Connect and check the server (DriverUnavailableError if it does not answer)."""

    # plumbing ----------------------------------------------------------------------------------
    @contextmanager
    def _op(self, action: str) -> Iterator[None]:
        """Turn the client library's errors inside the block into StorageError."""
        try:
            yield
        except KeepupError:
            raise
        except self._errors as exc:
            raise storage_failure(self._kind, self._raw_url, action, exc) from exc

    # properties --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self._url

    @property
    def atomic_batch(self) -> bool:
        return self._atomic_batch

    @property
    def max_value_size(self) -> int:
        return self._max_value_size

    @property
    def durability(self) -> Durability:
        return self._durability

    # key-value ---------------------------------------------------------------------------------
    def get(self, namespace: str, key: str) -> Entry | None:
        check_key_op(namespace, key)
        with self._op("get"):
            return self._read(namespace, key)

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
        """See :meth:`runtime_core.Driver.scan`. Read in pages of a few hundred keys, each page
        atomically; keys written between pages may or may not appear."""
        check_scan(namespace, prefix, after, before, limit)
        return self._scan_pages(namespace, *key_bounds(prefix, after, before), reverse, limit)

    def _scan_pages(
        self,
        namespace: str,
        low: bytes,
        low_inclusive: bool,
        high: bytes | None,
        reverse: bool,
        limit: int | None,
    ) -> Iterator[Entry]:
        def read(low: bytes, low_inclusive: bool, high: bytes | None, size: int) -> list[Entry]:
            with self._op("scan"):
                return self._scan_page(namespace, low, low_inclusive, high, reverse, size)

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
        with self._op("put"):
            return self._write(namespace, key, bytes(value), if_absent, if_version)

    def delete(self, namespace: str, key: str, *, if_version: int | None = None) -> bool:
        check_key_op(namespace, key, if_version)
        with self._op("delete"):
            return self._erase(namespace, key, if_version)

    def batch(self, ops: Sequence[Put | Delete]) -> list[int | bool]:
        check_batch(ops, self._max_value_size)
        if not ops:
            return []
        with self._op("batch"):
            return self._apply(list(ops))

    @abstractmethod
    def _read(self, namespace: str, key: str) -> Entry | None: ...

    @abstractmethod
    def _scan_page(
        self, namespace: str, low: bytes, low_inclusive: bool, high: bytes | None, reverse: bool, page: int
    ) -> list[Entry]:
        """Up to ``page`` entries between ``low`` and ``high`` (exclusive; None: unbounded) in key
        byte order, descending with ``reverse``."""

    @abstractmethod
    def _write(self, namespace: str, key: str, value: bytes, if_absent: bool, if_version: int | None) -> int:
        """A checked put: the new version, or ConflictError."""

    @abstractmethod
    def _erase(self, namespace: str, key: str, if_version: int | None) -> bool:
        """A checked delete: whether something was removed, or ConflictError."""

    @abstractmethod
    def _apply(self, ops: list[Put | Delete]) -> list[int | bool]:
        """A checked, non-empty batch."""

    # blobs -------------------------------------------------------------------------------------
    def put_blob(self, data: bytes, digest: str | None = None) -> BlobInfo:
        data = bytes(data)
        existing = self._blob_info(_digest_of(data, digest))
        if existing is not None:
            return existing
        return self._store_blob(slices(data, STORED_CHUNK))

    def put_blob_stream(self, chunks: Iterable[bytes]) -> BlobInfo:
        """Store the stream as 1 MiB chunks, in bounded memory; the blob becomes visible only when
        the whole stream is stored."""
        return self._store_blob(rechunked(chunks, STORED_CHUNK))

    def _store_blob(self, chunks: Iterable[bytes]) -> BlobInfo:
        """Write the chunks (each with an expiry), then publish the blob in one step; on any
        failure the chunks written so far are removed (or left to expire)."""
        upload = secrets.token_hex(12)
        h = hashlib.sha256()
        size = count = pending = 0
        group: list[bytes] = []
        try:
            with self._op("put_blob"):
                for chunk in chunks:
                    h.update(chunk)
                    size += len(chunk)
                    count += 1
                    group.append(chunk)
                    pending += len(chunk)
                    if pending >= self._write_group_bytes:
                        self._write_chunks(upload, count - len(group), group)
                        group, pending = [], 0
                if group:
                    self._write_chunks(upload, count - len(group), group)
                digest = h.hexdigest()
                created = utc_now()
                outcome = self._publish(upload, digest, size, count, created)
        except BaseException:
            self._discard_quietly(upload, count)
            raise
        if outcome is Published.NEW:
            return BlobInfo(digest, size, created)
        self._discard_quietly(upload, count)
        if outcome is Published.EXPIRED:
            raise StorageError(
                f"a blob upload took longer than {UPLOAD_TTL} seconds and expired; store it again"
            )
        info = self._blob_info(digest)
        if info is None:
            raise ConflictError("a blob with this content was deleted while storing it; retry")
        return info

    def _discard_quietly(self, upload: str, count: int) -> None:
        with suppress(*self._errors):  # else the unfinished upload's chunks expire on their own
            self._discard(upload, count)

    def _blob_info(self, digest: str) -> BlobInfo | None:
        with self._op("blob lookup"):
            return self._read_blob_info(digest)

    def get_blob(self, digest: str) -> bytes:
        return b"".join([chunk for chunk in self.open_blob(digest)])

    def open_blob(self, digest: str, chunk_size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
        """Stream the blob, reading a few chunks per round trip. NotFoundError (when the blob is
        absent) comes with the first chunk; CorruptionError instead of the last one when the
        bytes fail their digest, or when a chunk is missing."""
        validate_digest(digest)
        check_chunk_size(chunk_size)
        return self._read_blob(digest, chunk_size)

    def _read_blob(self, digest: str, chunk_size: int) -> Iterator[bytes]:
        with self._op("open_blob"):
            layout = self._blob_layout(digest)
        if layout is None:
            raise NotFoundError(f"blob {digest} not found")
        upload, count = layout
        h = hashlib.sha256()
        held: bytes | None = None  # one piece is held back until the digest is checked
        for start in range(0, count, self._read_ahead):
            with self._op("read blob"):
                found = self._read_chunks(upload, start, min(count, start + self._read_ahead))
            for data in found:
                if data is None:
                    raise missing_chunk(digest, self.has_blob(digest))
                h.update(data)
                for piece in pieces(data, chunk_size):
                    if held is not None:
                        yield held
                    held = piece
        if h.hexdigest() != digest:
            raise CorruptionError(f"blob {digest} failed its digest check: the stored bytes were damaged")
        if held is not None:
            yield held

    def has_blob(self, digest: str) -> bool:
        validate_digest(digest)
        with self._op("has_blob"):
            return self._blob_exists(digest)

    def delete_blob(self, digest: str) -> bool:
        validate_digest(digest)
        with self._op("delete_blob"):
            return self._remove_blob(digest)

    def list_blobs(self) -> Iterator[BlobInfo]:
        """Every blob with its size and creation time, read in pages (in no particular order; a
        blob stored or deleted during the listing may or may not appear)."""
        token: str | None = None
        while True:
            with self._op("list_blobs"):
                infos, token = self._blob_page(token)
            yield from infos
            if token is None:
                return

    @abstractmethod
    def _write_chunks(self, upload: str, first: int, chunks: list[bytes]) -> None:
        """Store ``chunks`` as numbers ``first``, ``first + 1`` ... of ``upload``, each expiring
        after UPLOAD_TTL unless published."""

    @abstractmethod
    def _publish(self, upload: str, digest: str, size: int, count: int, created: datetime) -> Published:
        """Keep the upload's ``count`` chunks for good and make the blob visible, in one step."""

    @abstractmethod
    def _discard(self, upload: str, count: int) -> None:
        """Remove the chunks of an upload that will not be published."""

    @abstractmethod
    def _read_blob_info(self, digest: str) -> BlobInfo | None: ...

    @abstractmethod
    def _blob_layout(self, digest: str) -> tuple[str, int] | None:
        """The upload id and chunk count of a stored blob (None: no such blob)."""

    @abstractmethod
    def _read_chunks(self, upload: str, start: int, end: int) -> list[bytes | None]:
        """Chunks ``start`` to ``end`` (exclusive) of ``upload``, None for a missing one."""

    @abstractmethod
    def _blob_exists(self, digest: str) -> bool: ...

    @abstractmethod
    def _remove_blob(self, digest: str) -> bool: ...

    @abstractmethod
    def _blob_page(self, token: str | None) -> tuple[list[BlobInfo], str | None]:
        """One page of the blob listing from ``token`` (None: the start) and the next page's
        token (None: this was the last page)."""


def _digest_of(data: bytes, digest: str | None) -> str:
    """:func:`check_digest_of`, which the async twin runs on a worker thread for a large blob
    (hashing takes about 2 ms a MiB: long enough to stall an event loop)."""
    return check_digest_of(data, digest)
