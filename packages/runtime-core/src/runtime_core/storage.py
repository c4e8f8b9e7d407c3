"""The storage driver contract: an ordered key-value store with namespaces plus a content-addressed
blob area. Every repository (checkpoints, artifacts, sessions, tasks, events) is written once on
top of this contract, so every feature works on every driver.

Ordering: keys are ``str`` and sort in UTF-8 byte order (which equals code point order), the
same on every driver. Versions: every key carries an integer version, 1 when created, +1 on each
put; a conditional put (``if_absent`` or ``if_version``) that loses raises ConflictError and
writes nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from runtime_core.errors import ValidationError

__all__ = [
    "MAX_KEY_BYTES",
    "AsyncBlobArea",
    "AsyncDriver",
    "BlobArea",
    "BlobInfo",
    "Delete",
    "Driver",
    "Durability",
    "Entry",
    "Put",
    "blob_digest",
    "validate_digest",
    "validate_key",
    "validate_namespace",
]

MAX_KEY_BYTES = 512
_NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


def validate_namespace(namespace: object) -> str:
    """Return ``namespace`` if valid (1–63 chars of ``a-z 0-9 _ . -``), else raise ValidationError."""
    if not isinstance(namespace, str) or not _NAMESPACE_RE.match(namespace):
        raise ValidationError(
            f"a namespace is 1-63 characters of a-z, 0-9, '_', '.', '-' starting with a letter "
            f"or digit; got {namespace!r:.80}"
        )
    return namespace


def validate_key(key: object) -> str:
    """Return ``key`` if it is a valid key: a non-empty str of at most MAX_KEY_BYTES UTF-8 bytes,
    without NUL or lone surrogates. Raises ValidationError otherwise."""
    if not isinstance(key, str):
        raise ValidationError(f"a key must be a str, got {type(key).__name__}")
    if not key:
        raise ValidationError("a key must not be empty")
    if "\x00" in key:
        raise ValidationError("a key must not contain NUL characters")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValidationError("a key must not contain lone surrogates") from None
    if size > MAX_KEY_BYTES:
        raise ValidationError(f"a key is at most {MAX_KEY_BYTES} UTF-8 bytes; this one is {size}")
    return key


def blob_digest(data: bytes) -> str:
    """The content address of ``data``: lowercase hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def validate_digest(digest: object) -> str:
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise ValidationError(f"a blob digest is 64 lowercase hex characters (SHA-256), got {digest!r:.80}")
    return digest


class Durability(StrEnum):
    """``durable``: a write is on stable storage before it is acknowledged (the default).
    ``relaxed``: group commit; a power loss may lose the newest writes, never corrupt older ones."""

    DURABLE = "durable"
    RELAXED = "relaxed"


@dataclass(frozen=True, slots=True)
class Entry:
    """A stored value with its key and version."""

    key: str
    value: bytes
    version: int


@dataclass(frozen=True, slots=True)
class Put:
    """A put inside a batch; the same conditions as :meth:`Driver.put`."""

    namespace: str
    key: str
    value: bytes
    if_absent: bool = False
    if_version: int | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    """A delete inside a batch; with ``if_version``, only if the version still matches."""

    namespace: str
    key: str
    if_version: int | None = None


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """A stored blob: its digest, size and (where the backend knows it) when it was stored."""

    digest: str
    size: int
    created_at: datetime | None = None


