"""The parts of the checkpoint store that do no I/O, shared by :class:`AsyncCheckpoints` (the
async source in ``_async/``) and its generated sync twin :class:`Checkpoints`: limits and
filters, the small caches, building public records from stored ones, and :func:`diff_states`."""

from __future__ import annotations

import builtins
import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from runtime_core import (
    ArtifactRef,
    Checkpoint,
    CheckpointSource,
    CorruptionError,
    DiffEntry,
    DiffKind,
    PendingWrite,
    ValidationError,
    WorkspaceRef,
)

from runtime_persistence.checkpoint._reading import (
    MAX_LIST_LIMIT,
    DecodedCache,
    check_filter,
    check_limit,
    check_place,
    matches,
    thread_of,
)
from runtime_persistence.checkpoint._records import (
    RECORD_FORMAT,
    KeyedWrite,
    Record,
    WriteRecord,
)
from runtime_persistence.checkpoint._state import ChannelRef, copy_plain

__all__ = [
    "DELETE_BATCH",
    "MAX_LIST_LIMIT",
    "AsyncRemovalListener",
    "DecodedCache",
    "Lru",
    "RemovalListener",
    "build_checkpoint",
    "check_filter",
    "check_limit",
    "check_namespace",
    "check_place",
    "derived_record",
    "diff_states",
    "matches",
    "pending_writes_of",
    "record_for",
    "revalidate",
    "thread_of",
]

DELETE_BATCH = 200

RemovalListener = Callable[[str, tuple[str, ...]], None]
"""Called with (thread id, removed checkpoint ids) after prune or delete_thread removes checkpoints."""

AsyncRemovalListener = Callable[[str, tuple[str, ...]], Awaitable[None] | None]
"""A removal listener of :class:`AsyncCheckpoints`: a plain function, or one returning an
awaitable (an ``async def``), which is awaited."""

_T = TypeVar("_T")


def check_namespace(namespace: object) -> str:
    if not isinstance(namespace, str):
        raise ValidationError(f"a checkpoint namespace is a str, got {type(namespace).__name__}")
    if len(namespace) > 1024 or any(ord(c) < 32 for c in namespace):
        raise ValidationError(f"checkpoint namespace {namespace!r:.80} is too long or has control characters")
    return namespace


class Lru(Generic[_T]):
    """A small thread-safe LRU map (its lock is never held across I/O)."""

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[str, _T] = OrderedDict()
        self._max = size
        self._lock = threading.Lock()

    def get(self, key: str) -> _T | None:
        with self._lock:
            return self._items.get(key)

    def remember(self, key: str, value: _T) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            if len(self._items) > self._max:
                self._items.popitem(last=False)

    def pop(self, key: str, default: None = None) -> _T | None:
        with self._lock:
            return self._items.pop(key, default)


def _slot_setters(cls: type[Any], names: tuple[str, ...]) -> tuple[Callable[[Any, Any], None], ...]:
    """The slot descriptors' setters of a frozen slots dataclass whose fields are ``names`` in
    this order (they bypass the frozen ``__setattr__`` as ``object.__setattr__`` does, without a
    name lookup each). Refuses to load if the class's fields are not exactly these."""
    found = tuple(f.name for f in dataclasses.fields(cls))
    if found != names:
        raise RuntimeError(f"{cls.__name__} has fields {found}, build_checkpoint assumes {names}")
    return tuple(cls.__dict__[name].__set__ for name in names)


_CHECKPOINT_SET = _slot_setters(
    Checkpoint,
    (
        "id",
        "thread_id",
        "parent_id",
        "step",
        "source",
        "created_at",
        "state",
        "label",
        "metadata",
        "pending_writes",
        "workspace",
        "artifacts",
        "namespace",
        "external_key",
        "branch",
    ),
)
_PENDING_SET = _slot_setters(
    PendingWrite, ("checkpoint_id", "task_id", "channel", "value", "created_at", "task_path", "index")
)
_SOURCES: dict[str, CheckpointSource] = {s.value: s for s in CheckpointSource}


def _build(cls: type[_T], setters: tuple[Callable[[Any, Any], None], ...], values: tuple[Any, ...]) -> _T:
    """An instance of a frozen slots dataclass from already-validated values in field order."""
    obj = object.__new__(cls)
    for set_, value in zip(setters, values, strict=True):
        set_(obj, value)
    return obj


_IMMUTABLE_LEAVES = frozenset({str, bytes, int, float, bool, type(None)})


def _fresh(value: Any) -> Any:
    """A copy of plain ``value`` that shares no mutable container with it (a list of leaves,
    such as LangGraph's ``[type, bytes]`` pairs, by a shallow copy)."""
    if type(value) is list and all(type(v) in _IMMUTABLE_LEAVES for v in value):
        return list(value)
    return copy_plain(value)


def pending_writes_of(checkpoint_id: str, writes: Sequence[KeyedWrite]) -> tuple[PendingWrite, ...]:
    """The public records of a checkpoint's keyed writes (validated when they were stored,
    checksummed since), built without validating them again; each value is a fresh copy, so
    ``writes`` may be kept and built from again."""
    return tuple(
        _build(
            PendingWrite,
            _PENDING_SET,
            (checkpoint_id, w.task_id, w.channel, _fresh(w.value), w.created_at, w.task_path, w.index),
        )
        for w in writes
    )


