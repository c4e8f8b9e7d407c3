"""The in-memory driver: the reference implementation of the driver contract (``memory://``).

Nothing survives the process. Every operation, batches included, is atomic under one lock.
Blobs are kept as given and re-verified on read like every other driver's."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from runtime_core import (
    BlobInfo,
    ConflictError,
    Delete,
    Durability,
    Entry,
    NotFoundError,
    Put,
    utc_now,
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
    prefix_upper_bound,
    split,
    verified_chunks,
)

__all__ = ["MemoryDriver"]


class _Namespace:
    __slots__ = ("keys", "values")

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.values: dict[str, tuple[bytes, int]] = {}


class MemoryDriver:
    """An ordered key-value store and blob area held in this process's memory."""

    def __init__(self, url: str = "memory://", *, max_value_size: int = 64 << 20) -> None:
        self._url = url
        self._max_value_size = max_value_size
        self._lock = threading.RLock()
        self._ns: dict[str, _Namespace] = {}
        self._blobs: dict[str, tuple[bytes, BlobInfo]] = {}

    @classmethod
    def from_url(
        cls, url: str, *, durability: Durability = Durability.DURABLE, **options: Any
    ) -> MemoryDriver:
        """``memory://`` (an optional name after the slashes is only a label)."""
        return cls(url, **options)

    @property
    def url(self) -> str:
        return self._url

    @property
    def atomic_batch(self) -> bool:
        return True

    @property
    def max_value_size(self) -> int:
        return self._max_value_size

    # key-value -------------------------------------------------------------------------------
    def get(self, namespace: str, key: str) -> Entry | None:
        check_key_op(namespace, key)
        with self._lock:
            ns = self._ns.get(namespace)
            found = ns.values.get(key) if ns else None
            return Entry(key, found[0], found[1]) if found else None

    def namespaces(self) -> Iterator[str]:
        """The namespaces that hold keys, in byte order (for backups)."""
        with self._lock:
            return iter(sorted(name for name, ns in self._ns.items() if ns.keys))

    @contextmanager
    def read_snapshot(self) -> Iterator[MemoryDriver]:
        """A read-only copy of the store as it is now (for a consistent backup): its lists and
        dicts are copied under the lock; the stored bytes are shared, never copied."""
        copy = MemoryDriver(self._url, max_value_size=self._max_value_size)
        with self._lock:
            for name, ns in self._ns.items():
                held = _Namespace()
                held.keys = list(ns.keys)
                held.values = dict(ns.values)
                copy._ns[name] = held
            copy._blobs = dict(self._blobs)
        yield copy

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
        check_scan(namespace, prefix, after, before, limit)
        with self._lock:
            ns = self._ns.get(namespace)
            if ns is None or limit == 0:
                return iter(())
            keys = ns.keys
            lo = bisect.bisect_left(keys, prefix)
            if after is not None:
                lo = max(lo, bisect.bisect_right(keys, after))
            upper = prefix_upper_bound(prefix)
            hi = bisect.bisect_left(keys, upper) if upper is not None else len(keys)
            if before is not None:
                hi = min(hi, bisect.bisect_left(keys, before))
            selected = keys[lo:hi] if lo < hi else []
            if reverse:
                selected.reverse()
            if limit is not None:
                selected = selected[:limit]
            return iter([Entry(k, *ns.values[k]) for k in selected])

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
        with self._lock:
            return self._put(namespace, key, bytes(value), if_absent, if_version)

    def _check_condition(self, namespace: str, key: str, if_absent: bool, if_version: int | None) -> int:
        ns = self._ns.get(namespace)
        current = ns.values.get(key) if ns else None
        version = current[1] if current else 0
        if if_absent and current is not None:
            raise ConflictError(f"key {key!r} already exists in {namespace!r}")
        if if_version is not None and version != if_version:
            raise ConflictError(f"key {key!r} in {namespace!r} is at version {version}, not {if_version}")
        return version

    def _put(self, namespace: str, key: str, value: bytes, if_absent: bool, if_version: int | None) -> int:
        version = self._check_condition(namespace, key, if_absent, if_version) + 1
        ns = self._ns.setdefault(namespace, _Namespace())
        if key not in ns.values:
            bisect.insort(ns.keys, key)
        ns.values[key] = (value, version)
        return version

    def delete(self, namespace: str, key: str, *, if_version: int | None = None) -> bool:
        check_key_op(namespace, key, if_version)
        with self._lock:
            return self._delete(namespace, key, if_version)

    def _delete(self, namespace: str, key: str, if_version: int | None) -> bool:
        self._check_condition(namespace, key, False, if_version)
        ns = self._ns.get(namespace)
        if ns is None or key not in ns.values:
            return False
        del ns.values[key]
        ns.keys.pop(bisect.bisect_left(ns.keys, key))
        return True

    def batch(self, ops: Sequence[Put | Delete]) -> list[int | bool]:
        check_batch(ops, self._max_value_size)
        with self._lock:
            # check every condition against the state as it will be when the op runs
            snapshot = {
                (op.namespace, op.key): self._ns[op.namespace].values.get(op.key)
                if op.namespace in self._ns
                else None
                for op in ops
            }
            try:
                results: list[int | bool] = []
                for op in ops:
                    if isinstance(op, Put):
                        results.append(
                            self._put(op.namespace, op.key, bytes(op.value), op.if_absent, op.if_version)
                        )
                    else:
                        results.append(self._delete(op.namespace, op.key, op.if_version))
                return results
            except BaseException:
                for (namespace, key), before in snapshot.items():
                    ns = self._ns.setdefault(namespace, _Namespace())
                    if before is None:
                        if key in ns.values:
                            del ns.values[key]
                            ns.keys.pop(bisect.bisect_left(ns.keys, key))
                    else:
                        if key not in ns.values:
                            bisect.insort(ns.keys, key)
                        ns.values[key] = before
                raise

    # blobs -----------------------------------------------------------------------------------
    def put_blob(self, data: bytes, digest: str | None = None) -> BlobInfo:
        data = bytes(data)
        actual = check_digest_of(data, digest)
        with self._lock:
            existing = self._blobs.get(actual)
            if existing is not None:
                return existing[1]
            info = BlobInfo(actual, len(data), utc_now())
            self._blobs[actual] = (data, info)
            return info

    def put_blob_stream(self, chunks: Iterable[bytes]) -> BlobInfo:
        return self.put_blob(b"".join(chunks))

    def get_blob(self, digest: str) -> bytes:
        return b"".join(self.open_blob(digest))

    def open_blob(self, digest: str, chunk_size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
        validate_digest(digest)
        check_chunk_size(chunk_size)
        with self._lock:
            found = self._blobs.get(digest)
        if found is None:
            raise NotFoundError(f"blob {digest} not found")
        return verified_chunks(split(found[0], chunk_size), digest)

    def has_blob(self, digest: str) -> bool:
        validate_digest(digest)
        with self._lock:
            return digest in self._blobs

    def delete_blob(self, digest: str) -> bool:
        validate_digest(digest)
        with self._lock:
            return self._blobs.pop(digest, None) is not None

    def list_blobs(self) -> Iterator[BlobInfo]:
        with self._lock:
            return iter([info for _, info in self._blobs.values()])

    def close(self) -> None:
        return None

    # test hook: lets the corruption tests damage stored bytes the way a disk would
    def _raw_blob(self, digest: str) -> bytes:
        return self._blobs[digest][0]

    def _set_raw_blob(self, digest: str, data: bytes) -> None:
        self._blobs[digest] = (data, self._blobs[digest][1])
