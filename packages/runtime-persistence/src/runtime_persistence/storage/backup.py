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
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

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
    ENTRIES_BYTES,
    ENTRIES_COUNT,
    FORMAT,
    PIECE,
    BackupDamagedError,
    FrameWriter,
    read_frames,
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

BACKUP_SUFFIX = ".kbak"
RESTORE_NS = "keepup.restore"  # holds ``in-progress`` while a restore runs; never backed up
_IN_PROGRESS = "in-progress"
_VERIFIED = ".verified"
_BATCH_OPS = 256
_BATCH_BYTES = 4 << 20


@runtime_checkable
class _Listing(Protocol):
    def namespaces(self) -> Iterator[str]: ...


@runtime_checkable
class _Snapshotting(Protocol):
    def read_snapshot(self) -> contextlib.AbstractContextManager[Any]: ...


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


def store_label(url: str) -> str:
    """The file-name stem of a store's backups: its scheme and 12 hex digits of its URL (password
    and ``read_only`` removed), so the backups of different stores in one folder never mix."""
    clean = redact_url(url)
    head, sep, query = clean.partition("?")
    if sep:  # how a store is opened (read-only) does not make it another store
        kept = "&".join(p for p in query.split("&") if p.split("=", 1)[0] != "read_only")
        clean = head + ("?" + kept if kept else "")
    scheme = clean.split("://", 1)[0].split("+", 1)[0].lower() or "store"
    return f"{scheme}-{hashlib.sha256(clean.encode()).hexdigest()[:12]}"


def _listing(driver: Any) -> Callable[[], Iterator[str]]:
    if not isinstance(driver, _Listing):
        raise ValidationError(
            f"{type(driver).__name__} cannot list its namespaces, so it cannot be backed up whole "
            "(a MongoDB store: use mongodump)"
        )
    return driver.namespaces


def _stream(driver: Driver, source_url: str, out: IO[bytes], *, snapshot: bool) -> dict[str, int]:
    """Write every namespace, entry and blob of ``driver`` to ``out``; the counts written."""
    writer = FrameWriter(out)
    writer.frame(
        b"H",
        {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(),
            "source": redact_url(source_url),
            "driver": type(driver).__name__,
            "snapshot": snapshot,
        },
    )
    counts = {"namespaces": 0, "entries": 0, "blobs": 0, "blob_bytes": 0}
    for namespace in sorted(_listing(driver)(), key=str.encode):
        if namespace == RESTORE_NS:
            continue
        started = False
        batch: list[list[Any]] = []
        size = 0
        for entry in driver.scan(namespace):
            if not started:
                writer.frame(b"N", namespace)
                counts["namespaces"] += 1
                started = True
            if batch and (size + len(entry.value) > ENTRIES_BYTES or len(batch) >= ENTRIES_COUNT):
                writer.frame(b"E", batch)
                batch, size = [], 0
            batch.append([entry.key, entry.version, entry.value])
            size += len(entry.value)
            counts["entries"] += 1
        if batch:
            writer.frame(b"E", batch)
    for info in driver.list_blobs():  # blobs after every entry: see the module docstring
        pieces = driver.open_blob(info.digest, PIECE)
        try:
            first = next(pieces, None)
        except NotFoundError:
            continue  # collected since it was listed: no record names it any more
        writer.frame(b"B", [info.digest, info.size])
        got = 0
        for piece in [first] if first is not None else []:
            writer.frame(b"C", piece)
            got += len(piece)
        for piece in pieces:
            writer.frame(b"C", piece)
            got += len(piece)
        if got != info.size:
            raise CorruptionError(f"blob {info.digest} holds {got} bytes; the store lists {info.size}")
        counts["blobs"] += 1
        counts["blob_bytes"] += got
    writer.trailer(counts)
    return counts


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _private(path: Path) -> None:
    with contextlib.suppress(OSError):  # best effort: a filesystem without modes
        path.chmod(0o600)


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
    # Only a snapshot the driver's own class offers: a composite that forwards unknown attributes
    # to its records driver (records on PostgreSQL, blobs on S3) would hand over a view of the
    # records driver alone, and its blobs would be missing from the backup.
    if isinstance(driver, _Snapshotting) and getattr(type(driver), "read_snapshot", None) is not None:
        with driver.read_snapshot() as view:
            yield view, True
        return
    yield driver, False


