"""Export and import of threads, written once as async code; ``_sync/export.py`` is generated from
it. The file work (open, read, write) runs in a worker thread in the async functions and directly
in the sync ones. The format is described in :mod:`runtime_persistence.checkpoint.export`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any, ParamSpec, Protocol, TypeAlias, TypeVar

from runtime_core import (
    ConflictError,
    CorruptionError,
    KeepupError,
    PendingWrite,
    Put,
    ValidationError,
    validate_id,
)

from runtime_persistence.artifact._async.artifacts import AsyncArtifacts
from runtime_persistence.artifact._records import ARTIFACT_NS
from runtime_persistence.artifact._records import Record as ArtifactRecord
from runtime_persistence.checkpoint._async.checkpoints import AsyncCheckpoints
from runtime_persistence.checkpoint._export_format import (
    EXPORT_MAGIC,
    EXPORT_VERSION,
    LEN,
    MAX_FRAME,
    PART_BYTES,
    READS_VERSIONS,
    SECTIONS_VERSION,
    ExportReport,
    FrameReader,
    FrameWriter,
    Progress,
    SnapshotSource,
    artifact_key_of,
    artifact_section,
    open_file,
    section_key,
    snapshot_section,
    spool_file,
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
from runtime_persistence.shadow_git._pack_records import PACK_FORMAT, PACK_NS, PackRecord
from runtime_persistence.shadow_git.sharing import is_full_commit

__all__ = ["AsyncExportSection", "export_threads", "import_threads"]

_P = ParamSpec("_P")
_Written: TypeAlias = Awaitable[None]  # sync: _Written: TypeAlias = None
_BlobFrame = Callable[[IO[bytes], bytes], _Written]
_R = TypeVar("_R")


class AsyncExportSection(Protocol):
    """The records of another repository that an export carries after its threads (sessions,
    tasks, events: :mod:`runtime_persistence.session.transfer` makes them, as the repositories
    stand above checkpoints). The export writes what :meth:`frames` yields; the import hands each
    frame of the section's ``kinds`` to :meth:`stage` while it verifies the file (which must
    check it as untrusted input, refuse what the target holds already, and write nothing), and
    then, once the whole file is verified, to :meth:`commit`, in file order."""

    name: str
    """Listed in the export header's ``with``."""
    kinds: frozenset[str]
    """The frame kinds of this section."""

    def frames(self, thread_ids: frozenset[str] | None) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """``(kind, fields)`` of each frame to write: the records that belong with
        ``thread_ids`` (None: every record of the store)."""
        ...

    async def stage(self, frame: dict[str, Any], threads: frozenset[str]) -> None:
        """Check one frame (``threads``: the threads the file carries); CorruptionError,
        ConflictError. Writes nothing."""
        ...

    async def commit(self, frame: dict[str, Any]) -> None:
        """Write one staged frame's records."""
        ...


