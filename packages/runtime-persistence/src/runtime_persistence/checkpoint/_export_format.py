"""The export file format without I/O, shared by the async export (``_async/export.py``) and its
generated sync twin: constants, frame encoding with the running checksum, frame verification, and
the checks of untrusted frames. The format is described in :mod:`runtime_persistence.checkpoint.export`."""

from __future__ import annotations

import hashlib
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, cast

import msgspec
from runtime_core import CorruptionError, Thread, ValidationError, validate_id

from runtime_persistence.artifact._records import Record as ArtifactRecord
from runtime_persistence.artifact._records import record_key, series_of, version_of
from runtime_persistence.checkpoint._records import SEQ_DIGITS, Head, ThreadRecord
from runtime_persistence.shadow_git.sharing import is_full_commit
from runtime_persistence.storage.serialization import EnvelopeSerializer

__all__ = [
    "EXPORT_MAGIC",
    "EXPORT_VERSION",
    "LEN",
    "MAX_FRAME",
    "PART_BYTES",
    "READS_VERSIONS",
    "SECTIONS_VERSION",
    "ExportReport",
    "FrameReader",
    "FrameWriter",
    "Progress",
    "SnapshotSource",
    "artifact_key_of",
    "artifact_section",
    "open_file",
    "section_key",
    "snapshot_section",
    "spool_file",
    "thread_section",
    "to_plain",
    "typed",
]

EXPORT_MAGIC = b"KEEPUPX1"
EXPORT_VERSION = 2
SECTIONS_VERSION = 3
READS_VERSIONS = (1, 2, 3)
"""Version 2 added the ``artifact`` and ``snapshots`` frames; version 3 the sections of other
repositories (sessions, tasks, events) after the threads, named in the header's ``with``. A file
without sections is still written as version 2; a version 1 file reads as before."""
MAX_FRAME = 64 << 20
"""The largest frame an import reads by default (``import_threads(max_frame=...)`` changes it): a
longer frame is refused before it is read. Blob and snapshot data larger than :data:`PART_BYTES`
is written in parts, so every frame an export writes stays far below it."""
PART_BYTES = 16 << 20
"""The most blob or snapshot-pack data one frame of an export holds; larger data is written as
its first frame (with ``parts`` and ``size``) followed by ``part`` frames."""
LEN = struct.Struct(">I")

SnapshotSource = Callable[[str], Any]
"""``workspace path -> ShadowGit`` (e.g. ``Runtime.snapshots``): where an export finds the
snapshots its checkpoints name."""

Progress = Callable[[int, int], None]
"""Called with (checkpoints done, checkpoints in total) as an export or import advances."""


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What an export wrote or an import read."""

    threads: int
    checkpoints: int
    blobs: int
    bytes: int
    snapshot_packs: int = 0
    artifacts: int = 0
    missing_snapshots: tuple[str, ...] = ()
    """Snapshots the checkpoints name that the export could not find (their files are not in it)."""
    records: dict[str, int] = field(default_factory=dict)
    """Frames of the sections written or read, by kind (e.g. ``{"session": 2, "task": 5}``)."""


_ENC = msgspec.msgpack.Encoder()
_SER = EnvelopeSerializer("msgpack")


def to_plain(struct_value: msgspec.Struct) -> Any:
    return msgspec.to_builtins(struct_value, builtin_types=(bytes, bytearray, datetime))


def open_file(path: str | Path, mode: str) -> IO[bytes]:
    """``path`` opened in binary ``mode`` ("r" or "w")."""
    return cast(IO[bytes], open(path, mode + "b"))


class FrameWriter:
    """Encodes frames and keeps the running SHA-256, frame and byte counts of an export."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.frames = 0
        self.bytes = 0

    def _raw(self, data: bytes) -> bytes:
        self._hash.update(data)
        self.bytes += len(data)
        return data

    def start(self) -> bytes:
        return self._raw(EXPORT_MAGIC)

    def frame(self, kind: str, **fields: Any) -> bytes:
        envelope = _SER.dumps({"k": kind, **fields})
        self.frames += 1
        return self._raw(LEN.pack(len(envelope)) + envelope)

    def end(self) -> bytes:
        envelope = _SER.dumps({"k": "end", "frames": self.frames, "sha256": self._hash.hexdigest()})
        data = LEN.pack(len(envelope)) + envelope
        self.bytes += len(data)
        return data


