"""Writing and checking portable backups (``.kbak``; the file format is in
``storage/_backup_stream.py``): :func:`write_backup`, :func:`verify_backup`, :func:`backup_store`
and :func:`list_store_backups`, re-exported by :mod:`runtime_persistence.storage.backup` (which
explains them and holds the restore side). They live among the drivers, as the SQLite backups do,
so a server driver can take a backup of its store before it migrates it
(``_server_backup.py``) without importing the storage package above it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from runtime_core import (
    CorruptionError,
    Driver,
    NotFoundError,
    ValidationError,
)

from runtime_persistence.storage._backup_stream import (
    ENTRIES_BYTES,
    ENTRIES_COUNT,
    FORMAT,
    PIECE,
    FrameWriter,
    read_frames,
)
from runtime_persistence.storage.drivers._sqlite_backup import (
    _VERIFIED,
    BackupInfo,
    VerifyReport,
    _private,
    _stamp,
    check_record,
)
from runtime_persistence.storage.drivers._sqlite_backup import _record as _record_verified
from runtime_persistence.storage.serialization import MAGIC as _ENVELOPE
from runtime_persistence.storage.serialization import EnvelopeSerializer
from runtime_persistence.storage.stores import redact_url

__all__ = [
    "BACKUP_SUFFIX",
    "RESTORE_NS",
    "backup_store",
    "list_store_backups",
    "store_label",
    "verify_backup",
    "write_backup",
]

BACKUP_SUFFIX = ".kbak"
RESTORE_NS = "keepup.restore"  # holds ``in-progress`` while a restore runs; never backed up


@runtime_checkable
class _Listing(Protocol):
    def namespaces(self) -> Iterator[str]: ...


@runtime_checkable
class _Snapshotting(Protocol):
    def read_snapshot(self) -> contextlib.AbstractContextManager[Any]: ...


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


Consistent = Callable[[Driver], contextlib.AbstractContextManager[tuple[Driver, bool]]]


@contextlib.contextmanager
def snapshot_of(driver: Driver) -> Iterator[tuple[Driver, bool]]:
    """The driver to read a backup from and whether it is a snapshot: a view at one moment when
    the driver's own class offers one (see :mod:`runtime_persistence.storage.backup`; a SQLite
    file is copied first there, by the caller's ``consistent``)."""
    # Only a snapshot the driver's own class offers: a composite that forwards unknown attributes
    # to its records driver (records on PostgreSQL, blobs on S3) would hand over a view of the
    # records driver alone, and its blobs would be missing from the backup.
    if isinstance(driver, _Snapshotting) and getattr(type(driver), "read_snapshot", None) is not None:
        with driver.read_snapshot() as view:
            yield view, True
        return
    yield driver, False


def write_backup(
    driver: Driver, dest: str | os.PathLike[str], *, consistent: Consistent = snapshot_of
) -> dict[str, int]:
    """Write a portable backup of ``driver`` to the file ``dest`` (through a temporary name,
    fsynced, private, renamed into place: a failed backup leaves no file). Returns the counts
    written (``namespaces``, ``entries``, ``blobs``, ``blob_bytes``) and ``snapshot`` (1 when
    the store was read at one moment). Raises ValidationError for a store that cannot list its
    namespaces. ``consistent(driver)`` gives the driver to read and whether it is a snapshot."""
    target = Path(dest)
    _listing(driver)
    for folder in reversed([p for p in (target.parent, *target.parent.parents) if not p.exists()]):
        folder.mkdir(mode=0o700, exist_ok=True)  # every folder made here is private, not just the last
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as out, consistent(driver) as (source, snapshot):
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
    consistent: Consistent = snapshot_of,
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
    write_backup(driver, target, consistent=consistent)
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
