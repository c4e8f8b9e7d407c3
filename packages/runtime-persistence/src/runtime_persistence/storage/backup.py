"""Backups of every kind of store.

* **Portable backups** (this module; the file format is in ``_backup_stream.py``): every
  namespace, entry and blob of any store (SQLite, PostgreSQL, MySQL, Redis, files, memory) in one
  checksummed ``.kbak`` file, streamed in bounded memory, that restores into an empty store of any
  kind. :func:`backup_store` takes one (verified, recorded, kept N deep), :func:`verify_backup`
  checks every checksum of a file, :func:`restore_store` restores one into a store, and
  :func:`restore_newest` restores the newest backup that verifies, falling back to the previous
  good one (and saying which it skipped and why) when the newest is damaged.
* **SQLite backups** (``drivers/_sqlite_backup.py``, re-exported here): SQLite's online backup
  API, a ``.db`` copy; the SQLite driver takes one before every migration of a store with data
  and names the newest verified one when it finds the store damaged.

Consistency: PostgreSQL and MySQL are read inside one read-only REPEATABLE READ transaction, a
memory store from a copy taken under its lock, and a SQLite store from an online-backup copy, so
the backup is the store at one moment while others keep writing. Redis and file stores have no
read snapshot: each entry is read whole, and blobs are read after every entry (writers store a
blob before the record that names it, so every record's blobs are in the backup), but a backup
taken while others write may hold entries from slightly different moments; the header says
``snapshot: false``. Stop the writers for a point-in-time copy of those."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from runtime_core import (
    ConflictError,
    CorruptionError,
    Driver,
    NotFoundError,
    Put,
    StorageError,
    ValidationError,
)

from runtime_persistence.storage._backup_stream import (
    BACKUP_MAGIC,
    BackupDamagedError,
    read_frames,
)
from runtime_persistence.storage.drivers._portable_backup import (
    BACKUP_SUFFIX,
    RESTORE_NS,
    _listing,
    _verify,
    list_store_backups,
    snapshot_of,
    store_label,
    verify_backup,
)
from runtime_persistence.storage.drivers._portable_backup import (
    backup_store as _backup_store,
)
from runtime_persistence.storage.drivers._portable_backup import (
    write_backup as _write_backup,
)
from runtime_persistence.storage.drivers._sqlite_backup import (
    BACKUP_DIR,
    BackupInfo,
    VerifyReport,
    backup_before_migration,
    backup_sqlite,
    check_record,
    damaged_hint,
    list_backups,
    newest_verified_backup,
    restore_sqlite_backup,
    sqlite_path_of,
    verify_sqlite,
)
from runtime_persistence.storage.serialization import MAGIC as _ENVELOPE
from runtime_persistence.storage.serialization import EnvelopeSerializer
from runtime_persistence.storage.stores import redact_url

__all__ = [
    "BACKUP_DIR",
    "BACKUP_MAGIC",
    "BACKUP_SUFFIX",
    "RESTORE_NS",
    "BackupDamagedError",
    "BackupInfo",
    "RestoreReport",
    "VerifyReport",
    "backup_before_migration",
    "backup_sqlite",
    "backup_store",
    "damaged_hint",
    "is_portable_backup",
    "list_backups",
    "list_store_backups",
    "newest_verified_backup",
    "restore_newest",
    "restore_sqlite_backup",
    "restore_store",
    "sqlite_path_of",
    "store_label",
    "verify_backup",
    "verify_sqlite",
    "verify_store",
    "write_backup",
]

_IN_PROGRESS = "in-progress"
_BATCH_OPS = 256
_BATCH_BYTES = 4 << 20


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What :func:`restore_store` wrote: from which file, into which store, how much, and the
    backups :func:`restore_newest` skipped on the way (path -> why)."""

    backup: str
    store: str
    namespaces: int
    entries: int
    blobs: int
    resumed: bool = False
    skipped: dict[str, str] = field(default_factory=dict)


def is_portable_backup(path: str | os.PathLike[str]) -> bool:
    """Whether the file at ``path`` starts like a portable backup (not whether it is intact)."""
    with open(path, "rb") as fh:
        return fh.read(len(BACKUP_MAGIC)) == BACKUP_MAGIC


