"""The SQLite driver, Keepup's default store (``sqlite:////abs/path/keepup.db``).

Guarantees:

* **Durability**: WAL journal. ``durable`` (the default) runs with ``synchronous=FULL``: a write
  is fsynced before it is acknowledged. ``relaxed`` runs with ``synchronous=NORMAL``: commits are
  fsynced at checkpoints, so a power loss may lose the newest writes but never corrupts the file.
* **Atomicity**: every put and delete, conditions included, is one SQL statement; a batch is one
  ``BEGIN IMMEDIATE`` transaction (``atomic_batch`` is true).
* **Concurrency**: any number of threads (one connection per thread) and processes; writers are
  serialised by SQLite's lock and wait up to ``busy_timeout`` seconds (default 30) for it.
* **Order**: keys are stored as their UTF-8 bytes in a BLOB column, so SQLite's memcmp order is the
  contract's byte order.
* **Integrity**: each row carries a checksum of its namespace, key, version and value (XXH3-128;
  rows written before schema version 3 keep their BLAKE2b-64), checked on every read (a damaged
  row raises CorruptionError). It detects accidents; authenticity needs a keyring. Blobs are stored in 1 MiB chunk
  rows, written and read in bounded memory, and verified against their digest as they are read.
* **Schema**: migrated forward on open (table ``keepup_migrations``); ``read_only=1`` refuses a
  store that needs a migration instead of migrating it.

URL: SQLAlchemy's convention, exactly: ``sqlite:///rel/path.db`` is relative to the working
directory, ``sqlite:////abs/path.db`` is absolute (three slashes, then the path); build one from a
path with :func:`sqlite_url`. ``sqlite://host/…`` (a host part) is refused. Query options: ``busy_timeout`` (seconds), ``read_only``
(``1``/``true``), ``max_value_size`` (bytes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from runtime_core import (
    Durability,
    ValidationError,
)

from runtime_persistence.storage.drivers._sqlite_blobs import _SqliteBlobs
from runtime_persistence.storage.drivers._sqlite_connections import MIGRATIONS
from runtime_persistence.storage.drivers._sqlite_entries import _SqliteEntries

__all__ = ["MIGRATIONS", "SqliteDriver", "sqlite_url"]


def sqlite_url(path: str | Path) -> str:
    """The ``sqlite://`` URL of ``path``: ``sqlite:////abs.db`` for an absolute path,
    ``sqlite:///rel.db`` for a relative one (SQLAlchemy's convention); ``%``, ``?`` and ``#`` in
    the path are percent-encoded, so every path round-trips."""
    return "sqlite:///" + quote(Path(path).as_posix(), safe="/")


def _path_from_url(url: str) -> tuple[Path, dict[str, str]]:
    if not url.lower().startswith("sqlite://"):
        raise ValidationError(f"not a sqlite:// URL: {url!r:.200}")
    parts = urlsplit(url)
    rest = url[len("sqlite://") :].split("?", 1)[0].split("#", 1)[0]
    if not rest.startswith("/"):
        raise ValidationError(
            "a sqlite URL is sqlite:///relative/path.db or sqlite:////absolute/path.db "
            f"(three slashes, then the path); got {url!r:.200}"
        )
    raw = unquote(rest[1:])
    if not raw or raw == "/":
        raise ValidationError(
            f"a sqlite URL names a file: sqlite:////absolute/path/keepup.db; got {url!r:.200}"
        )
    return Path(raw), dict(parse_qsl(parts.query))


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class SqliteDriver(_SqliteEntries, _SqliteBlobs):
    """An ordered key-value store and blob area in one SQLite file."""

    @classmethod
    def from_url(
        cls, url: str, *, durability: Durability = Durability.DURABLE, **options: Any
    ) -> SqliteDriver:
        """Open (creating it if needed) the store at ``sqlite:///relative.db`` or ``sqlite:////absolute.db``."""
        path, query = _path_from_url(url)
        merged: dict[str, Any] = {**query, **options}
        kwargs: dict[str, Any] = {}
        if "busy_timeout" in merged:
            kwargs["busy_timeout"] = float(merged.pop("busy_timeout"))
        if "read_only" in merged:
            kwargs["read_only"] = _flag(merged.pop("read_only"))
        if "max_value_size" in merged:
            kwargs["max_value_size"] = int(merged.pop("max_value_size"))
        if "durability" in merged:
            durability = Durability(merged.pop("durability"))
        if merged:
            raise ValidationError(f"unknown sqlite store options: {', '.join(sorted(merged))}")
        return cls(path, durability=durability, url=url.split("#", 1)[0], **kwargs)
