"""The blob area of the plain-files driver (see :mod:`runtime_persistence.storage.drivers.file`): one
file per blob under ``blobs/<ab>/<cd>/<digest>``, written to ``tmp/`` and renamed into place."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runtime_core import (
    BlobInfo,
    Durability,
    NotFoundError,
    StorageError,
    ValidationError,
    validate_digest,
)

from runtime_persistence.storage.drivers._common import (
    DEFAULT_CHUNK,
    check_chunk_size,
    check_digest_of,
    verified_chunks,
)
from runtime_persistence.storage.drivers._file_directory import _FileDirectory
from runtime_persistence.storage.private import PRIVATE_FILE


class _FileBlobs(_FileDirectory):
    """The blob area of one file store."""

    # blobs ---------------------------------------------------------------------------------------
    def _blob_path(self, digest: str) -> Path:
        return self._blobs / digest[:2] / digest[2:4] / digest

    def _publish_blob(self, tmp: Path, digest: str) -> BlobInfo:
        target = self._blob_path(digest)
        try:
            if target.exists():
                tmp.unlink(missing_ok=True)
            else:
                created = self._make_dirs(target.parent)
                os.replace(tmp, target)
                if self._durability is Durability.DURABLE:
                    self._fsync_dir(target.parent)
                    if created is not None:
                        self._fsync_dir(created.parent)
            return self._info(target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"cannot store blob {digest}: {exc}") from exc

    @staticmethod
    def _info(path: Path) -> BlobInfo:
        st = path.stat()
        return BlobInfo(path.name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def put_blob(self, data: bytes, digest: str | None = None) -> BlobInfo:
        """Store ``data`` as a file named by its SHA-256 (a no-op if already stored)."""
        data = bytes(data)
        actual = check_digest_of(data, digest)
        existing = self._blob_path(actual)
        if existing.exists():
            return self._info(existing)
        return self._write_blob([data], actual)

    def put_blob_stream(self, chunks: Iterable[bytes]) -> BlobInfo:
        """Write the stream to a temporary file while hashing it (bounded memory), fsync it and
        rename it to its digest's path; a blob already stored is kept and the copy dropped."""
        return self._write_blob(chunks, None)

    def _write_blob(self, chunks: Iterable[bytes], digest: str | None) -> BlobInfo:
        """Write ``chunks`` to a temporary file and publish it under ``digest`` (hashed here
        while writing when None: a caller that gives it has already hashed the bytes)."""
        tmp = self._temp_path()
        h = hashlib.sha256()
        try:
            out = open(tmp, "xb")  # noqa: SIM115 (closed below)
            os.fchmod(out.fileno(), PRIVATE_FILE)  # other local users never read a blob
        except OSError as exc:
            raise StorageError(f"cannot write a blob into {self._tmp}: {exc}") from exc
        try:
            with out:
                for chunk in chunks:  # errors raised by the caller's iterator pass through as they are
                    if not isinstance(chunk, (bytes, bytearray, memoryview)):
                        raise ValidationError(f"a blob stream yields bytes, got {type(chunk).__name__}")
                    if digest is None:
                        h.update(chunk)
                    try:
                        out.write(chunk)
                    except OSError as exc:
                        raise StorageError(f"cannot write a blob into {self._tmp}: {exc}") from exc
                try:
                    out.flush()
                    os.fsync(out.fileno())
                except OSError as exc:
                    raise StorageError(f"cannot write a blob into {self._tmp}: {exc}") from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self._publish_blob(tmp, digest or h.hexdigest())

    def get_blob(self, digest: str) -> bytes:
        return b"".join(self.open_blob(digest))

    def open_blob(self, digest: str, chunk_size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
        """Stream the blob's file in chunks; CorruptionError at the end if it does not hash to
        ``digest``."""
        validate_digest(digest)
        check_chunk_size(chunk_size)
        path = self._blob_path(digest)
        try:
            handle = open(path, "rb")  # noqa: SIM115 (closed by the generator)
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} not found") from None
        except OSError as exc:
            raise StorageError(f"cannot read blob {digest}: {exc}") from exc
        return verified_chunks(_read_chunks(handle, chunk_size), digest)

    def has_blob(self, digest: str) -> bool:
        validate_digest(digest)
        return self._blob_path(digest).is_file()

    def delete_blob(self, digest: str) -> bool:
        validate_digest(digest)
        path = self._blob_path(digest)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StorageError(f"cannot delete blob {digest}: {exc}") from exc
        if self._durability is Durability.DURABLE:
            self._fsync_dir(path.parent)
        return True

    def list_blobs(self) -> Iterator[BlobInfo]:
        found: list[BlobInfo] = []
        for path in self._blobs.glob("*/*/*"):
            if len(path.name) == 64:
                with contextlib.suppress(FileNotFoundError):
                    found.append(self._info(path))
        return iter(found)


def _read_chunks(handle: Any, chunk_size: int) -> Iterator[bytes]:
    with handle:
        while True:
            chunk = handle.read(chunk_size)
            if not chunk:
                return
            yield chunk
