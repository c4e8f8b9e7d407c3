"""A crash-consistency harness in the style of ALICE and CrashMonkey, for the file driver.

``kill -9`` never loses what already reached the kernel; a power loss can. This module answers
"what could the disk hold if the power failed at any moment of this workload?" and lets a test
check every such state with the real driver.

1. **Record.** :func:`recording` instruments the OS layer of *this* process (``os.open``,
   ``os.write``, ``os.fsync``, ``os.close``, ``os.replace``, ``os.rename``, ``os.link``,
   ``os.unlink``, ``os.mkdir``, ``os.rmdir``, ``os.ftruncate`` and ``open``/``io.open`` in
   write modes) while a workload runs the real driver on a real directory. Only calls on paths
   under that directory are logged, as logical operations on inodes: ``mkdir``, ``creat``,
   ``trunc``, ``write(inode, offset, bytes)``, ``rename``, ``link``, ``unlink``, ``rmdir``,
   ``fsync(inode)`` and ``fsync_dir``. Nothing of the driver is replaced: the calls really happen.
2. **Build crash states.** :func:`crash_states` yields, for every crash point (each prefix of the
   log), the states a power loss could leave. The persistence model is deliberately weaker than
   any real file system (ALICE's "arbitrary reordering" model):

   * a ``write`` is persisted only by a later ``fsync`` of its inode; until then it may be lost,
     torn (its first half kept), or kept;
   * a namespace operation (``creat``, ``mkdir``, ``rename``, ``link``, ``unlink``, ``rmdir``) is
     persisted only by a later ``fsync_dir`` of the directory holding the (new) name; until then
     it may be lost, independently of the others. A ``rename`` is atomic: all or nothing;
   * an ``fsync`` of a file does *not* persist its name (POSIX; ext4 is stronger).

   Not-yet-persisted operations may be lost in any combination, so per crash point the harness
   takes: nothing lost (the prefix), everything pending lost, everything pending since the last
   barrier lost, each single pending operation lost (and each pending write torn), each pair
   while there are few, then random subsets from a fixed seed, up to ``per_point`` candidates.
   Identical resulting trees are checked once.
3. **Replay and check.** :meth:`CrashState.materialize` writes a state into a fresh directory;
   :class:`KVOracle` knows, from the workload's own log of calls and their return points, which
   values each key and blob may hold at each crash point: an acknowledged call's effect must be
   there, an in-flight call's effect may or may not be, nothing else may appear.

Used by ``tests/test_crash_consistency.py``; the figures are in ``docs/security.md``
("Crash consistency").
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import io
import itertools
import os
import random
import shutil
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime_core import ConflictError

__all__ = [
    "CrashState",
    "KVOracle",
    "Op",
    "Recorder",
    "crash_states",
    "kill_at_call",
    "recording",
]

_NAMESPACE_KINDS = frozenset({"mkdir", "creat", "rename", "link", "unlink", "rmdir"})


@dataclass(frozen=True)
class Op:
    """One logged file-system operation; paths are relative to the recorded root (``""`` is
    the root itself)."""

    kind: str
    path: str = ""
    dst: str = ""
    ino: int = 0
    offset: int = 0
    data: bytes = b""

    def directory(self) -> str:
        """The directory whose fsync persists this namespace operation."""
        name = self.dst if self.kind in ("rename", "link") else self.path
        return os.path.dirname(name)

    def describe(self) -> str:
        if self.kind == "write":
            return f"write(ino {self.ino}, @{self.offset}, {len(self.data)} bytes)"
        if self.kind in ("rename", "link"):
            return f"{self.kind}({self.path} -> {self.dst})"
        if self.kind in ("fsync", "trunc"):
            return f"{self.kind}(ino {self.ino})"
        return f"{self.kind}({self.path})"


class Recorder:
    """The operation log of one recorded directory, and the live name -> inode map used to
    attribute writes and fsyncs to inodes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self.ops: list[Op] = []
        self.initial_dirs: set[str] = set()
        self.initial_files: dict[str, bytes] = {}
        self._live: dict[str, int] = {}
        self._fds: dict[int, tuple[str, str, int]] = {}  # fd -> (kind, rel path, ino)
        self._next_ino = 1
        self.drop_file_fsync = False  # fault injection: behave like a driver that skips fsync(file)
        self.drop_sync = False  # fault injection: behave like code that never calls os.sync()
        self.unrecorded = 0  # calls relative to an unknown dir_fd: not attributable (must stay 0)
        self.on_sync: Callable[[int], None] | None = None  # called with the log position of os.sync()
        for dirpath, _dirnames, filenames in os.walk(self.root):
            rel = os.path.relpath(dirpath, self.root)
            rel = "" if rel == "." else rel
            self.initial_dirs.add(rel)
            for name in filenames:
                path = os.path.join(rel, name)
                self.initial_files[path] = Path(dirpath, name).read_bytes()
                self._live[path] = self._new_ino()
        self.initial_inodes = dict(self._live)

    def _new_ino(self) -> int:
        self._next_ino += 1
        return self._next_ino - 1

    def rel(self, path: Any) -> str | None:
        if isinstance(path, int):
            return None
        full = os.path.abspath(os.fsdecode(os.fspath(path)))
        root = str(self.root)
        if full == root:
            return ""
        if full.startswith(root + os.sep):
            return full[len(root) + 1 :]
        return None

    def rel_at(self, path: Any, dir_fd: int | None) -> str | None:
        """``path`` relative to the root, resolving a name relative to ``dir_fd`` when that is a
        folder under the root this recorder saw opened; None for anything else."""
        if dir_fd is None:
            return self.rel(path)
        found = self._fds.get(dir_fd)
        if found is None or found[0] != "dir" or isinstance(path, int):
            return None
        name = os.fsdecode(os.fspath(path))
        if os.path.isabs(name):
            return self.rel(name)
        joined = os.path.normpath(os.path.join(found[1], name)) if found[1] else os.path.normpath(name)
        return None if joined == ".." or joined.startswith("../") else ("" if joined == "." else joined)

    def synced_all(self) -> None:
        """``os.sync()``: everything issued so far is durable (a global barrier)."""
        self.ops.append(Op("sync"))
        if self.on_sync is not None:
            self.on_sync(len(self.ops))

    @property
    def position(self) -> int:
        """The number of operations logged so far (a crash point)."""
        return len(self.ops)

    # events ----------------------------------------------------------------------------------
    def opened(self, fd: int, rel: str, existed: bool, create: bool, trunc: bool, directory: bool) -> None:
        if directory:
            self._fds[fd] = ("dir", rel, 0)
            return
        if not existed and create:
            ino = self._new_ino()
            self._live[rel] = ino
            self.ops.append(Op("creat", rel, ino=ino))
        else:
            ino = self._live.setdefault(rel, self._new_ino())
            if trunc:
                self.ops.append(Op("trunc", rel, ino=ino))
        self._fds[fd] = ("file", rel, ino)

    def wrote(self, fd: int, offset: int, data: bytes) -> None:
        found = self._fds.get(fd)
        if found is not None and found[0] == "file" and data:
            self.ops.append(Op("write", found[1], ino=found[2], offset=offset, data=data))

    def synced(self, fd: int) -> None:
        found = self._fds.get(fd)
        if found is None:
            return
        if found[0] == "dir":
            self.ops.append(Op("fsync_dir", found[1]))
        else:
            self.ops.append(Op("fsync", found[1], ino=found[2]))

    def tracks(self, fd: int) -> bool:
        return fd in self._fds

    def closed(self, fd: int) -> None:
        self._fds.pop(fd, None)

    def renamed(self, src: str, dst: str) -> None:
        ino = self._live.pop(src, 0) or self._new_ino()
        self._live[dst] = ino
        self.ops.append(Op("rename", src, dst, ino=ino))

    def linked(self, src: str, dst: str) -> None:
        ino = self._live.setdefault(src, self._new_ino())
        self._live[dst] = ino
        self.ops.append(Op("link", src, dst, ino=ino))

    def unlinked(self, rel: str) -> None:
        self._live.pop(rel, None)
        self.ops.append(Op("unlink", rel))

    def made_dir(self, rel: str) -> None:
        self.ops.append(Op("mkdir", rel))

    def removed_dir(self, rel: str) -> None:
        self.ops.append(Op("rmdir", rel))

    def truncated(self, fd: int, length: int) -> None:
        found = self._fds.get(fd)
        if found is not None and found[0] == "file":
            self.ops.append(Op("trunc", found[1], ino=found[2], offset=length))


