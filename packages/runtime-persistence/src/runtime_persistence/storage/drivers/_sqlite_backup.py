"""Backups of SQLite stores (re-exported by :mod:`runtime_persistence.storage.backup`): taken with SQLite's online backup API (a consistent copy while other
processes keep writing), verified, kept N deep, and restored.

* :func:`backup_sqlite` copies a store to ``<store folder>/backups/<name>-<UTC time>.db`` (or a
  path given), verifies the copy (:func:`verify_sqlite`: ``PRAGMA integrity_check``, every row's
  checksum, every record envelope's checksum, every blob's digest) and records the verification
  beside it (``<backup>.verified``, a small JSON file). Files are private (0600).
* :func:`newest_verified_backup` is what a damaged store's error names, with the command that
  restores it; a backup is never used silently, since it may lack the newest writes.
* :func:`restore_sqlite_backup` verifies the backup first, moves the current store (and its
  ``-wal``/``-shm``) aside as ``<store>.replaced-<time>`` (nothing is deleted) and puts a copy of
  the backup in its place.
* The SQLite driver calls :func:`backup_before_migration` before it migrates a store with data;
  when that backup cannot be written, the store is not migrated (StorageError).

Every other store (and a SQLite store too, when asked) is backed up in the portable format of
:mod:`runtime_persistence.storage.backup`; :func:`sqlite_path_of` says which URLs this module
handles."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

from runtime_core import CorruptionError, NotFoundError, StorageError, ValidationError

from runtime_persistence.storage._backup_stream import BackupDamagedError
from runtime_persistence.storage.drivers._sqlite_rows import _row_ok
from runtime_persistence.storage.serialization import MAGIC as _MAGIC
from runtime_persistence.storage.serialization import EnvelopeSerializer

__all__ = [
    "BACKUP_DIR",
    "BackupInfo",
    "VerifyReport",
    "backup_before_migration",
    "backup_sqlite",
    "check_record",
    "copy_sqlite",
    "damaged_hint",
    "list_backups",
    "newest_verified_backup",
    "restore_sqlite_backup",
    "sqlite_path_of",
    "verify_sqlite",
]

BACKUP_DIR = "backups"
_VERIFIED = ".verified"
_SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What :func:`verify_sqlite` read and what it found wrong (``problems``: where -> what)."""

    path: str
    records: int = 0
    envelopes: int = 0
    blobs: int = 0
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class BackupInfo:
    """One backup file: where, when it was taken, its size, and its verification (None: never
    verified)."""

    path: str
    created_at: datetime
    size: int
    verified: VerifyReport | None = None
    removed: tuple[str, ...] = ()  # older backups removed by ``keep``