def write_backup(driver: Driver, dest: str | os.PathLike[str]) -> dict[str, int]:
    """Write a portable backup of ``driver`` to the file ``dest`` (through a temporary name,
    fsynced, private, renamed into place: a failed backup leaves no file). Returns the counts
    written (``namespaces``, ``entries``, ``blobs``, ``blob_bytes``) and ``snapshot`` (1 when
    the store was read at one moment). Raises ValidationError for a store that cannot list its
    namespaces."""
    target = Path(dest)
    _listing(driver)
    for folder in reversed([p for p in (target.parent, *target.parent.parents) if not p.exists()]):
        folder.mkdir(mode=0o700, exist_ok=True)  # every folder made here is private, not just the last
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as out, _consistent(driver) as (source, snapshot):
            _private(tmp)
            counts = _stream(source, driver.url, out, snapshot=snapshot)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return {**counts, "snapshot": int(snapshot)}


def verify_backup(
    path: str | os.PathLike[str], *, serializer: EnvelopeSerializer | None = None
) -> VerifyReport:
    """Read the whole portable backup at ``path`` and check everything: every frame's checksum,
    the order of its parts, every blob's digest, the trailer's counts and digest, and every
    record envelope's checksum at its place (records encrypted under a key the serializer lacks
    are checked by their frame only). Damage is reported in ``problems``; never raises for it.
    NotFoundError when there is no file."""
    return _verify(Path(path), serializer)[0]


def _verify(source: Path, serializer: EnvelopeSerializer | None) -> tuple[VerifyReport, int]:
    """:func:`verify_backup`'s report, and the size of the largest value in the backup."""
    if not source.is_file():
        raise NotFoundError(f"no backup at {source}")
    ser = serializer or EnvelopeSerializer()
    problems: dict[str, str] = {}
    records = envelopes = blobs = largest = 0
    namespace = ""
    try:
        with open(source, "rb") as fh:
            for frame in read_frames(fh, str(source)):
                if frame.kind == "N":
                    namespace = frame.value
                elif frame.kind == "E":
                    for key, _version, value in frame.value:
                        records += 1
                        largest = max(largest, len(value))
                        if value[:2] == _ENVELOPE:
                            envelopes += 1
                            wrong = check_record(ser, namespace, key, value)
                            if wrong is not None:
                                problems[f"{namespace}/{key}"] = wrong
                elif frame.kind == "B":
                    blobs += 1
    except CorruptionError as exc:
        problems["file"] = str(exc)
    except OSError as exc:
        problems["file"] = f"cannot read it: {exc.strerror or exc}"
    return VerifyReport(str(source), records, envelopes, blobs, problems), largest


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


def _record_verified(backup: Path, report: VerifyReport) -> None:
    side = backup.with_name(backup.name + _VERIFIED)
    side.write_text(
        json.dumps(
            {
                "verified_at": datetime.now(UTC).isoformat(),
                "ok": report.ok,
                "records": report.records,
                "blobs": report.blobs,
                "problems": report.problems,
            }
        )
    )
    _private(side)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def list_store_backups(url: str, folder: str | os.PathLike[str]) -> list[BackupInfo]:
    """The portable backups of the store at ``url`` in ``folder``, newest first, each with its
    recorded verification (None when there is none)."""
    where = Path(folder)
    if not where.is_dir():
        return []
    out: list[BackupInfo] = []
    for path in where.glob(f"{store_label(url)}-*{BACKUP_SUFFIX}"):
        verified: VerifyReport | None = None
        side = path.with_name(path.name + _VERIFIED)
        if side.is_file():
            try:
                data = json.loads(side.read_text())
                verified = VerifyReport(
                    str(path), int(data["records"]), 0, int(data["blobs"]), dict(data.get("problems") or {})
                )
            except (ValueError, KeyError, TypeError):
                verified = None
        stat = path.stat()
        out.append(BackupInfo(str(path), datetime.fromtimestamp(stat.st_mtime, UTC), stat.st_size, verified))
    out.sort(key=lambda b: b.path, reverse=True)  # the names sort by their UTC time
    return out


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
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise ValidationError(f"keep must be a positive integer, got {keep!r:.20}")
    where = Path(dest) if dest is not None else Path(folder)
    name = f"{store_label(driver.url)}-{_stamp()}{BACKUP_SUFFIX}"
    target = where / name if dest is None or where.is_dir() else where
    write_backup(driver, target)
    report = verify_backup(target)
    if not report.ok:
        bad = "; ".join(f"{k}: {v}" for k, v in list(report.problems.items())[:3])
        target.unlink(missing_ok=True)
        raise CorruptionError(
            f"the backup of {redact_url(driver.url)} failed verification ({bad}); the store itself may be damaged"
        )
    _record_verified(target, report)
    removed: list[str] = []
    if keep is not None:
        for old in list_store_backups(driver.url, target.parent)[keep:]:
            Path(old.path).unlink(missing_ok=True)
            Path(old.path + _VERIFIED).unlink(missing_ok=True)
            removed.append(old.path)
    return BackupInfo(str(target), datetime.now(UTC), target.stat().st_size, report, tuple(removed))


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
