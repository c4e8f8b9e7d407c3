"""The key-value part of the plain-files driver (see :mod:`runtime_persistence.storage.drivers.file`):
one checksummed record file per key under ``kv/<namespace>/``, written under the writers' lock."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from runtime_core import (
    ConflictError,
    CorruptionError,
    Delete,
    Durability,
    Entry,
    Put,
    StorageError,
)

from runtime_persistence.storage.drivers._common import (
    check_batch,
    check_key_op,
    check_put,
    check_scan,
)
from runtime_persistence.storage.drivers._file_lock import _FileLock

_MAGIC = b"KUF\x01"
_HEAD = 4 + 8 + 8
_SUM = 16
_SEGMENT = 240  # hex characters per path segment (file names stay under 255 bytes)


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


class _FileEntries(_FileLock):
    """The ordered key-value store of one file store."""

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

    def namespaces(self) -> Iterator[str]:
        """The namespaces that hold (or held) keys, in byte order; for backups. Takes no lock."""
        try:
            names = sorted(p.name for p in self._kv.iterdir() if p.is_dir() and not p.is_symlink())
        except FileNotFoundError:
            names = []
        except OSError as exc:
            raise StorageError(f"cannot list {self._kv}: {exc}") from exc
        return iter(names)

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
