"""Backups of SQLite stores: taken with SQLite's online backup API (a consistent copy while other
processes keep writing), verified, kept N deep, and restored; the code lives beside the SQLite
driver (``drivers/_sqlite_backup.py``), which takes a backup before every migration of a store
with data and names the newest verified backup when it finds the store damaged."""

from runtime_persistence.storage.drivers._sqlite_backup import (
    BACKUP_DIR,
    BackupInfo,
    VerifyReport,
    backup_before_migration,
    backup_sqlite,
    damaged_hint,
    list_backups,
    newest_verified_backup,
    restore_sqlite_backup,
    sqlite_path_of,
    verify_sqlite,
)

__all__ = [
    "BACKUP_DIR",
    "BackupInfo",
    "VerifyReport",
    "backup_before_migration",
    "backup_sqlite",
    "damaged_hint",
    "list_backups",
    "newest_verified_backup",
    "restore_sqlite_backup",
    "sqlite_path_of",
    "verify_sqlite",
]
