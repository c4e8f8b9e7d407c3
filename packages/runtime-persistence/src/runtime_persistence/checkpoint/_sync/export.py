# Generated from packages/runtime-persistence/src/runtime_persistence/checkpoint/_async/export.py by scripts/gen_sync.py: edit that file and rerun the script.
"""Export and import of threads, written once as async code; ``_sync/export.py`` is generated from
it. The file work (open, read, write) runs in a worker thread in the async functions and directly
in the sync ones. The format is described in :mod:`runtime_persistence.checkpoint.export`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, ParamSpec, TypeVar

from runtime_core import ConflictError, CorruptionError, PendingWrite, Put, ValidationError, validate_id

from runtime_persistence.checkpoint._export_format import (
    EXPORT_MAGIC,
    EXPORT_VERSION,
    LEN,
    ExportReport,
    FrameReader,
    FrameWriter,
    Progress,
    open_file,
    section_key,
    thread_section,
    to_plain,
    typed,
)
from runtime_persistence.checkpoint._records import (
    CKPT_ID_NS,
    CKPT_NS,
    CKPT_PIN_NS,
    CKPT_WRITE_NS,
    FORK_NS,
    HEAD_NS,
    THREAD_KEY_NS,
    THREAD_NS,
    Head,
    IdEntry,
    KeyedWrite,
    Record,
    ThreadKey,
    ThreadRecord,
    WriteRecord,
    is_record_key,
    keyed_write_key,
    lane,
    lane_of,
    slot_key,
    thread_key_key,
    write_key,
)
from runtime_persistence.checkpoint._state import LOC_AREA, LOC_KV, iter_blob_refs, ref_digest
from runtime_persistence.checkpoint._sync.checkpoints import Checkpoints

__all__ = ["export_threads", "import_threads"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _file(fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
    """Local file work: in a worker thread in async code."""
    return fn(*args, **kwargs)


@contextmanager
def _opened(target: str | Path | IO[bytes], mode: str) -> Iterator[IO[bytes]]:
    if isinstance(target, (str, Path)):
        fh = _file(open_file, target, mode)
        try:
            yield fh
        finally:
            _file(fh.close)
    else:
        yield target


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
    out = FrameWriter()
    with _opened(dest, "w") as fh:
        _file(fh.write, out.start())
        header = out.frame(
            "header",
            format="keepup-export",
            version=EXPORT_VERSION,
            created_at=checkpoints._clock.now(),
            threads=[t.id for t, _ in plan],
            checkpoints=total,
        )
        _file(fh.write, header)
        for trec, head in plan:
            thread = out.frame("thread", thread=to_plain(trec), head=to_plain(head) if head else None)
            _file(fh.write, thread)
            if trec.forked_from is not None and trec.parent_thread_id is not None:
                try:
                    src_thread, src_seq = checkpoints._locate(trec.forked_from)
                    _file(fh.write, out.frame("fork", key=f"{slot_key(src_thread, src_seq)}/{trec.id}"))
                except LookupError:
                    pass
            for namespace in checkpoints.namespaces(trec.id) or [""]:
                lane_ = lane(trec.id, namespace)
                lane_head = head if not namespace else (checkpoints._head(lane_))[0]
                if namespace and lane_head is not None:
                    _file(fh.write, out.frame("lane_head", namespace=namespace, head=to_plain(lane_head)))
                for rec, writes in checkpoints._scan(
                    lane_,
                    reverse=False,
                    before=None if lane_head is None else slot_key(lane_, lane_head.seq) + "0",
                    page=256,
                ):
                    refs = list(iter_blob_refs(rec.channels))
                    for w in writes:
                        refs.extend(w.value.blobs)
                    for ref in refs:
                        if ref not in written:
                            written.add(ref)
                            data = checkpoints._channels.read_blob(ref)
                            _file(fh.write, out.frame("blob", ref=ref, data=data))
                            blobs += 1
                    keyed = checkpoints._keyed_writes_of(rec)
                    extra = {"keyed": [to_plain(w) for w in keyed]} if keyed else {}
                    frame = out.frame(
                        "checkpoint", record=to_plain(rec), writes=[to_plain(w) for w in writes], **extra
                    )
                    _file(fh.write, frame)
                    done += 1
                    if progress is not None:
                        progress(done, total)
            for entry in driver.scan(CKPT_PIN_NS, prefix=f"{trec.id}/"):
                _file(
                    fh.write,
                    out.frame(
                        "pin", key=entry.key, reason=ser.loads(entry.value, at=(CKPT_PIN_NS, entry.key))
                    ),
                )
            _file(fh.write, out.frame("thread_end", id=trec.id))
        _file(fh.write, out.end())
        _file(fh.flush)
    if progress is not None:
        progress(done, done)
    return ExportReport(len(plan), done, blobs, out.bytes)


def _frames(fh: IO[bytes]) -> Iterator[dict[str, Any]]:
    """Verified frames of an export stream, ending with the (verified) end frame."""
    reader = FrameReader()
    reader.magic(_file(fh.read, len(EXPORT_MAGIC)))
    while True:
        head = _file(fh.read, LEN.size)
        length = reader.length(head)
        frame, last = reader.frame(head, _file(fh.read, length), length)
        if last:
            if _file(fh.read, 1):
                raise CorruptionError("the export file has data after its end frame")
            yield frame
            return
        yield frame


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
    lane_heads: dict[str, Head] = {}
    with _opened(src, "r") as fh:
        for frame in _frames(fh):
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
                current = thread_section(frame)
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
                rec = typed(frame.get("record"), Record)
                writes = [typed(w, WriteRecord) for w in typed(frame.get("writes", []), list)]
                if rec.thread_id != current[0].id:
                    raise CorruptionError("a checkpoint frame belongs to another thread than its section")
                slot = slot_key(lane_of(rec), rec.seq)
                if not is_record_key(slot, lane_of(rec)):
                    raise CorruptionError("a checkpoint frame has an invalid sequence number")
                checkpoints._validated(rec, writes)  # the file is untrusted: full checks first
                keyed = [typed(w, KeyedWrite) for w in typed(frame.get("keyed", []), list)]
                if keyed and rec.key is None:
                    raise CorruptionError("a checkpoint frame has keyed writes but no key")
                ops: list[Put] = [
                    Put(
                        CKPT_ID_NS,
                        rec.id,
                        ser.dumps(IdEntry(rec.thread_id, rec.seq, rec.namespace), at=(CKPT_ID_NS, rec.id)),
                        if_absent=True,
                    ),
                    *(checkpoints._indexes(rec, first=True)),
                    Put(CKPT_NS, slot, ser.dumps(rec, at=(CKPT_NS, slot)), if_absent=True),
                ]
                for w in writes:
                    wkey = write_key(slot, w.task_id, w.channel)
                    ops.append(Put(CKPT_NS, wkey, ser.dumps(w, at=(CKPT_NS, wkey))))
                for kw in keyed:
                    PendingWrite(
                        rec.id, kw.task_id, kw.channel, kw.value, kw.created_at, kw.task_path, kw.index
                    )
                    key = keyed_write_key(lane_of(rec), rec.key or "", kw.task_id, kw.index)
                    ops.append(Put(CKPT_WRITE_NS, key, ser.dumps(kw, at=(CKPT_WRITE_NS, key))))
                driver.batch(ops)
                done += 1
                if progress is not None:
                    progress(done, max(total, done))
            elif kind == "lane_head":
                if current is None:
                    raise CorruptionError("a lane_head frame comes before its thread frame")
                namespace = frame.get("namespace")
                if not isinstance(namespace, str) or not namespace:
                    raise CorruptionError("a lane_head frame names no namespace")
                lane_heads[lane(current[0].id, namespace)] = typed(frame.get("head"), Head)
            elif kind == "pin":
                key = section_key(frame, current)
                driver.put(
                    CKPT_PIN_NS, key, ser.dumps(str(frame.get("reason", "pinned")), at=(CKPT_PIN_NS, key))
                )
            elif kind == "fork":
                driver.put(FORK_NS, section_key(frame, current), b"\x01")
            elif kind == "thread_end":
                if current is None or frame.get("id") != current[0].id:
                    raise CorruptionError("a thread_end frame does not close the open thread")
                trec, head = current
                if head is not None:
                    driver.put(HEAD_NS, trec.id, ser.dumps(head, at=(HEAD_NS, trec.id)), if_absent=True)
                for lane_key, lane_head in lane_heads.items():
                    driver.put(
                        HEAD_NS, lane_key, ser.dumps(lane_head, at=(HEAD_NS, lane_key)), if_absent=True
                    )
                lane_heads.clear()
                if trec.external_key is not None:
                    tkey = thread_key_key(trec.external_key)
                    key_entry = ser.dumps(ThreadKey(trec.external_key, trec.id), at=(THREAD_KEY_NS, tkey))
                    driver.put(THREAD_KEY_NS, tkey, key_entry, if_absent=True)
                driver.put(THREAD_NS, trec.id, ser.dumps(trec, at=(THREAD_NS, trec.id)), if_absent=True)
                threads += 1
                current = None
            elif kind == "end":
                break
            else:
                raise CorruptionError(f"unknown export frame kind {kind!r}")
    if progress is not None:
        progress(done, done)
    return ExportReport(threads, done, blobs, size)