def verify_store(driver: Driver, *, serializer: EnvelopeSerializer | None = None) -> VerifyReport:
    """Read every entry and blob of a live store of any kind and check every checksum the store
    keeps: each record envelope's, bound to its place, and each blob's digest (read to its end;
    the driver checks it as the stream ends). The drivers check their own row or file checksums
    as they read. Damage is reported in ``problems``; never raises for it."""
    ser = serializer or EnvelopeSerializer()
    problems: dict[str, str] = {}
    records = envelopes = blobs = 0
    try:
        for namespace in _listing(driver)():
            try:
                for entry in driver.scan(namespace):
                    records += 1
                    if entry.value[:2] == _ENVELOPE:
                        envelopes += 1
                        wrong = check_record(ser, namespace, entry.key, entry.value)
                        if wrong is not None:
                            problems[f"{namespace}/{entry.key}"] = wrong
            except CorruptionError as exc:  # a row or file failed the driver's own checksum
                problems[f"namespace {namespace}"] = str(exc)
        for info in driver.list_blobs():
            blobs += 1
            try:
                for _ in driver.open_blob(info.digest):
                    pass
            except NotFoundError:
                blobs -= 1  # collected since it was listed
            except CorruptionError as exc:
                problems[f"blob {info.digest}"] = str(exc)
    except StorageError as exc:
        problems["store"] = str(exc)
    return VerifyReport(redact_url(driver.url), records, envelopes, blobs, problems)


@contextlib.contextmanager
def _consistent(driver: Driver) -> Iterator[tuple[Driver, bool]]:
    """The driver to read a backup from and whether it is a snapshot (see the module docstring)."""
    path = sqlite_path_of(driver.url)
    if path is not None and path.is_file():
        from runtime_persistence.storage.drivers._sqlite_backup import copy_sqlite
        from runtime_persistence.storage.drivers.sqlite import SqliteDriver

        with tempfile.TemporaryDirectory(prefix=".keepup-backup-", dir=path.parent) as tmp:
            copy = Path(tmp) / "snapshot.db"
            copy_sqlite(path, copy)
            frozen = SqliteDriver(copy, read_only=True)
            try:
                yield frozen, True
            finally:
                frozen.close()
        return
    with snapshot_of(driver) as found:
        yield found


def write_backup(driver: Driver, dest: str | os.PathLike[str]) -> dict[str, int]:
    """Write a portable backup of ``driver`` to the file ``dest`` (through a temporary name,
    fsynced, private, renamed into place: a failed backup leaves no file). Returns the counts
    written (``namespaces``, ``entries``, ``blobs``, ``blob_bytes``) and ``snapshot`` (1 when
    the store was read at one moment). Raises ValidationError for a store that cannot list its
    namespaces."""
    return _write_backup(driver, dest, consistent=_consistent)


def backup_store(
    driver: Driver,
    folder: str | os.PathLike[str],
    dest: str | os.PathLike[str] | None = None,
    *,
    keep: int | None = None,
) -> BackupInfo:
    """Take a portable backup of ``driver`` into ``dest`` (a file, or a folder to put it in;
    default ``folder``), verify it, record the verification beside it (``<file>.verified``) and
    with ``keep`` remove all but the newest ``keep`` backups of this store there. Raises
    CorruptionError (and keeps nothing) when the backup fails verification."""
    return _backup_store(driver, folder, dest, keep=keep, consistent=_consistent)


def _holds_data(driver: Driver) -> tuple[bool, bool]:
    """(whether the store holds anything besides a restore marker, whether it has that marker)."""
    marker = driver.get(RESTORE_NS, _IN_PROGRESS) is not None
    for namespace in _listing(driver)():
        if namespace != RESTORE_NS and next(iter(driver.scan(namespace, limit=1)), None) is not None:
            return True, marker
    return next(iter(driver.list_blobs()), None) is not None, marker


