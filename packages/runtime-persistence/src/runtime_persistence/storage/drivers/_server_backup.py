"""The backup a PostgreSQL or MySQL store takes before it migrates a schema that holds data (the
SQLite twin is :func:`~runtime_persistence.storage.drivers._sqlite_backup.backup_before_migration`).

The driver calls :func:`backup_before_migration` from inside its migration, while it holds the
migration lock (so of several processes opening an old store at once, only the one that migrates
takes a backup; the others find nothing pending). The backup is a verified portable ``.kbak``
(:func:`~runtime_persistence.storage.backup.backup_store`, in ``_portable_backup.py``) in ``backups/`` under the Keepup home
(``$KEEPUP_HOME``, else the user's state directory): the folder ``keepup store backup`` uses for
server stores. It reads the store through a read-only instance of the driver opened at the old
schema, in one read-only snapshot. When it cannot be written, nothing is migrated (StorageError)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import platformdirs
from runtime_core import KeepupError, StorageError

from runtime_persistence.storage.drivers._portable_backup import backup_store
from runtime_persistence.storage.drivers._sqlite_backup import BACKUP_DIR
from runtime_persistence.storage.stores import redact_url

__all__ = ["BLOB_SCHEMA", "backup_before_migration", "migration_backup_folder"]

HOME_ENV = "KEEPUP_HOME"
BLOB_SCHEMA = 2  # the schema version that added the blob tables (PostgreSQL and MySQL alike)


def migration_backup_folder() -> Path:
    """Where server stores put the backup taken before a migration: ``backups/`` in the Keepup
    home (``$KEEPUP_HOME``, else the user's state directory), as ``keepup store backup`` does."""
    env = os.environ.get(HOME_ENV)
    home = Path(env).expanduser() if env else Path(platformdirs.user_state_dir("keepup"))
    return home.resolve() / BACKUP_DIR


def _no_blobs() -> Iterator[Any]:
    return iter(())


def backup_before_migration(open_reader: Callable[[], Any], url: str, current: int) -> Path:
    """Take a verified portable backup of the store at ``url`` (schema version ``current``)
    through the blocking read-only driver ``open_reader()`` returns, and return its path. Raises
    StorageError saying why and what to do when it cannot be written."""
    folder = migration_backup_folder()
    try:
        reader = open_reader()
        try:
            if current < BLOB_SCHEMA:  # the blob tables do not exist yet: nothing to list
                reader.list_blobs = _no_blobs
            return Path(backup_store(reader, folder).path)
        finally:
            reader.close()
    except (OSError, KeepupError) as exc:
        why = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
        raise StorageError(
            f"the store {redact_url(url)} needs a schema migration, and the backup taken before it could "
            f"not be written to {folder}: {why}; nothing was migrated (free space or fix the folder's "
            f"permissions, or point {HOME_ENV} at a folder you can write, then open the store again)"
        ) from exc