async def _file(fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
    """Local file work: in a worker thread in async code."""
    return await asyncio.to_thread(fn, *args, **kwargs)  # sync: return fn(*args, **kwargs)


@asynccontextmanager
async def _opened(target: str | Path | IO[bytes], mode: str) -> AsyncIterator[IO[bytes]]:
    if isinstance(target, (str, Path)):
        fh = await _file(open_file, target, mode)
        try:
            yield fh
        finally:
            await _file(fh.close)
    else:
        yield target


async def export_threads(
    checkpoints: AsyncCheckpoints,
    dest: str | Path | IO[bytes],
    *,
    thread_ids: Sequence[str] | None = None,
    progress: Progress | None = None,
    snapshots: SnapshotSource | None = None,
    artifacts: bool = True,
    sections: Sequence[AsyncExportSection] = (),
    part_bytes: int = PART_BYTES,
) -> ExportReport:
    """Write ``thread_ids`` (default: every thread) with all their checkpoints, pending writes,
    pins, fork links and the blobs their states need to ``dest`` (a path or a binary file); with
    ``artifacts``, also the artifact versions their checkpoints name (records and contents); with
    ``snapshots`` (``workspace path -> ShadowGit``, e.g. ``Runtime.snapshots``), also the
    workspace snapshots they name, as one git pack per workspace, so the files restore on a
    fresh home. A snapshot that cannot be found is listed in the report's ``missing_snapshots``.
    Each of ``sections`` (see :class:`AsyncExportSection`) adds its records after the threads:
    those that belong with ``thread_ids``, or all of them when no thread is named. Blob and
    snapshot data over ``part_bytes`` is written in parts of at most that size, read from the
    store a chunk at a time, so no frame (and no buffer of the export) is larger.

    Reads a consistent view of each thread as of its head when the thread is reached; checkpoints
    saved meanwhile after that head are not included. Raises NotFoundError for an unknown thread."""
    driver = checkpoints.driver
    ser = checkpoints._ser
    ids = list(thread_ids) if thread_ids is not None else [e.key async for e in driver.scan(THREAD_NS)]
    if not 1 <= part_bytes <= MAX_FRAME // 2:
        raise ValueError(f"part_bytes must be between 1 and {MAX_FRAME // 2} (an import's frame cap)")
    for tid in ids:
        validate_id(tid, "thread id")
    exported = set(ids)
    plan: list[tuple[ThreadRecord, Head | None]] = []
    total = 0
    for tid in ids:
        trec, _ = await checkpoints._thread_rec(tid)
        head, _ = await checkpoints._head(tid)
        plan.append((trec, head))
        total += (head.seq + 1) if head else 0  # an upper bound (pruned slots are gaps)
    done = blobs = packs = arts = 0
    missing: list[str] = []
    written: set[bytes] = set()
    artifacts_written: set[str] = set()
    commits_written: set[str] = set()
    out = FrameWriter()
    records: dict[str, int] = {}

    async def blob_frame(fh: IO[bytes], ref: bytes) -> None:
        nonlocal blobs
        if ref in written:
            return
        written.add(ref)
        if ref[0] == LOC_AREA:
            spool = await _file(spool_file)
            try:
                async for chunk in driver.open_blob(ref_digest(ref)):
                    await _file(spool.write, chunk)
                await _parted(fh, out, spool, part_bytes, "blob", ref=ref)
            finally:
                await _file(spool.close)
        else:  # a key-value blob: small (KV_BLOB_MAX)
            data = await checkpoints._channels.read_blob(ref)
            await _file(fh.write, out.frame("blob", ref=ref, data=data))
        blobs += 1

    async with _opened(dest, "w") as fh:
        await _file(fh.write, out.start())
        with_ = {"with": [section.name for section in sections]} if sections else {}
        header = out.frame(
            "header",
            format="keepup-export",
            version=SECTIONS_VERSION if sections else EXPORT_VERSION,
            created_at=checkpoints._clock.now(),
            threads=[t.id for t, _ in plan],
            checkpoints=total,
            **with_,
        )
        await _file(fh.write, header)
        for trec, head in plan:
            thread = out.frame("thread", thread=to_plain(trec), head=to_plain(head) if head else None)
            await _file(fh.write, thread)
            if trec.forked_from is not None and trec.parent_thread_id is not None:
                try:
                    src_thread, src_seq = await checkpoints._locate(trec.forked_from)
                    if src_thread in exported:  # a link to a thread not in the file would be refused
                        await _file(
                            fh.write, out.frame("fork", key=f"{slot_key(src_thread, src_seq)}/{trec.id}")
                        )
                except LookupError:
                    pass
            workspaces: dict[str, list[str]] = {}
            for namespace in await checkpoints.namespaces(trec.id) or [""]:
                lane_ = lane(trec.id, namespace)
                lane_head = head if not namespace else (await checkpoints._head(lane_))[0]
                if namespace and lane_head is not None:
                    await _file(
                        fh.write, out.frame("lane_head", namespace=namespace, head=to_plain(lane_head))
                    )
                async for rec, writes in checkpoints._scan(
                    lane_,
                    reverse=False,
                    before=None if lane_head is None else slot_key(lane_, lane_head.seq) + "0",
                    page=256,
                ):
                    refs = list(iter_blob_refs(rec.channels))
                    for w in writes:
                        refs.extend(w.value.blobs)
                    for ref in refs:
                        await blob_frame(fh, ref)
                    if artifacts:
                        for scope, key, version in rec.artifacts:
                            arts += await _export_artifact(
                                checkpoints, fh, out, blob_frame, artifacts_written, scope, key, version
                            )
                    if rec.workspace is not None and rec.workspace[1] not in commits_written:
                        commits_written.add(rec.workspace[1])
                        workspaces.setdefault(rec.workspace[0], []).append(rec.workspace[1])
                    keyed = await checkpoints._keyed_writes_of(rec)
                    extra = {"keyed": [to_plain(w) for w in keyed]} if keyed else {}
                    frame = out.frame(
                        "checkpoint", record=to_plain(rec), writes=[to_plain(w) for w in writes], **extra
                    )
                    await _file(fh.write, frame)
                    done += 1
                    if progress is not None:
                        progress(done, total)
            async for entry in driver.scan(CKPT_PIN_NS, prefix=f"{trec.id}/"):
                reason: Any = ser.loads(entry.value, at=(CKPT_PIN_NS, entry.key))
                await _file(fh.write, out.frame("pin", key=entry.key, reason=reason))
            if snapshots is not None:
                for workspace, commits in workspaces.items():
                    packed, lost = await _file(_pack_snapshots, snapshots, workspace, commits)
                    missing.extend(lost)
                    if packed is not None:
                        found, path = packed
                        try:
                            async with _opened(path, "r") as pack:
                                await _parted(
                                    fh, out, pack, part_bytes, "snapshots", workspace=workspace, commits=found
                                )
                        finally:
                            await _file(path.unlink)
                        packs += 1
            await _file(fh.write, out.frame("thread_end", id=trec.id))
        wanted = frozenset(ids) if thread_ids is not None else None
        for section in sections:
            async for kind, fields in section.frames(wanted):
                if kind not in section.kinds:
                    raise ValueError(f"export section {section.name} wrote a {kind!r} frame")
                await _file(fh.write, out.frame(kind, **fields))
                records[kind] = records.get(kind, 0) + 1
        await _file(fh.write, out.end())
        await _file(fh.flush)
    if progress is not None:
        progress(done, done)
    return ExportReport(len(plan), done, blobs, out.bytes, packs, arts, tuple(missing), records)


async def _parted(
    fh: IO[bytes], out: FrameWriter, src: IO[bytes], part_bytes: int, kind: str, **fields: Any
) -> None:
    """Write the data of ``src`` (a local file) as one ``kind`` frame with ``fields``, or, when it
    is over ``part_bytes``, as that frame with the first part (and ``parts``, ``size``) followed
    by ``part`` frames: no frame holds more than ``part_bytes`` of data."""
    size = await _file(src.seek, 0, 2)
    await _file(src.seek, 0)
    parts = max(1, -(-size // part_bytes))
    counts = {"parts": parts, "size": size} if parts > 1 else {}
    first = await _file(src.read, part_bytes)
    await _file(fh.write, out.frame(kind, **fields, data=first, **counts))
    for index in range(1, parts):
        data = await _file(src.read, part_bytes)
        await _file(fh.write, out.frame("part", part=index, data=data))


def _pack_snapshots(
    snapshots: SnapshotSource, workspace: str, commits: list[str]
) -> tuple[tuple[list[str], Path] | None, list[str]]:
    """One pack file (the caller removes it) holding every snapshot of ``commits`` that the shadow repository of ``workspace``
    has (or fetches from its store), and the commits it could not find."""
    try:
        shadow = snapshots(workspace)
    except KeepupError:
        return None, list(commits)
    found: list[str] = []
    lost: list[str] = []
    for commit in commits:
        try:
            found.append(shadow._resolve(commit))
        except KeepupError:
            lost.append(commit)
    if not found:
        return None, lost
    return (found, shadow._pack_file(found, [])), lost


async def _export_artifact(
    checkpoints: AsyncCheckpoints,
    fh: IO[bytes],
    out: FrameWriter,
    blob_frame: _BlobFrame,
    seen: set[str],
    scope: str,
    key: str,
    version: int,
) -> int:
    """Write the artifact version a checkpoint names (its blobs, then its record) once per file;
    1 when written, 0 when already written or no longer stored."""
    try:
        rkey = artifact_key_of(scope, key, version)
    except ValidationError:
        return 0
    if rkey in seen:
        return 0
    seen.add(rkey)
    entry = await checkpoints.driver.get(ARTIFACT_NS, rkey)
    if entry is None:
        return 0
    rec: ArtifactRecord = checkpoints._ser.loads(entry.value, ArtifactRecord, at=(ARTIFACT_NS, rkey))
    for digest in (rec.digest, *rec.refs):
        await blob_frame(fh, bytes((LOC_AREA,)) + bytes.fromhex(digest))
    await _file(fh.write, out.frame("artifact", key=rkey, record=to_plain(rec)))
    return 1


async def _frames(
    fh: IO[bytes], copy: IO[bytes] | None = None, max_frame: int = MAX_FRAME
) -> AsyncIterator[dict[str, Any]]:
    """Verified frames of an export stream, ending with the (verified) end frame; every byte read
    is also written to ``copy`` when given. A frame longer than ``max_frame`` is refused before
    it is read."""
    reader = FrameReader(max_frame)

    async def read(n: int) -> bytes:
        data = await _file(fh.read, n)
        if copy is not None and data:
            await _file(copy.write, data)
        return data

    reader.magic(await read(len(EXPORT_MAGIC)))
    while True:
        head = await read(LEN.size)
        length = reader.length(head)
        frame, last = reader.frame(head, await read(length), length)
        if last:
            if await _file(fh.read, 1):
                raise CorruptionError("the export file has data after its end frame")
            yield frame
            return
        yield frame


_READ = 1 << 20


async def _whole(frames: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    """The frames with parted data put back together on disk: a ``blob`` or ``snapshots`` frame
    with ``parts`` is yielded once its ``part`` frames are read, with ``spool`` (a private
    temporary file holding the whole data, at its start; closed when the next frame is asked
    for). Refuses missing, extra and out-of-order parts and a ``size`` that does not add up
    (CorruptionError)."""
    async for frame in frames:
        kind = frame["k"]
        if kind == "part":
            raise CorruptionError("an export has a part frame that no blob or snapshots frame announced")
        parts = frame.get("parts")
        if parts is None:
            yield frame
            continue
        size = frame.get("size")
        first = frame.get("data")
        if (
            kind not in ("blob", "snapshots")
            or isinstance(parts, bool)
            or not isinstance(parts, int)
            or parts < 2
            or isinstance(size, bool)
            or not isinstance(size, int)
            or size < 0
            or not isinstance(first, bytes)
        ):
            raise CorruptionError(f"a {kind} frame announces malformed parts")
        spool = await _file(spool_file)
        try:
            await _file(spool.write, first)
            total = len(first)
            for index in range(1, parts):
                part = await anext(frames, None)
                if part is None or part["k"] != "part":
                    raise CorruptionError(
                        f"a {kind} frame announces {parts} parts but part {index} is missing"
                    )
                data = part.get("data")
                if part.get("part") != index or not isinstance(data, bytes):
                    raise CorruptionError(f"part {index} of a {kind} frame is out of order or malformed")
                total += len(data)
                if total > size:
                    raise CorruptionError(
                        f"the parts of a {kind} frame hold more than its size of {size} bytes"
                    )
                await _file(spool.write, data)
            if total != size:
                raise CorruptionError(
                    f"the parts of a {kind} frame hold {total} bytes, not its size of {size}"
                )
            await _file(spool.seek, 0)
            yield {**frame, "spool": spool}
        finally:
            await _file(spool.close)


async def _spool_chunks(spool: IO[bytes]) -> AsyncIterator[bytes]:
    await _file(spool.seek, 0)
    while chunk := await _file(spool.read, _READ):
        yield chunk


async def _spool_digest(spool: IO[bytes]) -> bytes:
    h = hashlib.sha256()
    async for chunk in _spool_chunks(spool):
        h.update(chunk)
    return h.digest()


class _Import:
    """One import: :meth:`stage` reads the untrusted file once, verifies every frame and the end
    checksum, refuses anything that names what the file does not carry, and stores only
    content-addressed blobs (which nothing names yet, so gc removes them if the import stops);
    :meth:`commit` then writes the records from the verified private copy."""

    def __init__(
        self,
        checkpoints: AsyncCheckpoints,
        progress: Progress | None,
        sections: Sequence[AsyncExportSection] = (),
        max_frame: int = MAX_FRAME,
    ) -> None:
        self.max_frame = max_frame
        self.checkpoints = checkpoints
        self.driver = checkpoints.driver
        self.ser = checkpoints._ser
        self.progress = progress
        self.threads = self.done = self.blobs = self.size = self.total = self.packs = self.arts = 0
        self.listed: set[str] = set()
        self.sections = {section.name: section for section in sections}
        self.by_kind = {kind: section for section in sections for kind in section.kinds}
        self.carried: frozenset[str] = frozenset()  # the sections the header names
        self.records: dict[str, int] = {}

    async def stage(self, fh: IO[bytes], copy: IO[bytes]) -> None:
        carried: set[bytes] = set()
        seen_threads: set[str] = set()
        current: tuple[ThreadRecord, Head | None] | None = None
        ids: set[str] = set()
        async for frame in _whole(_frames(fh, copy, self.max_frame)):
            kind = frame["k"]
            if kind == "header":
                self._header(frame)
            elif kind == "thread":
                if current is not None:
                    raise CorruptionError("a thread frame comes before the open thread's thread_end")
                current = thread_section(frame)
                tid = current[0].id
                if tid in seen_threads or tid not in self.listed:
                    raise CorruptionError(f"thread {tid} appears twice or is not listed in the export header")
                seen_threads.add(tid)
                ids = set()
                if await self.driver.get(THREAD_NS, tid) is not None:
                    raise ConflictError(
                        f"thread {tid} already exists in the target store; nothing was imported"
                    )
            elif kind == "blob":
                ref = await self._blob(frame)
                carried.add(ref)
            elif kind == "checkpoint":
                if current is None:
                    raise CorruptionError("a checkpoint frame comes before its thread frame")
                rec, writes = _checkpoint(frame, current[0].id)
                refs = list(iter_blob_refs(rec.channels))
                for w in writes:
                    refs.extend(w.value.blobs)
                if any(ref not in carried for ref in refs):
                    raise CorruptionError(
                        f"checkpoint {rec.id} names a blob the export does not carry; an import only "
                        "reads what it brings"
                    )
                await self.checkpoints._validated(rec, writes)  # full checks, on blobs it carries
                for kw in _keyed(frame, rec):
                    PendingWrite(
                        rec.id, kw.task_id, kw.channel, kw.value, kw.created_at, kw.task_path, kw.index
                    )
                ids.add(rec.id)
            elif kind == "lane_head":
                if current is None:
                    raise CorruptionError("a lane_head frame comes before its thread frame")
                _lane_head(frame)
            elif kind == "pin":
                key = section_key(frame, current)
                if key.split("/")[1] not in ids:
                    raise CorruptionError("a pin frame names a checkpoint its thread does not carry")
            elif kind == "fork":
                key = section_key(frame, current)
                if key.split("/")[0] not in self.listed:
                    raise CorruptionError(
                        "a fork frame links a checkpoint of a thread the export does not carry"
                    )
            elif kind == "artifact":
                rkey, arec = artifact_section(frame)
                if any(
                    bytes((LOC_AREA,)) + bytes.fromhex(d) not in carried for d in (arec.digest, *arec.refs)
                ):
                    raise CorruptionError(f"artifact record {rkey!r} names a blob the export does not carry")
                existing = await self.driver.get(ARTIFACT_NS, rkey)
                if (
                    existing is not None
                    and self.ser.loads(existing.value, ArtifactRecord, at=(ARTIFACT_NS, rkey)).digest
                    != arec.digest
                ):
                    raise ConflictError(
                        f"artifact {arec.scope}/{arec.key} version {arec.version} already exists in the target "
                        "store with other content; nothing was imported"
                    )
            elif kind == "snapshots":
                snapshot_section(frame)
                await self._put_pack(frame)
            elif kind == "thread_end":
                if current is None or frame.get("id") != current[0].id:
                    raise CorruptionError("a thread_end frame does not close the open thread")
                current = None
            elif kind == "end":
                if current is not None:
                    raise CorruptionError("the export ends inside a thread section")
            elif kind in self.by_kind:
                section = self.by_kind[kind]
                if section.name not in self.carried or current is not None:
                    raise CorruptionError(
                        f"a {kind} frame is inside a thread section or its section is not in the header"
                    )
                await section.stage(frame, frozenset(self.listed))
            else:
                raise CorruptionError(f"unknown export frame kind {kind!r}")
        if seen_threads != self.listed:
            raise CorruptionError("the export header lists threads the file does not carry")

    def _header(self, frame: dict[str, Any]) -> None:
        if frame.get("format") != "keepup-export":
            raise CorruptionError("not a Keepup export (its header names another format)")
        if frame.get("version") not in READS_VERSIONS:
            raise ValidationError(
                f"export format version {frame.get('version')!r} is not supported (this reads "
                f"{', '.join(map(str, READS_VERSIONS))})"
            )
        total = frame.get("checkpoints", 0)
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise CorruptionError("the export header's checkpoint count is not a count")
        listed = frame.get("threads", [])
        if not isinstance(listed, list) or not all(isinstance(t, str) for t in listed):
            raise CorruptionError("the export header's thread list is not a list of ids")
        carried = frame.get("with", [])
        if not isinstance(carried, list) or not all(isinstance(n, str) for n in carried):
            raise CorruptionError("the export header's section list is not a list of names")
        unread = [name for name in carried if name not in self.sections]
        if unread:
            raise ValidationError(
                f"this export also carries {', '.join(map(str, unread))}: import it with "
                "runtime_persistence.session.transfer.import_all (keepup checkpoint import does)"
            )
        self.total = total
        self.listed = set(listed)
        self.carried = frozenset(carried)

    async def _blob(self, frame: dict[str, Any]) -> bytes:
        """Verify a ``blob`` frame's data against its ref and store it; its ref."""
        ref, data = _blob_ref(frame)
        spool: IO[bytes] | None = frame.get("spool")
        if spool is None:
            if hashlib.sha256(data).digest() != ref[1:]:
                raise CorruptionError(f"blob {ref_digest(ref)} in the export does not match its digest")
        elif ref[0] == LOC_KV:
            raise CorruptionError("a key-value blob frame has parts (key-value blobs are small)")
        elif await _spool_digest(spool) != ref[1:]:
            raise CorruptionError(f"blob {ref_digest(ref)} in the export does not match its digest")
        if ref[0] == LOC_KV:
            await self.driver.batch([self.checkpoints._channels.kv_put_for(ref, data)])
        elif spool is None:
            await self.driver.put_blob(data, ref_digest(ref))
        else:
            info = await self.driver.put_blob_stream(_spool_chunks(spool))
            if info.digest != ref_digest(ref):  # pragma: no cover - the spool was verified above
                raise CorruptionError(f"blob {ref_digest(ref)} changed while it was stored")
        return ref

    async def _put_pack(self, frame: dict[str, Any]) -> Any:
        spool: IO[bytes] | None = frame.get("spool")
        if spool is None:
            return await self.driver.put_blob(frame["data"])
        return await self.driver.put_blob_stream(_spool_chunks(spool))

    async def commit(self, fh: IO[bytes]) -> None:
        current: tuple[ThreadRecord, Head | None] | None = None
        lane_heads: dict[str, Head] = {}
        ser = self.ser
        async for frame in _whole(_frames(fh, None, self.max_frame)):
            kind = frame["k"]
            if kind == "thread":
                current = thread_section(frame)
            elif kind == "blob":
                self.blobs += 1
                self.size += frame.get("size", len(frame["data"]))
            elif kind == "checkpoint" and current is not None:
                rec, writes = _checkpoint(frame, current[0].id)
                slot = slot_key(lane_of(rec), rec.seq)
                ops: list[Put] = [
                    Put(
                        CKPT_ID_NS,
                        rec.id,
                        ser.dumps(IdEntry(rec.thread_id, rec.seq, rec.namespace), at=(CKPT_ID_NS, rec.id)),
                        if_absent=True,
                    ),
                    *(await self.checkpoints._indexes(rec, first=True)),
                    Put(CKPT_NS, slot, ser.dumps(rec, at=(CKPT_NS, slot)), if_absent=True),
                ]
                for w in writes:
                    wkey = write_key(slot, w.task_id, w.channel)
                    ops.append(Put(CKPT_NS, wkey, ser.dumps(w, at=(CKPT_NS, wkey))))
                for kw in _keyed(frame, rec):
                    kkey = keyed_write_key(lane_of(rec), rec.key or "", kw.task_id, kw.index)
                    ops.append(Put(CKPT_WRITE_NS, kkey, ser.dumps(kw, at=(CKPT_WRITE_NS, kkey))))
                await self.driver.batch(ops)
                self.done += 1
                if self.progress is not None:
                    self.progress(self.done, max(self.total, self.done))
            elif kind == "lane_head" and current is not None:
                namespace, lane_head = _lane_head(frame)
                lane_heads[lane(current[0].id, namespace)] = lane_head
            elif kind == "pin":
                key = section_key(frame, current)
                reason = ser.dumps(str(frame.get("reason", "pinned")), at=(CKPT_PIN_NS, key))
                await self.driver.put(CKPT_PIN_NS, key, reason)
            elif kind == "fork":
                await self.driver.put(FORK_NS, section_key(frame, current), b"\x01")
            elif kind == "artifact":
                await self._artifact(frame)
            elif kind == "snapshots":
                await self._snapshots(frame)
            elif kind in self.by_kind:
                await self.by_kind[kind].commit(frame)
                self.records[kind] = self.records.get(kind, 0) + 1
            elif kind == "thread_end" and current is not None:
                trec, head = current
                if head is not None:
                    await self.driver.put(
                        HEAD_NS, trec.id, ser.dumps(head, at=(HEAD_NS, trec.id)), if_absent=True
                    )
                for lane_key, lane_head in lane_heads.items():
                    await self.driver.put(
                        HEAD_NS, lane_key, ser.dumps(lane_head, at=(HEAD_NS, lane_key)), if_absent=True
                    )
                lane_heads.clear()
                if trec.external_key is not None:
                    tkey = thread_key_key(trec.external_key)
                    key_entry = ser.dumps(ThreadKey(trec.external_key, trec.id), at=(THREAD_KEY_NS, tkey))
                    await self.driver.put(THREAD_KEY_NS, tkey, key_entry, if_absent=True)
                await self.driver.put(
                    THREAD_NS, trec.id, ser.dumps(trec, at=(THREAD_NS, trec.id)), if_absent=True
                )
                self.threads += 1
                current = None

    async def _artifact(self, frame: dict[str, Any]) -> None:
        rkey, arec = artifact_section(frame)
        with contextlib.suppress(ConflictError):  # the same version, same content (checked while staging)
            await self.driver.put(
                ARTIFACT_NS, rkey, self.ser.dumps(arec, at=(ARTIFACT_NS, rkey)), if_absent=True
            )
        series = rkey.rsplit("\x1f", 1)[0]
        await AsyncArtifacts(self.driver, serializer=self.ser)._raise_hwm(series, arec.version + 1)
        self.arts += 1

    async def _snapshots(self, frame: dict[str, Any]) -> None:
        commits, _ = snapshot_section(frame)
        info = await self._put_pack(frame)
        now = self.checkpoints._clock.now()
        for commit in commits:
            record = PackRecord(PACK_FORMAT, commit, info.digest, info.size, [], now)
            with contextlib.suppress(ConflictError):  # the store already holds this snapshot
                await self.driver.put(
                    PACK_NS, commit, self.ser.dumps(record, at=(PACK_NS, commit)), if_absent=True
                )
        self.packs += 1


def _blob_ref(frame: dict[str, Any]) -> tuple[bytes, bytes]:
    """The ref and (first part of the) data of a ``blob`` frame, not yet verified."""
    ref = frame.get("ref")
    data = frame.get("data")
    if not isinstance(ref, bytes) or len(ref) != 33 or not isinstance(data, bytes):
        raise CorruptionError("a blob frame is malformed")
    if ref[0] not in (LOC_KV, LOC_AREA):
        raise CorruptionError("a blob frame names an unknown location")
    return ref, data


def _checkpoint(frame: dict[str, Any], thread_id: str) -> tuple[Record, list[WriteRecord]]:
    rec = typed(frame.get("record"), Record)
    writes = [typed(w, WriteRecord) for w in typed(frame.get("writes", []), list)]
    if rec.thread_id != thread_id:
        raise CorruptionError("a checkpoint frame belongs to another thread than its section")
    if not is_record_key(slot_key(lane_of(rec), rec.seq), lane_of(rec)):
        raise CorruptionError("a checkpoint frame has an invalid sequence number")
    if rec.workspace is not None and not is_full_commit(rec.workspace[1]):
        raise CorruptionError("a checkpoint frame names a workspace snapshot that is not a commit id")
    return rec, writes


def _keyed(frame: dict[str, Any], rec: Record) -> list[KeyedWrite]:
    """The keyed pending writes a checkpoint frame carries (LangGraph's writes saved by key)."""
    keyed = [typed(w, KeyedWrite) for w in typed(frame.get("keyed", []), list)]
    if keyed and rec.key is None:
        raise CorruptionError("a checkpoint frame has keyed writes but no key")
    return keyed


def _lane_head(frame: dict[str, Any]) -> tuple[str, Head]:
    """(namespace, head) of a ``lane_head`` frame: the head of one checkpoint namespace."""
    namespace = frame.get("namespace")
    if not isinstance(namespace, str) or not namespace:
        raise CorruptionError("a lane_head frame names no namespace")
    return namespace, typed(frame.get("head"), Head)


async def import_threads(
    checkpoints: AsyncCheckpoints,
    src: str | Path | IO[bytes],
    *,
    progress: Progress | None = None,
    sections: Sequence[AsyncExportSection] = (),
    max_frame: int = MAX_FRAME,
) -> ExportReport:
    """Read an export made by :func:`export_threads` into ``checkpoints``' store, keeping every id,
    with the artifact versions and workspace snapshots it carries (snapshots go to the store's
    pack records, so any home on this store restores their files), and the records of the
    ``sections`` it carries (a file that carries a section not given raises ValidationError
    before anything is stored).

    Stage, then commit: the whole file is read and verified first (framing, every checksum and
    blob digest, the end checksum, every record's checks, and that each record names only blobs,
    checkpoints and threads the file itself carries), into a private copy, and only its
    content-addressed blobs are stored meanwhile. Then the records are written from that copy.
    Raises CorruptionError for a damaged, truncated, foreign or forged file and ConflictError
    when a thread (or an artifact version with other content) already exists in the target, in
    both cases before any record is written; ValidationError for an unsupported format version.

    Memory stays bounded by the frame cap: a frame longer than ``max_frame`` (default
    :data:`MAX_FRAME`, 64 MiB) is refused before it is read, and blob or snapshot data an export
    wrote in parts is put together in a private temporary file, not in memory."""
    job = _Import(checkpoints, progress, sections, max_frame)
    spool = await _file(spool_file)
    try:
        async with _opened(src, "r") as fh:
            await job.stage(fh, spool)
        await _file(spool.seek, 0)
        await job.commit(spool)
    finally:
        await _file(spool.close)
    if progress is not None:
        progress(job.done, job.done)
    return ExportReport(job.threads, job.done, job.blobs, job.size, job.packs, job.arts, records=job.records)