def restore_store(backup: str | os.PathLike[str], driver: Driver, *, force: bool = False) -> RestoreReport:
    """Restore the portable backup at ``backup`` into ``driver``.

    The whole file is verified first (CorruptionError, nothing written, when any check fails).
    The store must be empty (ConflictError otherwise) unless ``force``, when the backup's entries
    are written over the keys they name and every other key is kept. Blobs are written first, then
    the entries, in batches; a restore that stops half-way leaves ``keepup.restore/in-progress``
    behind, and a store holding that marker counts as empty, so running the restore again
    finishes it. Each entry is written anew (versions restart at 1; see ``_backup_stream``)."""
    source = Path(backup)
    report, largest = _verify(source, None)
    if not report.ok:
        bad = "; ".join(f"{k}: {v}" for k, v in list(report.problems.items())[:3])
        raise BackupDamagedError(f"the backup {source} failed verification ({bad}); nothing was written")
    if largest > driver.max_value_size:
        raise ValidationError(
            f"the backup {source} holds a value of {largest} bytes; {redact_url(driver.url)} takes at most "
            f"{driver.max_value_size} (raise its max_value_size option); nothing was written"
        )
    holds, resumed = _holds_data(driver)
    if holds and not resumed and not force:
        raise ConflictError(
            f"{redact_url(driver.url)} is not empty; restore into an empty store, or pass force=True "
            "(keepup store restore-backup --force) to write the backup over it"
        )
    driver.put(RESTORE_NS, _IN_PROGRESS, json.dumps({"backup": str(source)}).encode())
    counts = {"N": 0, "E": 0, "B": 0}
    with open(source, "rb") as fh:  # pass 1: blobs (each frame checked again as it is read)
        frames = _Lookahead(read_frames(fh, str(source)))
        for frame in frames:
            if frame.kind == "B":
                counts["B"] += 1
                driver.put_blob_stream(frames.pieces())
    with open(source, "rb") as fh:  # pass 2: entries
        namespace = ""
        ops: list[Put] = []
        size = 0
        for frame in read_frames(fh, str(source)):
            if frame.kind == "N":
                namespace = frame.value
                counts["N"] += 1
            elif frame.kind == "E":
                for key, _version, value in frame.value:
                    if ops and (len(ops) >= _BATCH_OPS or size + len(value) > _BATCH_BYTES):
                        driver.batch(ops)
                        ops, size = [], 0
                    ops.append(Put(namespace, key, value))
                    size += len(value)
                    counts["E"] += 1
        if ops:
            driver.batch(ops)
    driver.delete(RESTORE_NS, _IN_PROGRESS)
    return RestoreReport(str(source), redact_url(driver.url), counts["N"], counts["E"], counts["B"], resumed)


def restore_newest(
    candidates: Iterable[str | os.PathLike[str]], restore: Callable[[Path], RestoreReport]
) -> RestoreReport:
    """Restore the newest good backup: try ``restore`` on each of ``candidates`` (newest first)
    and return the first that succeeds, with the ones skipped (path -> why) in its report. Only a
    backup that fails verification (BackupDamagedError: nothing was written) is skipped; any
    other error, a damaged store's CorruptionError included, stops. NotFoundError when none is left. Never silent: the caller shows ``skipped``, and
    every backup lacks the writes made after it was taken."""
    skipped: dict[str, str] = {}
    for candidate in candidates:
        try:
            report = restore(Path(candidate))
        except BackupDamagedError as exc:  # nothing was written from it: try the one before
            skipped[str(candidate)] = str(exc)
            continue
        return replace(report, skipped=skipped)
    if skipped:
        listing = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        raise NotFoundError(f"no backup passed verification ({listing})")
    raise NotFoundError("there is no backup of this store to restore (take them with `keepup store backup`)")


class _Lookahead:
    """Frames with one frame of look-ahead, so the pieces of one blob can be handed to
    ``put_blob_stream`` as a stream that stops before the next blob's frame."""

    def __init__(self, frames: Iterator[Any]) -> None:
        self._frames = frames
        self._held: Any = None

    def __iter__(self) -> Iterator[Any]:
        while True:
            if self._held is not None:
                frame, self._held = self._held, None
            else:
                frame = next(self._frames, None)
                if frame is None:
                    return
            yield frame

    def pieces(self) -> Iterator[bytes]:
        """The C frames that follow, up to (not including) the next other frame."""
        for frame in self._frames:
            if frame.kind != "C":
                self._held = frame
                return
            yield frame.value
