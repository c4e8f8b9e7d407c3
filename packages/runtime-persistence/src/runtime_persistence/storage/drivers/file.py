"""The plain-files driver (``file:///path/to/dir``): a directory tree that needs no server and no
library, readable with ordinary tools.

Layout::

    keepup-store.json            marks the directory as a Keepup store (format version)
    lock                         the writers' lock file: {"host", "pid", "time", "token"}
    kv/<namespace>/<k1>.d/…/<kn>.v   one file per key: the key's UTF-8 bytes in hex, split into
                                 240-character segments (directories ``.d``, the last a file ``.v``)
    blobs/<ab>/<cd>/<digest>     one file per blob, sharded by the digest's first two bytes
    tmp/                         files being written

Guarantees:

* **Durability**: every file is written under a temporary name, fsynced, renamed into place, and
  (``durable``, the default) its directory fsynced, so an acknowledged write survives a power
  loss. ``relaxed`` skips the directory fsync: the newest writes may be lost, files are never torn.
* **Atomicity**: each put and delete is atomic (a rename or an unlink under the lock). A batch
  checks every condition before writing anything, so a lost condition writes nothing, but a crash
  in the middle of a batch can leave part of it applied: ``atomic_batch`` is false.
* **Concurrency**: writers in all processes and threads are serialised by the lock file, created
  with O_EXCL. A lock whose holder is a dead process on this host, or that is older than
  ``stale_after`` seconds (default 60), is stale and is broken (breaking is itself serialised by
  ``flock`` on ``lock.guard``, so two processes never break one lock twice). Readers take no lock.
* **Order**: hex of UTF-8 bytes sorts like the bytes, so scans are in the contract's byte order.
  A scan lists the namespace's directory: it costs O(n) in the namespace's size, fine for small
  and medium stores; use SQLite or a server for large ones.
* **Integrity**: each key file holds ``magic, version, length, value`` and a BLAKE2b-128 checksum
  over those and the namespace and key, so damage, truncation and a file copied to another key
  raise CorruptionError. Blobs are verified against their digest as they are read.

URL query options: ``lock_timeout`` (seconds to wait for the lock, default 30), ``stale_after``
(seconds, default 60), ``max_value_size`` (bytes, default 64 MiB).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
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

__all__ = ["FORMAT", "FileDriver", "LockInfo"]

_FORMAT_NAME = "keepup-file-store"
_FORMAT_VERSION = 1
FORMAT: dict[str, str | int] = {"format": _FORMAT_NAME, "version": _FORMAT_VERSION}
_MARKER = "keepup-store.json"
_MAGIC = b"KUF\x01"
_HEAD = 4 + 8 + 8
_SUM = 16
_SEGMENT = 240  # hex characters per path segment (file names stay under 255 bytes)
_STALE_TMP = 24 * 3600


def _checksum(namespace: str, key_bytes: bytes, head_and_value: bytes | memoryview) -> bytes:
    h = hashlib.blake2b(namespace.encode("ascii"), digest_size=_SUM)
    h.update(b"\x00")
    h.update(key_bytes)
    h.update(b"\x00")
    h.update(head_and_value)
    return h.digest()


def _encode_record(namespace: str, key_bytes: bytes, version: int, value: bytes) -> bytes:
    body = b"".join((_MAGIC, version.to_bytes(8, "big"), len(value).to_bytes(8, "big"), value))
    return body + _checksum(namespace, key_bytes, body)


def _decode_record(namespace: str, key_bytes: bytes, data: bytes, where: Path) -> tuple[bytes, int]:
    if len(data) < _HEAD + _SUM or data[:4] != _MAGIC:
        raise CorruptionError(f"{where} is not a Keepup record (too short or bad magic): the file is damaged")
    body = memoryview(data)[:-_SUM]
    if _checksum(namespace, key_bytes, body) != data[-_SUM:]:
        raise CorruptionError(f"{where} failed its checksum: the file is damaged or belongs to another key")
    version = int.from_bytes(data[4:12], "big")
    length = int.from_bytes(data[12:20], "big")
    if length != len(data) - _HEAD - _SUM or version < 1:
        raise CorruptionError(f"{where} has an inconsistent header: the file is damaged")
    return data[_HEAD:-_SUM], version


class LockInfo:
    """Who holds a store's lock file, parsed from its JSON content."""

    __slots__ = ("host", "pid", "raw", "time", "token")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        try:
            data = json.loads(raw.decode("utf-8"))
            self.host = str(data["host"])
            self.pid = int(data["pid"])
            self.time = float(data["time"])
            self.token = str(data["token"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            # an unreadable lock (e.g. its writer died before writing it) is judged by age alone
            self.host, self.pid, self.time, self.token = "", 0, 0.0, ""

    def describe(self) -> str:
        when = datetime.fromtimestamp(self.time, UTC).isoformat() if self.time else "an unknown time"
        return f"process {self.pid} on {self.host or 'an unknown host'} since {when}"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FileDriver:
    """An ordered key-value store and blob area in a directory tree."""

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

    @classmethod
    def from_url(cls, url: str, *, durability: Durability = Durability.DURABLE, **options: Any) -> FileDriver:
        """Open (creating it if needed) the store in the directory ``file:///path``."""
        if not url.lower().startswith("file://"):
            raise ValidationError(f"not a file:// URL: {url!r:.200}")
        raw = unquote(url[len("file://") :].split("?", 1)[0].split("#", 1)[0])
        if raw.startswith("//"):
            raw = "/" + raw.lstrip("/")
        if not raw:
            raise ValidationError(
                f"a file store URL names a directory: file:///path/to/dir; got {url!r:.200}"
            )
        merged: dict[str, Any] = {**dict(parse_qsl(urlsplit(url).query)), **options}
        kwargs: dict[str, Any] = {}
        for name, conv in (("lock_timeout", float), ("stale_after", float), ("max_value_size", int)):
            if name in merged:
                kwargs[name] = conv(merged.pop(name))
        if "durability" in merged:
            durability = Durability(merged.pop("durability"))
        if merged:
            raise ValidationError(f"unknown file store options: {', '.join(sorted(merged))}")
        return cls(raw, durability=durability, url=url.split("#", 1)[0], **kwargs)

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
                self._root.mkdir(parents=True, exist_ok=True)
                for sub in (self._kv, self._blobs, self._tmp):
                    sub.mkdir(exist_ok=True)
                self._write_file(marker, json.dumps(FORMAT).encode(), self._root)
                self._fsync_dir(self._root.parent)
            for sub in (self._kv, self._blobs, self._tmp):
                sub.mkdir(exist_ok=True)
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
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
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

    def _key_path(self, namespace: str, key_bytes: bytes) -> Path:
        hexed = key_bytes.hex()
        segments = [hexed[i : i + _SEGMENT] for i in range(0, len(hexed), _SEGMENT)]
        path = self._kv / namespace
        for seg in segments[:-1]:
            path = path / f"{seg}.d"
        return path / f"{segments[-1]}.v"

    def _read(self, namespace: str, key_bytes: bytes) -> tuple[bytes, int] | None:
        path = self._key_path(namespace, key_bytes)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        return _decode_record(namespace, key_bytes, data, path)

    # lock ----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the store's writer lock (this thread and every other process wait)."""
        with self._thread_lock:
            token = self._acquire()
            try:
                yield
            finally:
                self._release(token)

    def _acquire(self) -> str:
        token = secrets.token_hex(8)
        payload = json.dumps({"host": self._host, "pid": os.getpid(), "time": time.time(), "token": token})
        deadline = time.monotonic() + self._lock_timeout
        delay = 0.0005
        # the lock appears with its content in one step (hard link of a written file), so a
        # process killed while taking it never leaves an anonymous lock behind
        staged = self._root / f"lock.{os.getpid()}.{token}.tmp"
        staged.write_bytes(payload.encode())
        try:
            return self._acquire_staged(staged, token, deadline, delay)
        finally:
            staged.unlink(missing_ok=True)

    def _acquire_staged(self, staged: Path, token: str, deadline: float, delay: float) -> str:
        while True:
            try:
                os.link(staged, self._lock_path)
            except FileExistsError:
                pass
            except OSError as exc:
                raise StorageError(f"cannot create the lock file {self._lock_path}: {exc}") from exc
            else:
                return token
            holder = self._break_if_stale()
            if holder is None:
                continue
            if time.monotonic() > deadline:
                raise StorageError(
                    f"the file store {self._root} is locked by {holder.describe()}; waited "
                    f"{self._lock_timeout:g}s (a dead holder's lock is broken automatically; "
                    f"a live one must finish first)"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.02)

    def _stale(self, info: LockInfo, mtime: float) -> bool:
        if info.host == self._host and info.pid and not _pid_alive(info.pid):
            return True
        written = info.time or mtime
        return time.time() - written > self._stale_after

    def _break_if_stale(self) -> LockInfo | None:
        """Return the live holder's info, or None when the lock vanished or was broken here."""
        try:
            raw = self._lock_path.read_bytes()
            mtime = self._lock_path.stat().st_mtime
        except FileNotFoundError:
            return None
        info = LockInfo(raw)
        if not info.token and time.time() - mtime < 1.0:
            return info  # being written right now
        if not self._stale(info, mtime):
            return info
        guard = os.open(self._root / "lock.guard", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(guard, fcntl.LOCK_EX)
            try:
                if self._lock_path.read_bytes() == raw:  # still the same stale holder
                    self._lock_path.unlink()
            except FileNotFoundError:
                pass
            finally:
                fcntl.flock(guard, fcntl.LOCK_UN)
        finally:
            os.close(guard)
        return None

    def _release(self, token: str) -> None:
        try:
            info = LockInfo(self._lock_path.read_bytes())
        except FileNotFoundError:
            info = None
        if info is None or info.token != token:
            raise StorageError(
                f"the lock of {self._root} was broken while this process held it (held longer than "
                f"stale_after={self._stale_after:g}s?); the last write may have raced another writer"
            )
        self._lock_path.unlink()

    # key-value -----------------------------------------------------------------------------------
    def get(self, namespace: str, key: str) -> Entry | None:
        """The entry at ``key`` or None; CorruptionError if its file is damaged. Takes no lock."""
        check_key_op(namespace, key)
        found = self._read(namespace, key.encode("utf-8"))
        return None if found is None else Entry(key, found[0], found[1])

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
        """Entries in UTF-8 byte order of the key; lists the namespace (O(n)), then reads only
        the files it returns. Keys deleted while the scan runs are skipped."""
        check_scan(namespace, prefix, after, before, limit)
        prefix_hex = prefix.encode().hex()
        names: list[str] = []
        self._collect(self._kv / namespace, "", prefix_hex, names)
        lo = after.encode().hex() if after is not None else None
        hi = before.encode().hex() if before is not None else None
        selected = [n for n in names if (lo is None or n > lo) and (hi is None or n < hi)]
        selected.sort(reverse=reverse)
        return self._read_many(namespace, selected, limit)

    def _read_many(self, namespace: str, hexes: list[str], limit: int | None) -> Iterator[Entry]:
        produced = 0
        for hexed in hexes:
            if limit is not None and produced >= limit:
                return
            key_bytes = bytes.fromhex(hexed)
            found = self._read(namespace, key_bytes)
            if found is None:
                continue
            try:
                key = key_bytes.decode("utf-8")
            except UnicodeDecodeError:
                raise CorruptionError(f"a key file name in {namespace!r} is not UTF-8 hex") from None
            produced += 1
            yield Entry(key, found[0], found[1])

    def _collect(self, directory: Path, acc: str, prefix_hex: str, out: list[str]) -> None:
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return
        for entry in entries:
            name = entry.name
            seg, kind = name[:-2], name[-2:]
            full = acc + seg
            if kind == ".d":
                if full.startswith(prefix_hex) or prefix_hex.startswith(full):
                    self._collect(Path(entry.path), full, prefix_hex, out)
            elif kind == ".v" and full.startswith(prefix_hex):
                out.append(full)

    def put(
        self,
        namespace: str,
        key: str,
        value: bytes,
        *,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> int:
        """Write ``value`` atomically under the lock and return the new version; ConflictError
        (nothing written) on a lost condition. Durable on return in ``durable`` mode."""
        check_put(namespace, key, value, if_absent, if_version, self._max_value_size)
        with self._locked():
            return self._put(namespace, key, bytes(value), if_absent, if_version)

    def _version_checked(self, namespace: str, key: str, if_absent: bool, if_version: int | None) -> int:
        found = self._read(namespace, key.encode("utf-8"))
        version = 0 if found is None else found[1]
        if if_absent and found is not None:
            raise ConflictError(f"key {key!r:.200} already exists in {namespace!r}")
        if if_version is not None and version != if_version:
            raise ConflictError(
                f"key {key!r:.200} in {namespace!r} is at version {version}, not {if_version}"
            )
        return version

    def _put(self, namespace: str, key: str, value: bytes, if_absent: bool, if_version: int | None) -> int:
        version = self._version_checked(namespace, key, if_absent, if_version) + 1
        self._write(namespace, key, value, version)
        return version

    def _write(self, namespace: str, key: str, value: bytes, version: int) -> None:
        key_bytes = key.encode("utf-8")
        path = self._key_path(namespace, key_bytes)
        try:
            created = self._make_dirs(path.parent)
            self._write_file(path, _encode_record(namespace, key_bytes, version, value), path.parent)
            if created is not None and self._durability is Durability.DURABLE:
                self._fsync_dir(created.parent)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc}") from exc

    def _make_dirs(self, directory: Path) -> Path | None:
        """Create ``directory`` and missing parents; return the topmost one created, if any."""
        if directory.is_dir():
            return None
        top = directory
        while not top.parent.is_dir():
            top = top.parent
        directory.mkdir(parents=True, exist_ok=True)
        if self._durability is Durability.DURABLE:
            d = directory
            while d != top:
                self._fsync_dir(d.parent)
                d = d.parent
        return top

    def delete(self, namespace: str, key: str, *, if_version: int | None = None) -> bool:
        """Remove ``key`` under the lock; False if absent, ConflictError if ``if_version`` no
        longer matches."""
        check_key_op(namespace, key, if_version)
        with self._locked():
            return self._delete(namespace, key, if_version)

    def _delete(self, namespace: str, key: str, if_version: int | None) -> bool:
        self._version_checked(namespace, key, False, if_version)
        path = self._key_path(namespace, key.encode("utf-8"))
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StorageError(f"cannot delete {path}: {exc}") from exc
        if self._durability is Durability.DURABLE:
            self._fsync_dir(path.parent)
        return True

    def batch(self, ops: Sequence[Put | Delete]) -> list[int | bool]:
        """Apply ``ops`` in order under the lock. Every condition is checked (against the state
        as each op will find it) before anything is written, so a lost condition writes nothing;
        a crash part-way may leave a prefix of the ops applied (``atomic_batch`` is false)."""
        check_batch(ops, self._max_value_size)
        with self._locked():
            state: dict[tuple[str, str], int] = {}
            for op in ops:
                slot = (op.namespace, op.key)
                if slot not in state:
                    found = self._read(op.namespace, op.key.encode("utf-8"))
                    state[slot] = 0 if found is None else found[1]
                version = state[slot]
                if isinstance(op, Put):
                    if op.if_absent and version:
                        raise ConflictError(f"key {op.key!r:.200} already exists in {op.namespace!r}")
                    if op.if_version is not None and version != op.if_version:
                        raise ConflictError(
                            f"key {op.key!r:.200} in {op.namespace!r} is at version {version}, not {op.if_version}"
                        )
                    state[slot] = version + 1
                else:
                    if op.if_version is not None and version != op.if_version:
                        raise ConflictError(
                            f"key {op.key!r:.200} in {op.namespace!r} is at version {version}, not {op.if_version}"
                        )
                    state[slot] = 0
            results: list[int | bool] = []
            for op in ops:
                if isinstance(op, Put):
                    results.append(self._put(op.namespace, op.key, bytes(op.value), False, None))
                else:
                    results.append(self._delete(op.namespace, op.key, None))
            return results

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

    # lifecycle -----------------------------------------------------------------------------------
    def close(self) -> None:
        return None

    def destroy(self) -> None:
        """Delete the whole store directory (only if it is marked as a Keepup store)."""
        if (self._root / _MARKER).exists():
            shutil.rmtree(self._root)


def _read_chunks(handle: Any, chunk_size: int) -> Iterator[bytes]:
    with handle:
        while True:
            chunk = handle.read(chunk_size)
            if not chunk:
                return
            yield chunk
