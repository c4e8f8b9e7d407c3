"""The store directory of the plain-files driver (see :mod:`runtime_persistence.storage.drivers.file`):
opening or creating it (the ``keepup-store.json`` marker, ``kv/``, ``blobs/``, ``tmp/``), atomic file
writes (temporary file, fsync, rename, directory fsync), the driver's properties, close and destroy.
:class:`_FileDirectory` is the base that the lock, key-value and blob parts of
:class:`~runtime_persistence.storage.drivers.file.FileDriver` build on."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import threading
import time
from pathlib import Path

from runtime_core import (
    Durability,
    StorageError,
    ValidationError,
)

from runtime_persistence.storage.private import PRIVATE_DIR, PRIVATE_FILE

_FORMAT_NAME = "keepup-file-store"
_FORMAT_VERSION = 1
FORMAT: dict[str, str | int] = {"format": _FORMAT_NAME, "version": _FORMAT_VERSION}
_MARKER = "keepup-store.json"
_STALE_TMP = 24 * 3600


class _FileDirectory:
    """One file store's directory: its layout, set-up and atomic file writes."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        durability: Durability | str = Durability.DURABLE,
        lock_timeout: float = 30.0,
        stale_after: float = 60.0,
        max_value_size: int = 64 << 20,
        url: str | None = None,
    ) -> None:
        self._root = Path(root)
        self._durability = Durability(durability)
        self._lock_timeout = float(lock_timeout)
        self._stale_after = float(stale_after)
        self._max_value_size = int(max_value_size)
        self._url = url or f"file://{self._root}"
        self._thread_lock = threading.RLock()
        self._host = socket.gethostname()
        self._kv = self._root / "kv"
        self._blobs = self._root / "blobs"
        self._tmp = self._root / "tmp"
        self._lock_path = self._root / "lock"
        self._open_store()

    def _open_store(self) -> None:
        marker = self._root / _MARKER
        try:
            if marker.exists():
                found = json.loads(marker.read_text("utf-8"))
                if found.get("format") != _FORMAT_NAME:
                    raise ValidationError(
                        f"{self._root} is not a Keepup file store ({marker} says otherwise)"
                    )
                if int(found.get("version", 0)) > _FORMAT_VERSION:
                    raise StorageError(
                        f"the file store {self._root} has format version {found.get('version')}, newer "
                        f"than this Keepup knows ({_FORMAT_VERSION}); upgrade Keepup to open it"
                    )
            else:
                if self._root.exists() and any(self._root.iterdir()) and not self._interrupted_creation():
                    raise ValidationError(
                        f"{self._root} is a non-empty directory that is not a Keepup store; "
                        "refusing to write into it (choose an empty or new directory)"
                    )
                self._root.parent.mkdir(parents=True, exist_ok=True)
                self._root.mkdir(mode=PRIVATE_DIR, exist_ok=True)
                for sub in (self._kv, self._blobs, self._tmp):
                    sub.mkdir(mode=PRIVATE_DIR, exist_ok=True)
                self._write_file(marker, json.dumps(FORMAT).encode(), self._root)
                self._fsync_dir(self._root.parent)
            for sub in (self._kv, self._blobs, self._tmp):
                sub.mkdir(mode=PRIVATE_DIR, exist_ok=True)
            cutoff = time.time() - _STALE_TMP
            for leftover in self._tmp.iterdir():
                with contextlib.suppress(OSError):
                    if leftover.stat().st_mtime < cutoff:
                        leftover.unlink()
        except (OSError, json.JSONDecodeError) as exc:
            raise StorageError(f"cannot open the file store {self._root}: {exc}") from exc

    def _interrupted_creation(self) -> bool:
        """True when the directory holds only what a creation cut short (a power loss before the
        marker was durable) leaves: some of the empty ``kv/``, ``blobs/`` and ``tmp/``, ``tmp/``
        possibly with the marker's temporary file. Such a store is finished, not refused."""
        with os.scandir(self._root) as top:
            for entry in top:
                if entry.name not in ("kv", "blobs", "tmp") or not entry.is_dir(follow_symlinks=False):
                    return False
                with os.scandir(entry.path) as inner:
                    for item in inner:
                        if not (
                            entry.name == "tmp"
                            and item.name.endswith(".tmp")
                            and item.is_file(follow_symlinks=False)
                        ):
                            return False
        return True

    # properties ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self._url

    @property
    def root(self) -> Path:
        return self._root

    @property
    def atomic_batch(self) -> bool:
        return False

    @property
    def max_value_size(self) -> int:
        return self._max_value_size

    # files ---------------------------------------------------------------------------------------
    def _fsync_dir(self, directory: Path) -> None:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _temp_path(self) -> Path:
        return self._tmp / f"{secrets.token_hex(12)}.tmp"

    def _write_file(self, target: Path, data: bytes, directory: Path) -> None:
        """Write ``data`` to ``target`` atomically: temp file, fsync, rename, fsync of the
        directory (skipped in relaxed mode)."""
        tmp = self._temp_path() if self._tmp.exists() else target.with_name(f".{target.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        try:
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if self._durability is Durability.DURABLE:
            self._fsync_dir(directory)

    def _make_dirs(self, directory: Path) -> Path | None:
        """Create ``directory`` and missing parents; return the topmost one created, if any."""
        if directory.is_dir():
            return None
        missing = [directory]
        while not missing[-1].parent.is_dir():
            missing.append(missing[-1].parent)
        top = missing[-1]
        for folder in reversed(missing):  # one level at a time: each one private (0700)
            folder.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        if self._durability is Durability.DURABLE:
            d = directory
            while d != top:
                self._fsync_dir(d.parent)
                d = d.parent
        return top

    # lifecycle -----------------------------------------------------------------------------------
    def close(self) -> None:
        return None

    def destroy(self) -> None:
        """Delete the whole store directory (only if it is marked as a Keepup store)."""
        if (self._root / _MARKER).exists():
            shutil.rmtree(self._root)
