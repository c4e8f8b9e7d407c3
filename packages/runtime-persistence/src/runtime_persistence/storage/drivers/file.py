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

from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from runtime_core import (
    Durability,
    ValidationError,
)

from runtime_persistence.storage.drivers._file_blobs import _FileBlobs
from runtime_persistence.storage.drivers._file_directory import FORMAT
from runtime_persistence.storage.drivers._file_entries import _FileEntries
from runtime_persistence.storage.drivers._file_lock import LockInfo

__all__ = ["FORMAT", "FileDriver", "LockInfo"]


class FileDriver(_FileEntries, _FileBlobs):
    """An ordered key-value store and blob area in a directory tree."""

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