def sqlite_path_of(url: str) -> Path | None:
    """The file of a ``sqlite://`` store URL, read as the SQLite driver reads it (SQLAlchemy's
    convention: ``sqlite:///rel.db`` is relative to the working folder, ``sqlite:////abs.db``
    absolute), made absolute; None for any other store, an in-memory one or a malformed URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "sqlite":
        return None
    rest = rest.split("?", 1)[0].split("#", 1)[0]
    if not rest.startswith("/"):
        return None
    raw = unquote(rest[1:])
    if raw in ("", "/", ":memory:"):
        return None
    return Path(raw).expanduser().absolute()


def _private(path: Path) -> None:
    with contextlib.suppress(OSError):  # best effort: a filesystem without modes
        path.chmod(0o600)


def _connect_ro(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise NotFoundError(f"no SQLite file at {path}")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    conn.text_factory = bytes  # a damaged row may hold anything: read bytes, never decode
    return conn


def check_record(ser: EnvelopeSerializer, namespace: str, key: str, data: bytes) -> str | None:
    """What is wrong with the record envelope ``data`` stored at ``(namespace, key)``, or None
    when its checksum (and binding to its place) holds. A record encrypted under a key ``ser``
    lacks cannot be opened here and counts as sound (its row or frame checksum still guards it)."""
    try:
        ser.loads(data, at=(namespace, key))
    except Exception as exc:  # CorruptionError, or a key this reader lacks
        if "encrypted" not in str(exc):
            return str(exc)
    return None


def copy_sqlite(source: Path, dest: Path) -> None:
    """Copy the SQLite file ``source`` to ``dest`` with the online backup API (consistent while
    others write), through a temporary name, fsynced. CorruptionError when it cannot be read."""
    _copy(source, dest)


def _copy(source: Path, dest: Path) -> None:
    """Copy ``source`` to ``dest`` with the online backup API, through a temporary name, fsynced."""
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    src = _connect_ro(source)
    try:
        out = sqlite3.connect(tmp)
        try:
            src.backup(out)
            out.execute("PRAGMA journal_mode=DELETE")
        finally:
            out.close()
    except sqlite3.DatabaseError as exc:
        tmp.unlink(missing_ok=True)
        raise CorruptionError(f"the SQLite store {source} cannot be copied: {exc}") from exc
    finally:
        src.close()
    _private(tmp)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, dest)
    fd = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def verify_sqlite(path: str | os.PathLike[str]) -> VerifyReport:
    """Read every row of the SQLite store file at ``path``: ``PRAGMA integrity_check``, each row's
    stored checksum (where the schema has them), each record envelope's checksum, and the digest
    of each blob. Never writes. NotFoundError when there is no file."""
    target = Path(path)
    problems: dict[str, str] = {}
    records = envelopes = blobs = 0
    try:
        conn = _connect_ro(target)
    except sqlite3.DatabaseError as exc:
        return VerifyReport(str(target), problems={"file": str(exc)})
    try:
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
            said = [bytes(r[0]).decode("utf-8", "replace") for r in rows]
            if said != ["ok"]:
                problems["integrity_check"] = "; ".join(said[:5])
            columns = {bytes(r[1]).decode() for r in conn.execute("PRAGMA table_info(kv)")}
            ser = EnvelopeSerializer()
            with_sums = "checksum" in columns
            query = (
                "SELECT ns, key, value, version, checksum FROM kv"
                if with_sums
                else "SELECT ns, key, value, version, NULL FROM kv"
            )
            for raw_ns, key, value, version, checksum in conn.execute(query):
                records += 1
                ns = bytes(raw_ns).decode("utf-8", "replace")
                raw_key = bytes(key)
                where = f"{ns}/{raw_key.decode('utf-8', 'replace')}"
                data = bytes(value)
                if with_sums and (
                    not _row_ok(
                        ns, raw_key, int(version), data, None if checksum is None else bytes(checksum)
                    )
                ):
                    problems[where] = "the row's checksum does not match its bytes"
                    continue
                if data[:2] == _MAGIC:
                    envelopes += 1
                    # records are bound to their place: read each where it is stored
                    wrong = check_record(ser, ns, raw_key.decode("utf-8", "surrogatepass"), data)
                    if wrong is not None:
                        problems[where] = wrong
            for blob_id, digest in conn.execute("SELECT id, digest FROM blobs"):
                blobs += 1
                h = hashlib.sha256()
                for (chunk,) in conn.execute(
                    "SELECT data FROM blob_chunks WHERE blob_id = ? ORDER BY seq", (blob_id,)
                ):
                    h.update(bytes(chunk))
                if bytes(digest).decode("ascii", "replace") != h.hexdigest():
                    problems[f"blob {bytes(digest).decode('ascii', 'replace')}"] = (
                        "its bytes do not match its digest"
                    )
        except sqlite3.DatabaseError as exc:
            problems["file"] = str(exc)
    finally:
        conn.close()
    return VerifyReport(str(target), records, envelopes, blobs, problems)


def _record(backup: Path, report: VerifyReport) -> None:
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


def backup_sqlite(
    store: str | os.PathLike[str], dest: str | os.PathLike[str] | None = None, *, keep: int | None = None
) -> BackupInfo:
    """Back up the SQLite store file ``store`` (consistent, while others write) to ``dest`` (a
    file, or a folder to put it in; default ``<store folder>/backups``), verify the copy, and with
    ``keep`` remove all but the newest ``keep`` backups of this store in that folder. Raises
    CorruptionError (and keeps nothing) when the copy fails verification."""
    source = Path(store)
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise ValidationError(f"keep must be a positive integer, got {keep!r:.20}")
    folder = source.parent / BACKUP_DIR if dest is None else Path(dest)
    target = folder / f"{source.stem}-{_stamp()}.db" if dest is None or Path(dest).is_dir() else Path(dest)
    _copy(source, target)
    report = verify_sqlite(target)
    if not report.ok:
        bad = "; ".join(f"{k}: {v}" for k, v in list(report.problems.items())[:3])
        target.unlink(missing_ok=True)
        raise CorruptionError(
            f"the backup of {source} failed verification ({bad}); the store itself may be damaged"
        )
    _record(target, report)
    removed: list[str] = []
    if keep is not None:
        for old in list_backups(source, target.parent)[keep:]:
            Path(old.path).unlink(missing_ok=True)
            Path(old.path + _VERIFIED).unlink(missing_ok=True)
            removed.append(old.path)
    return BackupInfo(str(target), datetime.now(UTC), target.stat().st_size, report, tuple(removed))


def list_backups(
    store: str | os.PathLike[str], folder: str | os.PathLike[str] | None = None
) -> list[BackupInfo]:
    """The backups of ``store`` in ``folder`` (default ``<store folder>/backups``), newest first,
    each with its recorded verification."""
    source = Path(store)
    where = Path(folder) if folder is not None else source.parent / BACKUP_DIR
    if not where.is_dir():
        return []
    out: list[BackupInfo] = []
    for path in where.glob(f"{source.stem}-*.db"):
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


def newest_verified_backup(store: str | os.PathLike[str]) -> Path | None:
    """The newest backup of ``store`` (in its default folder) whose verification passed."""
    for info in list_backups(store):
        if info.verified is not None and info.verified.ok:
            return Path(info.path)
    return None


def damaged_hint(store: str | os.PathLike[str]) -> str:
    """What a damaged store's error adds: the newest verified backup and the command that
    restores it, or how to take backups from now on."""
    try:
        found = newest_verified_backup(store)
    except OSError:
        found = None
    if found is None:
        return "; no verified backup of it was found (take them with `keepup store backup`)"
    return (
        f"; the newest verified backup is {found} (it lacks any writes made after it was taken): "
        f"restore it with `keepup store restore-backup {found}`"
    )


def restore_sqlite_backup(
    backup: str | os.PathLike[str], store: str | os.PathLike[str]
) -> tuple[Path, Path | None]:
    """Put a copy of ``backup`` in place of the SQLite store ``store`` (which must not be open
    elsewhere). The backup is verified first (CorruptionError, nothing changed, if it fails); the
    current store and its side files are moved aside as ``<store>.replaced-<time>``, never
    deleted. Returns the restored store and where the old one went (None if there was none)."""
    source, target = Path(backup), Path(store)
    report = verify_sqlite(source)
    if not report.ok:
        bad = "; ".join(f"{k}: {v}" for k, v in list(report.problems.items())[:3])
        raise BackupDamagedError(f"the backup {source} failed verification ({bad}); nothing was changed")
    staged = target.with_name(f".{target.name}.restore-{os.getpid()}")
    _copy(source, staged)
    aside: Path | None = None
    if target.exists():
        aside = target.with_name(f"{target.name}.replaced-{_stamp()}")
        os.replace(target, aside)
        for suffix in _SIDE_FILES:
            side = Path(f"{target}{suffix}")
            if side.exists():
                os.replace(side, Path(f"{aside}{suffix}"))
    os.replace(staged, target)
    return target, aside


def backup_before_migration(store: Path) -> Path | None:
    """Called by the SQLite driver before it migrates a store that has data: a verified backup
    in the default folder, so a failed or unwanted migration can be undone. None when the store
    file is empty or missing."""
    if not store.is_file() or store.stat().st_size == 0:
        return None
    try:
        return Path(backup_sqlite(store).path)
    except OSError as exc:
        raise StorageError(
            f"the SQLite store {store} needs a schema migration, and the backup taken before it could not "
            f"be written to {store.parent / BACKUP_DIR}: {exc.strerror or exc}; nothing was migrated "
            "(free space or fix the folder's permissions, then open the store again)"
        ) from exc