@runtime_checkable
class BlobArea(Protocol):
    """Content-addressed blobs. Reads verify the digest: a damaged blob raises CorruptionError."""

    def put_blob(self, data: bytes, digest: str | None = None) -> BlobInfo:
        """Store ``data`` under its SHA-256 (verified against ``digest`` when given). Storing bytes
        that are already there is a no-op that refreshes nothing and returns the same digest."""
        ...

    def put_blob_stream(self, chunks: Iterable[bytes]) -> BlobInfo:
        """Store a stream of any length in bounded memory; the digest is computed on the way."""
        ...

    def get_blob(self, digest: str) -> bytes:
        """The blob's bytes; NotFoundError if absent, CorruptionError if they fail the digest."""
        ...

    def open_blob(self, digest: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Stream the blob in chunks, in bounded memory. The digest is checked as the stream
        ends: CorruptionError is raised instead of the last chunk if it does not match."""
        ...

    def has_blob(self, digest: str) -> bool: ...

    def delete_blob(self, digest: str) -> bool:
        """Remove the blob; False if it was not there."""
        ...

    def list_blobs(self) -> Iterator[BlobInfo]:
        """Every blob, in no particular order (for garbage collection)."""
        ...


@runtime_checkable
class Driver(BlobArea, Protocol):
    """An ordered key-value store with namespaces, and a blob area.

    ``atomic_batch`` tells whether :meth:`batch` is all-or-nothing on this backend; repositories
    must stay correct without it (immutable records, heads moved by compare-and-set)."""

    @property
    def url(self) -> str:
        """The store's URL with any password removed (safe to print)."""
        ...

    @property
    def atomic_batch(self) -> bool: ...

    @property
    def max_value_size(self) -> int:
        """The largest value :meth:`put` accepts; larger values belong in the blob area."""
        ...

    def get(self, namespace: str, key: str) -> Entry | None: ...

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
        """Entries whose key starts with ``prefix`` and lies strictly between ``after`` and
        ``before``, in UTF-8 byte order of the key (descending with ``reverse``), at most ``limit``.

        To page forward pass the last key seen as ``after``; backward, as ``before``."""
        ...

    def put(
        self,
        namespace: str,
        key: str,
        value: bytes,
        *,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> int:
        """Write ``value`` and return the key's new version. ``if_absent``: only if the key does
        not exist; ``if_version``: only if its version is still that. On a lost condition raise
        ConflictError and write nothing. Invalid keys or oversized values raise ValidationError
        before anything is written."""
        ...

    def delete(self, namespace: str, key: str, *, if_version: int | None = None) -> bool:
        """Remove the key; False if it was absent. ConflictError if ``if_version`` no longer matches."""
        ...

    def batch(self, ops: Sequence[Put | Delete]) -> list[int | bool]:
        """Apply ``ops`` in order; all or nothing where ``atomic_batch`` is true. Returns each op's
        result (the new version of a put, whether a delete removed something)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class AsyncBlobArea(Protocol):
    """The async twin of :class:`BlobArea`: the same methods, guarantees and errors, awaited.
    Streams are async iterators. ``tests/test_core_storage.py`` checks that the two protocols
    name the same methods with the same parameters."""

    async def put_blob(self, data: bytes, digest: str | None = None) -> BlobInfo: ...

    async def put_blob_stream(self, chunks: AsyncIterable[bytes]) -> BlobInfo: ...

    async def get_blob(self, digest: str) -> bytes: ...

    def open_blob(self, digest: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]: ...

    async def has_blob(self, digest: str) -> bool: ...

    async def delete_blob(self, digest: str) -> bool: ...

    def list_blobs(self) -> AsyncIterator[BlobInfo]: ...


@runtime_checkable
class AsyncDriver(AsyncBlobArea, Protocol):
    """The async twin of :class:`Driver` (see there for every promise). A driver with native
    async I/O implements it directly; any sync driver becomes one on a worker thread
    (``runtime_persistence.storage.threaded.AsyncThreadDriver``)."""

    @property
    def url(self) -> str: ...

    @property
    def atomic_batch(self) -> bool: ...

    @property
    def max_value_size(self) -> int: ...

    async def get(self, namespace: str, key: str) -> Entry | None: ...

    def scan(
        self,
        namespace: str,
        *,
        prefix: str = "",
        after: str | None = None,
        before: str | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> AsyncIterator[Entry]: ...

    async def put(
        self,
        namespace: str,
        key: str,
        value: bytes,
        *,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> int: ...

    async def delete(self, namespace: str, key: str, *, if_version: int | None = None) -> bool: ...

    async def batch(self, ops: Sequence[Put | Delete]) -> list[int | bool]: ...

    async def close(self) -> None: ...