def build_checkpoint(
    rec: Record,
    writes: Sequence[tuple[WriteRecord | KeyedWrite, Any]],
    state: dict[str, Any],
    keyed: tuple[PendingWrite, ...] = (),
) -> Checkpoint:
    """The public record of ``rec`` with its decoded ``state`` and its pending ``writes`` (each
    with its decoded value, oldest first). Everything here was validated when it was saved (or
    imported) and has passed its checksums since, so it is assembled without validating it
    again; values that callers could mutate are fresh copies, never the cached ones."""
    try:
        source = _SOURCES.get(rec.source) or CheckpointSource(rec.source)
        pending = (
            tuple(
                _build(
                    PendingWrite,
                    _PENDING_SET,
                    (
                        rec.id,
                        w.task_id,
                        w.channel,
                        value,
                        w.created_at,
                        getattr(w, "task_path", ""),
                        getattr(w, "index", 0),
                    ),
                )
                for w, value in writes
            )
            if writes
            else ()
        ) + keyed
        return _build(
            Checkpoint,
            _CHECKPOINT_SET,
            (
                rec.id,
                rec.thread_id,
                rec.parent_id,
                rec.step,
                source,
                rec.created_at,
                state,
                rec.label,
                copy_plain(rec.metadata) if rec.metadata else {},
                pending,
                WorkspaceRef(*rec.workspace) if rec.workspace else None,
                tuple(ArtifactRef(*a) for a in rec.artifacts) if rec.artifacts else (),
                rec.namespace,
                rec.key,
                rec.branch,
            ),
        )
    except (ValidationError, ValueError, TypeError) as exc:
        raise CorruptionError(f"checkpoint {rec.id} does not validate: {exc}") from exc


def revalidate(cp: Checkpoint) -> Checkpoint:
    """``cp`` rebuilt with every check of the public records (for data that crosses a trust
    boundary, such as an imported file). CorruptionError if it fails."""
    try:
        return Checkpoint(
            id=cp.id,
            thread_id=cp.thread_id,
            parent_id=cp.parent_id,
            step=cp.step,
            source=cp.source,
            created_at=cp.created_at,
            state=cp.state,
            label=cp.label,
            metadata=cp.metadata,
            pending_writes=tuple(
                PendingWrite(
                    w.checkpoint_id, w.task_id, w.channel, w.value, w.created_at, w.task_path, w.index
                )
                for w in cp.pending_writes
            ),
            workspace=cp.workspace,
            artifacts=cp.artifacts,
            namespace=cp.namespace,
            external_key=cp.external_key,
            branch=cp.branch,
        )
    except ValidationError as exc:
        raise CorruptionError(f"checkpoint {cp.id} does not validate: {exc}") from exc


def record_for(cp: Checkpoint, seq: int, refs: dict[str, ChannelRef]) -> Record:
    """The stored record of a new checkpoint in slot ``seq`` with its encoded channels."""
    return Record(
        RECORD_FORMAT,
        cp.id,
        cp.thread_id,
        cp.parent_id,
        seq,
        cp.step,
        cp.source.value,
        cp.created_at,
        cp.label,
        copy_plain(cp.metadata),
        refs,
        (cp.workspace.workspace, cp.workspace.commit) if cp.workspace else None,
        [(a.scope, a.key, a.version) for a in cp.artifacts],
        cp.namespace,
        cp.external_key,
        cp.branch,
    )


def derived_record(
    src: Record,
    *,
    id: str,
    thread_id: str,
    parent_id: str,
    seq: int,
    source: CheckpointSource,
    at: datetime,
    metadata: dict[str, Any],
) -> Record:
    """A record that reuses ``src``'s state, workspace and artifacts (fork, restore)."""
    return Record(
        RECORD_FORMAT,
        id,
        thread_id,
        parent_id,
        seq,
        src.step,
        source.value,
        at,
        None,
        metadata,
        src.channels,
        src.workspace,
        src.artifacts,
    )


def diff_states(old: Any, new: Any) -> builtins.list[DiffEntry]:
    """Path-level differences between two plain-data values. Paths join dict keys and list
    indexes with ``/`` (``messages/3/content``); ``~`` and ``/`` inside keys are escaped as ``~0``
    and ``~1`` (JSON Pointer). Lists compare position by position; extra items are added/removed."""
    out: list[DiffEntry] = []

    def esc(key: str) -> str:
        return key.replace("~", "~0").replace("/", "~1")

    def walk(path: str, a: Any, b: Any) -> None:
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for k in a:
                p = f"{path}/{esc(k)}" if path else esc(k)
                if k in b:
                    walk(p, a[k], b[k])
                else:
                    out.append(DiffEntry(p, DiffKind.REMOVED, old=a[k]))
            for k in b:
                if k not in a:
                    p = f"{path}/{esc(k)}" if path else esc(k)
                    out.append(DiffEntry(p, DiffKind.ADDED, new=b[k]))
        elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            for i in range(max(len(a), len(b))):
                p = f"{path}/{i}" if path else str(i)
                if i >= len(b):
                    out.append(DiffEntry(p, DiffKind.REMOVED, old=a[i]))
                elif i >= len(a):
                    out.append(DiffEntry(p, DiffKind.ADDED, new=b[i]))
                else:
                    walk(p, a[i], b[i])
        elif type(a) is not type(b) or a != b:
            out.append(DiffEntry(path, DiffKind.CHANGED, old=a, new=b))

    walk("", old, new)
    return out
