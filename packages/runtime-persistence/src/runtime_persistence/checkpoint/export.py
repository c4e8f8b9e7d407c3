"""Export threads of checkpoints to one portable, versioned, checksummed file, and import them.

The format is documented in ``docs/export-format.md``. In short: the 8 bytes ``KEEPUPX1``, then
frames, each a 4-byte big-endian length followed by one Keepup envelope (format version, codec,
length, payload, BLAKE2b checksum) whose MessagePack payload is a map with a kind ``k``: a
``header``, then per thread a ``thread`` frame, the ``blob`` frames its checkpoints need (each
blob once per file), its ``checkpoint`` frames in order (with their pending writes), ``pin`` and
``fork`` frames and a ``thread_end``; last an ``end`` frame holding the frame count and the
SHA-256 of every byte before it.

Both directions stream: memory holds one frame (one checkpoint record or one blob) at a time,
plus the set of blob digests already written. Import writes bottom-up like a save (blobs, then
records, then the head, then the thread record last), so a thread appears only once all of its
frames were read and verified; a damaged or truncated file raises CorruptionError and leaves
only unreferenced records and blobs behind, which gc removes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import msgspec
from runtime_core import ConflictError, CorruptionError, Put, Thread, ValidationError, validate_id

from runtime_persistence.checkpoint._records import (
    CKPT_ID_NS,
    CKPT_NS,
    CKPT_PIN_NS,
    FORK_NS,
    HEAD_NS,
    SEQ_DIGITS,
    THREAD_NS,
    Head,
    IdEntry,
    Record,
    ThreadRecord,
    WriteRecord,
    is_record_key,
    slot_key,
    write_key,
)
from runtime_persistence.checkpoint._state import LOC_AREA, LOC_KV, iter_blob_refs, ref_digest
from runtime_persistence.checkpoint.checkpoints import Checkpoints
from runtime_persistence.storage.serialization import EnvelopeSerializer

__all__ = ["EXPORT_MAGIC", "EXPORT_VERSION", "ExportReport", "Progress", "export_threads", "import_threads"]

EXPORT_MAGIC = b"KEEPUPX1"
EXPORT_VERSION = 1
MAX_FRAME = 1 << 31
_LEN = struct.Struct(">I")

Progress = Callable[[int, int], None]
"""Called with (checkpoints done, checkpoints in total) as an export or import advances."""


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What an export wrote or an import read."""

    threads: int
    checkpoints: int
    blobs: int
    bytes: int


_ENC = msgspec.msgpack.Encoder()
_SER = EnvelopeSerializer("msgpack")


def _to_plain(struct_value: msgspec.Struct) -> Any:
    return msgspec.to_builtins(struct_value, builtin_types=(bytes, bytearray, datetime))


@contextmanager
def _opened(target: str | Path | IO[bytes], mode: str) -> Iterator[IO[bytes]]:
    if isinstance(target, (str, Path)):
        with open(target, mode + "b") as fh:
            yield fh
    else:
        yield target


class _Writer:
    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self._hash = hashlib.sha256()
        self.frames = 0
        self.bytes = 0
        self._raw(EXPORT_MAGIC)

    def _raw(self, data: bytes) -> None:
        self._fh.write(data)
        self._hash.update(data)
        self.bytes += len(data)

    def frame(self, kind: str, **fields: Any) -> None:
        envelope = _SER.dumps({"k": kind, **fields})
        self._raw(_LEN.pack(len(envelope)))
        self._raw(envelope)
        self.frames += 1

    def end(self) -> None:
        envelope = _SER.dumps({"k": "end", "frames": self.frames, "sha256": self._hash.hexdigest()})
        self._fh.write(_LEN.pack(len(envelope)) + envelope)
        self.bytes += _LEN.size + len(envelope)
        self._fh.flush()


