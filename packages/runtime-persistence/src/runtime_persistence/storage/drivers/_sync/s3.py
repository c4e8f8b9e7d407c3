# Generated from packages/runtime-persistence/src/runtime_persistence/storage/drivers/_async/s3.py by scripts/gen_sync.py: edit that file and rerun the script.
"""Blobs on S3-compatible object storage under a database's records, written once as async code
(:class:`S3Blobs`); ``_sync/s3.py`` (``S3Blobs``) is generated from it. The object-storage
calls (the MinIO client, blocking) run in a worker thread in the async class and directly in the
sync one. The URL rules and the guarantees are in :mod:`runtime_persistence.storage.drivers.s3`."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, BinaryIO, ParamSpec, TypeVar, cast

from minio import Minio
from minio.error import S3Error
from runtime_core import (
    BlobInfo,
    Delete,
    Driver,
    Entry,
    NotFoundError,
    Put,
    StorageError,
    ValidationError,
    blob_digest,
    validate_digest,
)

from runtime_persistence.storage.drivers._s3_core import S3Location, VerifiedChunks, object_key

__all__ = ["S3Blobs"]

_P = ParamSpec("_P")
_R = TypeVar("_R")
_CHUNK = 1 << 20
_PART = 5 << 20  # S3's smallest part: memory holds about two of them while one uploads


def _io(fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
    """A blocking object-storage or temporary-file call: in a worker thread in async code."""
    return fn(*args, **kwargs)


def _missing(exc: S3Error) -> bool:
    return exc.code in ("NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound")


class S3Blobs:
    """A driver whose records stay in ``records`` (any driver: PostgreSQL, MySQL, …) and whose
    blob area is a bucket of an S3-compatible object store. Implements the driver contract:
    every call but the blob area's goes to ``records`` unchanged.

    Blobs are objects named by their SHA-256 (``<prefix><digest>``), written whole or not at all
    (S3 puts are atomic), streamed both ways in bounded memory (a stream of unknown length is
    spooled to a private temporary file while it is hashed, then uploaded in parts), and checked
    against their digest on every read: a changed object raises CorruptionError."""

    def __init__(self, records: Driver, client: Minio, location: S3Location) -> None:
        self._records = records
        self._client = client
        self._loc = location

    @property
    def records(self) -> Driver:
        """The driver that holds the records."""
        return self._records

    @property
    def location(self) -> S3Location:
        return self._loc

    def __getattr__(self, name: str) -> Any:  # migrate, schema_version, destroy, … of the records
        return getattr(self._records, name)

    # ------------------------------------------------------------------ the records: unchanged
    @property
    def url(self) -> str:
        return f"{self._records.url} (blobs: {self._loc.url})"

    @property
    def atomic_batch(self) -> bool:
        return self._records.atomic_batch

    @property
    def max_value_size(self) -> int:
        return self._records.max_value_size

    def get(self, namespace: str, key: str) -> Entry | None:
        return self._records.get(namespace, key)

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
        return self._records.scan(
            namespace, prefix=prefix, after=after, before=before, reverse=reverse, limit=limit
        )

    def put(
        self,
        namespace: str,
        key: str,
        value: bytes,
        *,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> int:
        return self._records.put(namespace, key, value, if_absent=if_absent, if_version=if_version)

    def delete(self, namespace: str, key: str, *, if_version: int | None = None) -> bool:
        return self._records.delete(namespace, key, if_version=if_version)

    def batch(self, ops: Sequence[Put | Delete]) -> list[int | bool]:
        return self._records.batch(ops)

    def close(self) -> None:
        self._records.close()

    # ------------------------------------------------------------------------ the blob area
    def _stat(self, digest: str) -> BlobInfo | None:
        try:
            found = _io(self._client.stat_object, self._loc.bucket, object_key(self._loc, digest))
        except S3Error as exc:
            if _missing(exc):
                return None
            raise StorageError(f"object storage at {self._loc.url} failed: {exc.code}") from exc
        return BlobInfo(digest, int(found.size or 0), found.last_modified)

    def put_blob(self, data: bytes, digest: str | None = None) -> BlobInfo:
        actual = blob_digest(bytes(data))
        if digest is not None and validate_digest(digest) != actual:
            raise ValidationError(f"blob data does not match digest {digest}: nothing stored")
        existing = self._stat(actual)
        if existing is not None:
            return existing
        fh = cast(BinaryIO, _io(tempfile.TemporaryFile))
        try:
            _io(fh.write, bytes(data))
            _io(fh.seek, 0)
            return self._upload(fh, actual, len(data))
        finally:
            _io(fh.close)

    def put_blob_stream(self, chunks: Iterable[bytes]) -> BlobInfo:
        hasher = hashlib.sha256()
        size = 0
        fh = cast(BinaryIO, _io(tempfile.TemporaryFile))
        try:
            for chunk in chunks:
                hasher.update(chunk)
                size += len(chunk)
                _io(fh.write, chunk)
            digest = hasher.hexdigest()
            existing = self._stat(digest)
            if existing is not None:
                return existing
            _io(fh.seek, 0)
            return self._upload(fh, digest, size)
        finally:
            _io(fh.close)

    def _upload(self, fh: BinaryIO, digest: str, size: int) -> BlobInfo:
        try:
            _io(
                self._client.put_object,
                self._loc.bucket,
                object_key(self._loc, digest),
                fh,
                size,
                part_size=_PART,
                num_parallel_uploads=1,
            )
        except S3Error as exc:
            raise StorageError(f"object storage at {self._loc.url} refused a blob: {exc.code}") from exc
        found = self._stat(digest)
        return found if found is not None else BlobInfo(digest, size, None)

    def get_blob(self, digest: str) -> bytes:
        return b"".join([chunk for chunk in self.open_blob(digest)])

    def open_blob(self, digest: str, chunk_size: int = _CHUNK) -> Iterator[bytes]:
        digest = validate_digest(digest)
        try:
            response = _io(self._client.get_object, self._loc.bucket, object_key(self._loc, digest))
        except S3Error as exc:
            if _missing(exc):
                raise NotFoundError(f"blob {digest} not found in {self._loc.url}") from exc
            raise StorageError(f"object storage at {self._loc.url} failed: {exc.code}") from exc
        try:
            raw = response.stream(chunk_size)
            check = VerifiedChunks(digest)
            while True:
                chunk = _io(next, raw, None)
                for ready in check.send(chunk):  # noqa: RUF100, UP028 (no `yield from` in async)
                    yield ready
                if chunk is None:
                    return
        finally:
            _io(response.close)
            _io(response.release_conn)

    def has_blob(self, digest: str) -> bool:
        return self._stat(validate_digest(digest)) is not None

    def delete_blob(self, digest: str) -> bool:
        digest = validate_digest(digest)
        if self._stat(digest) is None:
            return False
        _io(self._client.remove_object, self._loc.bucket, object_key(self._loc, digest))
        return True

    def list_blobs(self) -> Iterator[BlobInfo]:
        listing = _io(self._client.list_objects, self._loc.bucket, prefix=self._loc.prefix, recursive=True)
        while (obj := _io(next, listing, None)) is not None:
            name = str(obj.object_name or "")[len(self._loc.prefix) :]
            if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
                yield BlobInfo(name, int(obj.size or 0), obj.last_modified)

    def destroy(self) -> None:
        """Remove every blob under this store's prefix, then the records' store (tests)."""
        for info in self.list_blobs():
            _io(self._client.remove_object, self._loc.bucket, object_key(self._loc, info.digest))
        destroy = getattr(self._records, "destroy", None)
        if destroy is not None:
            destroy()