class FrameReader:
    """Verifies the frames of an export stream as they are read (magic, lengths, running checksum)."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._running = hashlib.sha256()
        self._count = 0
        self._max = max_frame

    def magic(self, data: bytes) -> None:
        if data != EXPORT_MAGIC:
            raise CorruptionError("not a Keepup export file (bad magic); expected it to start with KEEPUPX1")
        self._running.update(data)

    def length(self, head: bytes) -> int:
        if len(head) < LEN.size:
            raise CorruptionError("the export file is truncated: it ends before its end frame")
        (length,) = LEN.unpack(head)
        if length > self._max:
            raise CorruptionError(
                f"an export frame claims {length} bytes, over the {self._max}-byte frame limit "
                "(import_threads(max_frame=...) raises it for a trusted file)"
            )
        return int(length)

    def frame(self, head: bytes, envelope: bytes, length: int) -> tuple[dict[str, Any], bool]:
        """The decoded frame and whether it is the (verified) end frame."""
        if len(envelope) < length:
            raise CorruptionError("the export file is truncated in the middle of a frame")
        frame: Any = _SER.loads(envelope)
        if not isinstance(frame, dict) or not isinstance(frame.get("k"), str):
            raise CorruptionError("an export frame is not a map with a kind")
        if frame["k"] == "end":
            if frame.get("frames") != self._count or frame.get("sha256") != self._running.hexdigest():
                raise CorruptionError("the export file's end checksum does not match its content")
            return frame, True
        self._running.update(head)
        self._running.update(envelope)
        self._count += 1
        return frame, False


def typed(value: Any, type_: type[Any]) -> Any:
    try:
        return msgspec.convert(value, type_, builtin_types=(bytes, bytearray, datetime))
    except msgspec.ValidationError as exc:
        raise CorruptionError(f"an export frame does not match its expected shape: {exc}") from exc


def thread_section(frame: dict[str, Any]) -> tuple[ThreadRecord, Head | None]:
    """The thread record and head of a ``thread`` frame, checked like the public records
    (CorruptionError): the file is untrusted and the thread id becomes part of every key."""
    trec: ThreadRecord = typed(frame.get("thread"), ThreadRecord)
    head: Head | None = typed(frame["head"], Head) if frame.get("head") is not None else None
    try:
        Thread(
            id=trec.id,
            created_at=trec.created_at,
            updated_at=trec.updated_at,
            name=trec.name,
            metadata=trec.metadata,
            parent_thread_id=trec.parent_thread_id,
            forked_from=trec.forked_from,
            head=head.id if head is not None else None,
        )
    except ValidationError as exc:
        raise CorruptionError(f"a thread frame does not validate: {exc}") from exc
    return trec, head


def section_key(frame: dict[str, Any], current: tuple[ThreadRecord, Head | None] | None) -> str:
    """The key of a ``pin`` or ``fork`` frame, which must belong to the open thread: a pin is
    ``{thread}/{checkpoint}``, a fork link ``{source slot}/{thread}`` (CorruptionError)."""
    key = frame.get("key")
    if current is None or not isinstance(key, str):
        raise CorruptionError(f"a {frame['k']} frame is malformed or outside a thread section")
    tid = current[0].id
    parts = key.split("/")
    if frame["k"] == "pin":
        ok = len(parts) == 2 and parts[0] == tid
        named = parts[1:]
    else:
        seq = parts[1] if len(parts) == 3 else ""
        ok = (
            len(parts) == 3 and parts[2] == tid and len(seq) == SEQ_DIGITS and seq.isascii() and seq.isdigit()
        )
        named = parts[:1]
    try:
        for other in named:
            validate_id(other, "id")
    except ValidationError:
        ok = False
    if not ok:
        raise CorruptionError(f"a {frame['k']} frame names a key outside thread {tid}")
    return key


def spool_file() -> IO[bytes]:
    """A private anonymous temporary file (removed when closed) for the verified copy of an import."""
    return cast(IO[bytes], tempfile.TemporaryFile(prefix="keepup-import-"))


def artifact_key_of(scope: str, key: str, version: int) -> str:
    """The stored key of an artifact version (ValidationError for a bad scope, key or version)."""
    return record_key(series_of(scope, key), version)


def artifact_section(frame: dict[str, Any]) -> tuple[str, ArtifactRecord]:
    """The key and record of an ``artifact`` frame, checked like a stored record and bound to its
    key (CorruptionError)."""
    rec: ArtifactRecord = typed(frame.get("record"), ArtifactRecord)
    key = frame.get("key")
    try:
        version_of(rec)
        expected = artifact_key_of(rec.scope, rec.key, rec.version)
    except (ValidationError, CorruptionError) as exc:
        raise CorruptionError(f"an artifact frame does not validate: {exc}") from exc
    if key != expected:
        raise CorruptionError("an artifact frame's key does not match its record")
    return expected, rec


def snapshot_section(frame: dict[str, Any]) -> tuple[list[str], bytes]:
    """The commits and git pack of a ``snapshots`` frame (CorruptionError when malformed; git
    verifies the pack itself before any snapshot in it is used)."""
    commits = frame.get("commits")
    data = frame.get("data")
    if not isinstance(commits, list) or not commits or not all(is_full_commit(c) for c in commits):
        raise CorruptionError("a snapshots frame does not list commit ids")
    if not isinstance(data, bytes) or not data.startswith(b"PACK"):
        raise CorruptionError("a snapshots frame does not hold a git pack")
    return commits, data