def export_threads(
    checkpoints: Checkpoints,
    dest: str | Path | IO[bytes],
    *,
    thread_ids: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> ExportReport:
    """Write ``thread_ids`` (default: every thread) with all their checkpoints, pending writes,
    pins, fork links and the blobs their states need to ``dest`` (a path or a binary file).

    Reads a consistent view of each thread as of its head when the thread is reached; checkpoints
    saved meanwhile after that head are not included. Raises NotFoundError for an unknown thread."""
    driver = checkpoints.driver
    ser = checkpoints._ser
    ids = list(thread_ids) if thread_ids is not None else [e.key for e in driver.scan(THREAD_NS)]
    for tid in ids:
        validate_id(tid, "thread id")
    plan: list[tuple[ThreadRecord, Head | None]] = []
    total = 0
    for tid in ids:
        trec, _ = checkpoints._thread_rec(tid)
        head, _ = checkpoints._head(tid)
        plan.append((trec, head))
        total += (head.seq + 1) if head else 0  # an upper bound (pruned slots are gaps)
    done = blobs = 0
    written: set[bytes] = set()
    with _opened(dest, "w") as fh:
        out = _Writer(fh)
        out.frame(
            "header",
            format="keepup-export",
            version=EXPORT_VERSION,
            created_at=checkpoints._clock.now(),
            threads=[t.id for t, _ in plan],
            checkpoints=total,
        )
        for trec, head in plan:
            out.frame("thread", thread=_to_plain(trec), head=_to_plain(head) if head else None)
            if trec.forked_from is not None and trec.parent_thread_id is not None:
                try:
                    src_thread, src_seq = checkpoints._locate(trec.forked_from)
                    out.frame("fork", key=f"{slot_key(src_thread, src_seq)}/{trec.id}")
                except LookupError:
                    pass
            for rec, writes in checkpoints._scan(
                trec.id,
                reverse=False,
                before=None if head is None else slot_key(trec.id, head.seq) + "0",
                page=256,
            ):
                refs = list(iter_blob_refs(rec.channels))
                for w in writes:
                    refs.extend(w.value.blobs)
                for ref in refs:
                    if ref not in written:
                        written.add(ref)
                        out.frame("blob", ref=ref, data=checkpoints._channels.read_blob(ref))
                        blobs += 1
                out.frame("checkpoint", record=_to_plain(rec), writes=[_to_plain(w) for w in writes])
                done += 1
                if progress is not None:
                    progress(done, total)
            for entry in driver.scan(CKPT_PIN_NS, prefix=f"{trec.id}/"):
                out.frame("pin", key=entry.key, reason=ser.loads(entry.value))
            out.frame("thread_end", id=trec.id)
        out.end()
    if progress is not None:
        progress(done, done)
    return ExportReport(len(plan), done, blobs, out.bytes)


def _frames(fh: IO[bytes]) -> Iterator[dict[str, Any]]:
    """Verified frames of an export stream, ending with the (verified) end frame."""
    magic = fh.read(len(EXPORT_MAGIC))
    if magic != EXPORT_MAGIC:
        raise CorruptionError("not a Keepup export file (bad magic); expected it to start with KEEPUPX1")
    running = hashlib.sha256(magic)
    count = 0
    while True:
        head = fh.read(_LEN.size)
        if len(head) < _LEN.size:
            raise CorruptionError("the export file is truncated: it ends before its end frame")
        (length,) = _LEN.unpack(head)
        if length >= MAX_FRAME:
            raise CorruptionError(f"an export frame claims {length} bytes")
        envelope = fh.read(length)
        if len(envelope) < length:
            raise CorruptionError("the export file is truncated in the middle of a frame")
        frame: Any = _SER.loads(envelope)
        if not isinstance(frame, dict) or not isinstance(frame.get("k"), str):
            raise CorruptionError("an export frame is not a map with a kind")
        if frame["k"] == "end":
            if frame.get("frames") != count or frame.get("sha256") != running.hexdigest():
                raise CorruptionError("the export file's end checksum does not match its content")
            if fh.read(1):
                raise CorruptionError("the export file has data after its end frame")
            yield frame
            return
        running.update(head)
        running.update(envelope)
        count += 1
        yield frame


def _typed(value: Any, type_: type[Any]) -> Any:
    try:
        return msgspec.convert(value, type_, builtin_types=(bytes, bytearray, datetime))
    except msgspec.ValidationError as exc:
        raise CorruptionError(f"an export frame does not match its expected shape: {exc}") from exc


def _thread_section(frame: dict[str, Any]) -> tuple[ThreadRecord, Head | None]:
    """The thread record and head of a ``thread`` frame, checked like the public records
    (CorruptionError): the file is untrusted and the thread id becomes part of every key."""
    trec: ThreadRecord = _typed(frame.get("thread"), ThreadRecord)
    head: Head | None = _typed(frame["head"], Head) if frame.get("head") is not None else None
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


def _section_key(frame: dict[str, Any], current: tuple[ThreadRecord, Head | None] | None) -> str:
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


def import_threads(
    checkpoints: Checkpoints,
    src: str | Path | IO[bytes],
    *,
    progress: Progress | None = None,
) -> ExportReport:
    """Read an export made by :func:`export_threads` into ``checkpoints``' store, keeping every id.

    Raises CorruptionError for a damaged, truncated or foreign file (threads completed before
    the damage stay imported; the one in progress stays invisible), ConflictError when a thread
    id already exists in the target (threads before it stay imported), ValidationError for an
    unsupported format version."""
    driver = checkpoints.driver
    ser = checkpoints._ser
    threads = done = blobs = total = 0
    size = 0
    current: tuple[ThreadRecord, Head | None] | None = None
    with _opened(src, "r") as fh:
        frames = _frames(fh)
        for frame in frames:
            kind = frame["k"]
            if kind == "header":
                if frame.get("format") != "keepup-export":
                    raise CorruptionError("not a Keepup export (its header names another format)")
                if frame.get("version") != EXPORT_VERSION:
                    raise ValidationError(
                        f"export format version {frame.get('version')!r} is not supported (this reads {EXPORT_VERSION})"
                    )
                total = frame.get("checkpoints", 0)
                if isinstance(total, bool) or not isinstance(total, int) or total < 0:
                    raise CorruptionError("the export header's checkpoint count is not a count")
            elif kind == "thread":
                if current is not None:
                    raise CorruptionError("a thread frame comes before the open thread's thread_end")
                current = _thread_section(frame)
                if driver.get(THREAD_NS, current[0].id) is not None:
                    raise ConflictError(f"thread {current[0].id} already exists in the target store")
            elif kind == "blob":
                ref = frame.get("ref")
                data = frame.get("data")
                if not isinstance(ref, bytes) or len(ref) != 33 or not isinstance(data, bytes):
                    raise CorruptionError("a blob frame is malformed")
                if hashlib.sha256(data).digest() != ref[1:]:
                    raise CorruptionError(f"blob {ref_digest(ref)} in the export does not match its digest")
                if ref[0] == LOC_KV:
                    driver.batch([checkpoints._channels.kv_put_for(ref, data)])
                elif ref[0] == LOC_AREA:
                    driver.put_blob(data, ref_digest(ref))
                else:
                    raise CorruptionError("a blob frame names an unknown location")
                blobs += 1
                size += len(data)
            elif kind == "checkpoint":
                if current is None:
                    raise CorruptionError("a checkpoint frame comes before its thread frame")
                rec = _typed(frame.get("record"), Record)
                writes = [_typed(w, WriteRecord) for w in _typed(frame.get("writes", []), list)]
                if rec.thread_id != current[0].id:
                    raise CorruptionError("a checkpoint frame belongs to another thread than its section")
                slot = slot_key(rec.thread_id, rec.seq)
                if not is_record_key(slot, rec.thread_id):
                    raise CorruptionError("a checkpoint frame has an invalid sequence number")
                checkpoints._validated(rec, writes)  # the file is untrusted: full checks before writing
                ops: list[Put] = [
                    Put(CKPT_ID_NS, rec.id, ser.dumps(IdEntry(rec.thread_id, rec.seq)), if_absent=True),
                    Put(CKPT_NS, slot, ser.dumps(rec), if_absent=True),
                ]
                for w in writes:
                    ops.append(Put(CKPT_NS, write_key(slot, w.task_id, w.channel), ser.dumps(w)))
                driver.batch(ops)
                done += 1
                if progress is not None:
                    progress(done, max(total, done))
            elif kind == "pin":
                key = _section_key(frame, current)
                driver.put(CKPT_PIN_NS, key, ser.dumps(str(frame.get("reason", "pinned"))))
            elif kind == "fork":
                driver.put(FORK_NS, _section_key(frame, current), b"\x01")
            elif kind == "thread_end":
                if current is None or frame.get("id") != current[0].id:
                    raise CorruptionError("a thread_end frame does not close the open thread")
                trec, head = current
                if head is not None:
                    driver.put(HEAD_NS, trec.id, ser.dumps(head), if_absent=True)
                driver.put(THREAD_NS, trec.id, ser.dumps(trec), if_absent=True)
                threads += 1
                current = None
            elif kind == "end":
                break
            else:
                raise CorruptionError(f"unknown export frame kind {kind!r}")
    if progress is not None:
        progress(done, done)
    return ExportReport(threads, done, blobs, size)