class _RecordingFile:
    """A binary file opened for writing under the recorded root: unbuffered, each ``write``
    logged at its offset."""

    def __init__(self, raw: Any, recorder: Recorder) -> None:
        self._raw = raw
        self._recorder = recorder
        self._fd = raw.fileno()

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        total = 0
        while total < len(view):
            offset = self._raw.tell()
            n = self._raw.write(view[total:])
            if not n:
                break
            self._recorder.wrote(self._fd, offset, bytes(view[total : total + n]))
            total += n
        return total

    def close(self) -> None:
        self._recorder.closed(self._fd)
        self._raw.close()

    def __enter__(self) -> _RecordingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


@contextlib.contextmanager
def recording(root: str | os.PathLike[str]) -> Iterator[Recorder]:
    """Log every file-system call this process makes under ``root`` while the block runs.

    The real calls happen (this is instrumentation, not a fake file system). Single-threaded
    workloads only: the log is one sequence."""
    rec = Recorder(Path(root))
    real = {
        name: getattr(os, name)
        for name in (
            "open",
            "write",
            "fsync",
            "close",
            "replace",
            "rename",
            "link",
            "unlink",
            "remove",
            "mkdir",
            "rmdir",
            "ftruncate",
            "fdopen",
            "sync",
            "symlink",
        )
    }
    real_open = builtins.open

    def _open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        rel = rec.rel_at(path, dir_fd)
        rec.unrecorded += dir_fd is not None and rel is None
        existed = rel is not None and os.path.lexists(os.path.join(rec.root, rel))
        fd: int = real["open"](path, flags, mode, dir_fd=dir_fd)
        if rel is not None:
            rec.opened(
                fd,
                rel,
                existed,
                bool(flags & os.O_CREAT),
                bool(flags & os.O_TRUNC),
                bool(flags & os.O_DIRECTORY) or os.path.isdir(os.path.join(rec.root, rel)),
            )
        return fd

    def _write(fd: int, data: Any) -> int:
        if not rec.tracks(fd):
            return int(real["write"](fd, data))
        offset = os.lseek(fd, 0, os.SEEK_CUR)
        n = int(real["write"](fd, data))
        rec.wrote(fd, offset, bytes(memoryview(data).cast("B")[:n]))
        return n

    def _fsync(fd: Any) -> None:
        num = fd if isinstance(fd, int) else fd.fileno()
        if rec.drop_file_fsync and rec.tracks(num) and rec._fds[num][0] == "file":
            return
        real["fsync"](fd)
        rec.synced(num)

    def _close(fd: int) -> None:
        real["close"](fd)
        rec.closed(fd)

    def _rename_like(name: str) -> Callable[..., None]:
        def _impl(src: Any, dst: Any, **kw: Any) -> None:
            real[name](src, dst, **kw)
            rs, rd = rec.rel_at(src, kw.get("src_dir_fd")), rec.rel_at(dst, kw.get("dst_dir_fd"))
            rec.unrecorded += bool(kw) and (rs is None or rd is None)
            if rs is not None and rd is not None:
                if name == "link":
                    rec.linked(rs, rd)
                else:
                    rec.renamed(rs, rd)

        return _impl

    def _unlink(path: Any, *, dir_fd: int | None = None) -> None:
        rel = rec.rel_at(path, dir_fd)
        real["unlink"](path, dir_fd=dir_fd)
        rec.unrecorded += dir_fd is not None and rel is None
        if rel is not None:
            rec.unlinked(rel)

    def _mkdir(path: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        rel = rec.rel_at(path, dir_fd)
        real["mkdir"](path, mode, dir_fd=dir_fd)
        rec.unrecorded += dir_fd is not None and rel is None
        if rel is not None:
            rec.made_dir(rel)

    def _rmdir(path: Any, *, dir_fd: int | None = None) -> None:
        rel = rec.rel_at(path, dir_fd)
        real["rmdir"](path, dir_fd=dir_fd)
        rec.unrecorded += dir_fd is not None and rel is None
        if rel is not None:
            rec.removed_dir(rel)

    def _fdopen(fd: int, mode: str = "r", buffering: int = -1, *args: Any, **kwargs: Any) -> Any:
        if not rec.tracks(fd) or rec._fds[fd][0] != "file" or not any(c in mode for c in "wxa+"):
            return real["fdopen"](fd, mode, buffering, *args, **kwargs)
        if "b" not in mode:
            raise AssertionError(f"the crash recorder supports binary writes only, got mode {mode!r}")
        return _RecordingFile(real["fdopen"](fd, mode, 0, *args, **kwargs), rec)

    def _sync() -> None:
        if rec.drop_sync:
            return
        real["sync"]()
        rec.synced_all()

    def _symlink(src: Any, dst: Any, target_is_directory: bool = False, *, dir_fd: int | None = None) -> None:
        real["symlink"](src, dst, target_is_directory, dir_fd=dir_fd)
        rec.unrecorded += rec.rel_at(dst, dir_fd) is not None  # symlinks are not modelled

    def _ftruncate(fd: int, length: int) -> None:
        real["ftruncate"](fd, length)
        rec.truncated(fd, length)

    def _io_open(file: Any, mode: str = "r", buffering: int = -1, *args: Any, **kwargs: Any) -> Any:
        rel = rec.rel(file) if isinstance(file, (str, bytes, os.PathLike)) else None
        if rel is None or not any(c in mode for c in "wxa+"):
            return real_open(file, mode, buffering, *args, **kwargs)
        if "b" not in mode:
            raise AssertionError(f"the crash recorder supports binary writes only, got mode {mode!r}")
        existed = os.path.lexists(os.path.join(rec.root, rel))
        raw = real_open(file, mode, 0, *args, **kwargs)
        rec.opened(raw.fileno(), rel, existed, "r" not in mode, "w" in mode, False)
        return _RecordingFile(raw, rec)

    patches: list[tuple[Any, str, Any]] = [
        (os, "open", _open),
        (os, "write", _write),
        (os, "fsync", _fsync),
        (os, "close", _close),
        (os, "replace", _rename_like("replace")),
        (os, "rename", _rename_like("rename")),
        (os, "link", _rename_like("link")),
        (os, "unlink", _unlink),
        (os, "remove", _unlink),
        (os, "mkdir", _mkdir),
        (os, "rmdir", _rmdir),
        (os, "ftruncate", _ftruncate),
        (os, "fdopen", _fdopen),
        (os, "sync", _sync),
        (os, "symlink", _symlink),
        (io, "open", _io_open),
        (builtins, "open", _io_open),
    ]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    for obj, name, new in patches:
        setattr(obj, name, new)
    try:
        yield rec
    finally:
        for obj, name, old in saved:
            setattr(obj, name, old)


# crash states ------------------------------------------------------------------------------------
@dataclass
class CrashState:
    """One tree a power loss could leave: the crash point (operations issued), what was lost."""

    point: int
    lost: frozenset[int]
    torn: frozenset[int]
    dirs: frozenset[str]
    files: dict[str, bytes] = field(default_factory=dict)

    def fingerprint(self) -> bytes:
        h = hashlib.blake2b(digest_size=16)
        for d in sorted(self.dirs):
            h.update(b"D" + d.encode() + b"\x00")
        for name in sorted(self.files):
            h.update(b"F" + name.encode() + b"\x00" + hashlib.blake2b(self.files[name]).digest())
        return h.digest()

    def materialize(self, target: Path, *, past: float = 3600.0) -> None:
        """Write this state into ``target`` (emptied first). Every file gets an mtime ``past``
        seconds ago: the machine rebooted, time moved on."""
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        stamp = time.time() - past
        for d in sorted(self.dirs):
            if d:
                (target / d).mkdir()
        for name, data in self.files.items():
            path = target / name
            path.write_bytes(data)
            os.utime(path, (stamp, stamp))


def _build(
    rec: Recorder, ops: list[Op], point: int, lost: frozenset[int], torn: frozenset[int]
) -> CrashState:
    dirs = set(rec.initial_dirs)
    entries: dict[str, int] = dict(rec.initial_inodes)
    data: dict[int, bytearray] = {
        ino: bytearray(rec.initial_files[p]) for p, ino in rec.initial_inodes.items()
    }
    for i in range(point):
        if i in lost:
            continue
        op = ops[i]
        kind = op.kind
        if kind == "mkdir":
            dirs.add(op.path)
        elif kind == "rmdir":
            dirs.discard(op.path)
        elif kind == "creat":
            entries[op.path] = op.ino
            data.setdefault(op.ino, bytearray())
        elif kind == "trunc":
            buf = data.setdefault(op.ino, bytearray())
            del buf[op.offset :]
        elif kind == "write":
            buf = data.setdefault(op.ino, bytearray())
            chunk = op.data[: len(op.data) // 2] if i in torn else op.data
            end = op.offset + len(chunk)
            if len(buf) < op.offset:
                buf.extend(b"\x00" * (op.offset - len(buf)))
            buf[op.offset : end] = chunk
        elif kind == "rename":
            entries.pop(op.path, None)
            entries[op.dst] = op.ino
            data.setdefault(op.ino, bytearray())
        elif kind == "link":
            entries[op.dst] = op.ino
            data.setdefault(op.ino, bytearray())
        elif kind == "unlink":
            entries.pop(op.path, None)

    def reachable(d: str) -> bool:
        while d:
            if d not in dirs:
                return False
            d = os.path.dirname(d)
        return True

    live_dirs = frozenset(d for d in dirs if reachable(d))
    files = {p: bytes(data[ino]) for p, ino in entries.items() if os.path.dirname(p) in live_dirs}
    return CrashState(point, lost, torn, live_dirs, files)


def crash_states(
    rec: Recorder,
    *,
    per_point: int = 24,
    pairs_up_to: int = 10,
    seed: int = 0,
    start: int = 0,
    counter: dict[str, int] | None = None,
    phase: Callable[[int], Hashable] | None = None,
) -> Iterator[CrashState]:
    """Every distinct state a power loss could leave at each crash point ``start..len(log)``,
    bounded to ``per_point`` candidates per point (see the module docstring for the model).

    A tree is checked once per *phase*: ``phase(point)`` names what the checker expects at a
    point (e.g. :meth:`KVOracle.phase`); by default every point is its own phase. The same tree
    at two points with different expectations is two states.

    ``counter`` (if given) receives ``points``, ``candidates`` and ``distinct``."""
    ops = list(rec.ops)
    counts = counter if counter is not None else {}
    counts.setdefault("points", 0)
    counts.setdefault("candidates", 0)
    counts.setdefault("distinct", 0)
    seen: set[bytes] = set()
    pending: list[int] = []  # not yet persisted, in log order
    last_barrier = 0
    for point in range(len(ops) + 1):
        if point:
            op = ops[point - 1]
            if op.kind == "fsync":
                pending = [
                    i for i in pending if not (ops[i].kind in ("write", "trunc") and ops[i].ino == op.ino)
                ]
                last_barrier = point
            elif op.kind == "sync":
                pending = []
                last_barrier = point
            elif op.kind == "fsync_dir":
                pending = [
                    i
                    for i in pending
                    if not (ops[i].kind in _NAMESPACE_KINDS and ops[i].directory() == op.path)
                ]
                last_barrier = point
            else:
                pending.append(point - 1)
        if point < start:
            continue
        counts["points"] += 1
        rng = random.Random(f"{seed}:{point}")
        writes = [i for i in pending if ops[i].kind == "write" and len(ops[i].data) > 1]
        epoch = [i for i in pending if i >= last_barrier]
        # dropping a creat whose name a later operation of the prefix removes changes nothing alone
        gone = {ops[j].path for j in range(point) if ops[j].kind in ("rename", "unlink")}
        effective = [i for i in pending if not (ops[i].kind == "creat" and ops[i].path in gone)]
        singles = sorted(effective, key=lambda i: (i < last_barrier, -i))
        fixed: list[tuple[frozenset[int], frozenset[int]]] = [
            (frozenset(), frozenset()),
            (frozenset(pending), frozenset()),
            (frozenset(epoch), frozenset()),
            (frozenset(), frozenset(writes)),
        ]
        fixed += [(frozenset(), frozenset({i})) for i in writes]
        fixed += [(frozenset({i}), frozenset()) for i in singles]
        if len(epoch) <= pairs_up_to:
            fixed += [(frozenset(p), frozenset()) for p in itertools.combinations(epoch, 2)]
        budget = max(per_point - per_point // 4, 4)
        candidates = fixed[:budget]
        tries = 0
        while len(candidates) < per_point and len(pending) > 1 and tries < 4 * per_point:
            tries += 1
            lost = frozenset(i for i in pending if rng.random() < 0.5)
            torn = frozenset(i for i in writes if i not in lost and rng.random() < 0.25)
            candidates.append((lost, torn))
        candidates += fixed[budget : budget + per_point - len(candidates)]
        for lost, torn in candidates:
            counts["candidates"] += 1
            state = _build(rec, ops, point, lost, torn)
            fp = repr(phase(point) if phase is not None else point).encode() + state.fingerprint()
            if fp in seen:
                continue
            seen.add(fp)
            counts["distinct"] += 1
            yield state


# the oracle --------------------------------------------------------------------------------------
ABSENT: tuple[bytes, int] | None = None


@dataclass
class _Call:
    label: str
    start: int
    end: int
    kv: list[tuple[tuple[str, str], tuple[bytes, int] | None]]
    blobs: dict[str, bytes]


class KVOracle:
    """What each key and blob may hold at each crash point, from the workload's calls.

    Run each driver call through :meth:`call`; it notes the log position before the call and
    after it returned, and the effect the call reported (a put's new version, a delete's
    result, a batch's results, a blob's digest; a ConflictError has no effect). A call is
    *acknowledged* at a crash point at or after its end: its effect must be visible. A call in
    flight may show any prefix of its effects (batches are not atomic on the file driver)."""

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec
        self.calls: list[_Call] = []
        self.keys: set[tuple[str, str]] = set()
        self.blobs: dict[str, bytes] = {}

    def call(self, label: str, fn: Callable[[], Any], *, effect: Callable[[Any], Any]) -> Any:
        """Run ``fn``; ``effect(result)`` returns ``(kv_effects, blob_effects)``."""
        start = self.rec.position
        try:
            result = fn()
        except ConflictError as exc:  # a lost condition: no effect
            self.calls.append(_Call(label, start, self.rec.position, [], {}))
            return exc
        kv, blobs = effect(result)
        for slot, _ in kv:
            self.keys.add(slot)
        self.blobs.update(blobs)
        self.calls.append(_Call(label, start, self.rec.position, kv, dict(blobs)))
        return result

    def phase(self, point: int) -> tuple[int, int]:
        """``(calls acknowledged, call in flight or -1)`` at ``point``: the expectations change
        only when this does."""
        done, flight = 0, -1
        for n, c in enumerate(self.calls):
            if c.end <= point:
                done += 1
            elif c.start < point:
                flight = n
        return done, flight

    def allowed(self, point: int) -> tuple[dict[tuple[str, str], set[Any]], dict[str, bool | None], str]:
        """``(keys, blobs, in_flight)``: per key the set of allowed ``(value, version)`` or None
        (absent); per blob True (must be there), None (may be there)."""
        current: dict[tuple[str, str], Any] = dict.fromkeys(self.keys, ABSENT)
        blobs: dict[str, bool | None] = {}
        flight: _Call | None = None
        for c in self.calls:
            if c.end <= point:
                for slot, val in c.kv:
                    current[slot] = val
                for d in c.blobs:
                    blobs[d] = True
            elif c.start < point:
                flight = c
        allowed: dict[tuple[str, str], set[Any]] = {slot: {val} for slot, val in current.items()}
        if flight is not None:
            for slot, val in flight.kv:
                allowed[slot].add(val)
            for d in flight.blobs:
                blobs.setdefault(d, None)
        return allowed, blobs, flight.label if flight else ""

    def check(self, driver: Any, point: int, namespaces: list[str]) -> list[str]:
        """Problems seen reading ``driver`` as the state at ``point``; empty when consistent."""
        problems: list[str] = []
        allowed, blobs, flight = self.allowed(point)
        where = f"point {point}" + (f" (in flight: {flight})" if flight else "")
        for (ns, key), ok in sorted(allowed.items()):
            try:
                entry = driver.get(ns, key)
            except Exception as exc:
                problems.append(f"{where}: get({ns!r}, {key!r}) raised {type(exc).__name__}: {exc}")
                continue
            got = None if entry is None else (bytes(entry.value), entry.version)
            if got not in ok:
                problems.append(
                    f"{where}: get({ns!r}, {key!r}) = {_short(got)}, allowed {sorted(map(_short, ok))}"
                )
        for ns in namespaces:
            try:
                listed = {e.key: (bytes(e.value), e.version) for e in driver.scan(ns)}
            except Exception as exc:
                problems.append(f"{where}: scan({ns!r}) raised {type(exc).__name__}: {exc}")
                continue
            for key, got in listed.items():
                if got not in allowed.get((ns, key), {None}):
                    problems.append(f"{where}: scan({ns!r}) shows {key!r} = {_short(got)}")
        for digest, data in self.blobs.items():
            must = blobs.get(digest, False)
            try:
                present = driver.has_blob(digest)
                value = driver.get_blob(digest) if present else None
            except Exception as exc:
                problems.append(f"{where}: blob {digest[:12]} raised {type(exc).__name__}: {exc}")
                continue
            if must is True and not present:
                problems.append(f"{where}: acknowledged blob {digest[:12]} is lost")
            elif must is False and present:
                problems.append(f"{where}: blob {digest[:12]} present before it was written")
            elif present and value != data:
                problems.append(f"{where}: blob {digest[:12]} reads wrong bytes")
        try:
            extra = {b.digest for b in driver.list_blobs()} - set(self.blobs)
        except Exception as exc:
            problems.append(f"{where}: list_blobs raised {type(exc).__name__}: {exc}")
        else:
            if extra:
                problems.append(f"{where}: list_blobs shows unknown blobs {sorted(extra)}")
        return problems


def _short(got: Any) -> str:
    if got is None:
        return "absent"
    value, version = got
    return f"v{version}:{value[:24]!r}{'...' if len(value) > 24 else ''}"


def kill_at_call(module: Any, names: tuple[str, ...], k: int, *, mid_stream: bool = False) -> None:
    """Make this process die by SIGKILL (its whole process group, so its child processes die
    with it, as on a real crash) at the ``k``-th call (counting from 0) of the functions
    ``names`` of ``module``: before the call, or with ``mid_stream`` after the call has taken
    the first item of its last argument when that is an iterator (a file half written; other
    calls die before they run). For kill-9 harnesses
    that need a kill at *every* step of an operation, not at a random time (see
    ``tests/test_restore_kills.py``). POSIX only."""
    import signal

    calls = itertools.count()

    def die() -> None:
        os.killpg(os.getpgid(0), signal.SIGKILL)

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if next(calls) != k:
                return original(*args, **kwargs)
            if not mid_stream or not args or not isinstance(args[-1], Iterator):
                die()  # before the call (a call without a stream is never half done)
            items = iter(args[-1])

            def torn() -> Iterator[Any]:
                first = next(items, None)
                if first is not None:
                    yield first
                die()

            return original(*args[:-1], torn(), **kwargs)

        return wrapped

    for name in names:
        setattr(module, name, wrap(getattr(module, name)))
