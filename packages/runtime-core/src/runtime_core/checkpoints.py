"""Checkpoints of agent state in threads, and the interface of the checkpoint store."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from runtime_core._validation import (
    MAX_KEY_CHARS,
    check_aware,
    check_enum,
    check_metadata,
    check_name,
    check_non_negative,
    check_plain,
)
from runtime_core.artifacts import ArtifactRef
from runtime_core.errors import ValidationError
from runtime_core.ids import validate_id
from runtime_core.threads import Thread
from runtime_core.workspace import WorkspaceRef

__all__ = [
    "Checkpoint",
    "CheckpointSource",
    "CheckpointStore",
    "DiffEntry",
    "DiffKind",
    "GcReport",
    "PendingWrite",
    "PruneReport",
]

MAX_CHANNELS = 4096


class CheckpointSource(StrEnum):
    """Why a checkpoint was written."""

    INPUT = "input"
    LOOP = "loop"
    UPDATE = "update"
    FORK = "fork"
    RESTORE = "restore"


@dataclass(frozen=True, slots=True)
class PendingWrite:
    """A write made after a checkpoint and before the next one (a tool result, typically).

    Stored as soon as it happens so that a crash never loses, or re-runs, the work behind it.
    ``task_path`` and ``index`` are a framework's own coordinates of the write (LangGraph's task
    path and write index); ``index`` is negative for special channels (errors, interrupts)."""

    checkpoint_id: str
    task_id: str
    channel: str
    value: Any
    created_at: datetime
    task_path: str = ""
    index: int = 0

    def __post_init__(self) -> None:
        validate_id(self.checkpoint_id, "checkpoint id")
        check_name(self.task_id, "pending write task id", allow_empty=False)
        check_name(self.channel, "pending write channel", allow_empty=False)
        check_plain(self.value, "pending write value")
        check_aware(self.created_at, "created_at")
        check_name(self.task_path, "pending write task path", max_chars=MAX_KEY_CHARS)
        if isinstance(self.index, bool) or not isinstance(self.index, int):
            raise ValidationError(f"pending write index must be an int, got {self.index!r:.40}")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One immutable point in a thread: the agent state (channels) and what goes with it.

    ``namespace`` places it in one of the thread's checkpoint namespaces ("" is the thread's
    own line; a subgraph has its own), each with its own head. ``external_key`` is a
    caller-chosen id (a framework's checkpoint id), unique in its thread and namespace.
    ``branch`` is true when it was saved as an explicit branch from a checkpoint that was not
    the head at the time (time travel), rather than as the next step of the head."""

    id: str
    thread_id: str
    parent_id: str | None
    step: int
    source: CheckpointSource
    created_at: datetime
    state: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    pending_writes: tuple[PendingWrite, ...] = ()
    workspace: WorkspaceRef | None = None
    artifacts: tuple[ArtifactRef, ...] = ()
    namespace: str = ""
    external_key: str | None = None
    branch: bool = False

    def __post_init__(self) -> None:
        validate_id(self.id, "checkpoint id")
        check_name(self.namespace, "checkpoint namespace", max_chars=MAX_KEY_CHARS)
        if self.external_key is not None:
            check_name(
                self.external_key, "checkpoint external key", allow_empty=False, max_chars=MAX_KEY_CHARS
            )
        if not isinstance(self.branch, bool):
            raise ValidationError("branch must be a bool")
        validate_id(self.thread_id, "thread id")
        if self.parent_id is not None:
            validate_id(self.parent_id, "parent checkpoint id")
            if self.parent_id == self.id:
                raise ValidationError("a checkpoint cannot be its own parent")
        check_non_negative(self.step, "step")
        object.__setattr__(self, "source", check_enum(self.source, CheckpointSource, "checkpoint source"))
        check_aware(self.created_at, "created_at")
        if not isinstance(self.state, Mapping):
            raise ValidationError("checkpoint state must be a mapping of channel name to value")
        if len(self.state) > MAX_CHANNELS:
            raise ValidationError(
                f"checkpoint state has {len(self.state)} channels; the limit is {MAX_CHANNELS}"
            )
        for name in self.state:
            check_name(name, "channel name", allow_empty=False)
        check_plain(self.state, "checkpoint state")
        if self.label is not None:
            check_name(self.label, "checkpoint label", allow_empty=False)
        object.__setattr__(self, "metadata", check_metadata(self.metadata, "checkpoint metadata"))
        if not isinstance(self.pending_writes, tuple) or not all(
            isinstance(w, PendingWrite) and w.checkpoint_id == self.id for w in self.pending_writes
        ):
            raise ValidationError("pending_writes must be a tuple of this checkpoint's PendingWrite records")
        if self.workspace is not None and not isinstance(self.workspace, WorkspaceRef):
            raise ValidationError("workspace must be a WorkspaceRef or None")
        if not isinstance(self.artifacts, tuple) or not all(
            isinstance(a, ArtifactRef) for a in self.artifacts
        ):
            raise ValidationError("artifacts must be a tuple of ArtifactRef")

    @property
    def pinned(self) -> bool:
        """Labeled checkpoints are pinned: retention never removes them."""
        return self.label is not None


class DiffKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class DiffEntry:
    """One path in the state that differs: ``path`` like ``messages/3/content``."""

    path: str
    kind: DiffKind
    old: Any = None
    new: Any = None


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What a prune removed (or, with ``dry_run``, would remove) and what it kept, and why."""

    thread_id: str
    removed: tuple[str, ...]
    kept: tuple[str, ...]
    protected: Mapping[str, str] = field(default_factory=dict)  # checkpoint id -> reason kept
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class GcReport:
    """What garbage collection removed: unreferenced blobs and records, and bytes freed."""

    blobs_removed: int = 0
    bytes_freed: int = 0
    records_removed: int = 0
    blobs_kept_young: int = 0
    dry_run: bool = False


@runtime_checkable
class CheckpointStore(Protocol):
    """Threads of checkpoints with parents, forks, restore, replay, diff and retention.

    Records are immutable. A thread's head moves by compare-and-set, so two writers extending the
    same parent cannot both succeed: the loser gets ConflictError and nothing is forked silently."""

    # threads
    def create_thread(
        self, name: str = "", *, metadata: Mapping[str, Any] | None = None, thread_id: str | None = None
    ) -> Thread: ...

    def get_thread(self, thread_id: str) -> Thread: ...

    def list_threads(
        self,
        *,
        metadata: Mapping[str, Any] | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Thread]:
        """Threads newest first; ``before`` is the id of the last thread of the previous page."""
        ...

    def rename_thread(self, thread_id: str, name: str) -> Thread: ...

    def update_thread_metadata(
        self, thread_id: str, metadata: Mapping[str, Any], *, merge: bool = True
    ) -> Thread: ...

    def delete_thread(self, thread_id: str) -> None: ...

    def copy_thread(self, thread_id: str, *, name: str | None = None) -> Thread: ...

    # checkpoints
    def save(
        self,
        thread_id: str,
        state: Mapping[str, Any],
        *,
        parent_id: str | None = None,
        source: CheckpointSource = CheckpointSource.LOOP,
        step: int | None = None,
        label: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        workspace: WorkspaceRef | None = None,
        artifacts: tuple[ArtifactRef, ...] = (),
    ) -> Checkpoint:
        """Write a checkpoint after ``parent_id`` (default: the thread's head) and move the head to
        it. Raises ConflictError when the head is no longer ``parent_id``."""
        ...

    def get(self, checkpoint_id: str) -> Checkpoint: ...

    def latest(self, thread_id: str) -> Checkpoint | None: ...

    def list(
        self,
        thread_id: str,
        *,
        before: str | None = None,
        after: str | None = None,
        limit: int = 50,
        metadata: Mapping[str, Any] | None = None,
    ) -> builtins.list[Checkpoint]:
        """Checkpoints of a thread, newest first."""
        ...

    def history(self, checkpoint_id: str) -> Iterator[Checkpoint]:
        """The lineage from ``checkpoint_id`` back to the root, crossing forks."""
        ...

    def put_writes(self, checkpoint_id: str, task_id: str, writes: Mapping[str, Any]) -> None: ...

    def fork(
        self, checkpoint_id: str, *, name: str = "", metadata: Mapping[str, Any] | None = None
    ) -> Thread: ...

    def restore(self, checkpoint_id: str) -> Checkpoint:
        """Write a new head with ``source=restore`` and the state of ``checkpoint_id``. Raises
        RuntimeBusyError while a live lease holds the thread."""
        ...

    def replay(
        self,
        start_id: str,
        end_id: str | None = None,
        *,
        reverse: bool = False,
        callback: Callable[[Checkpoint], None] | None = None,
    ) -> Iterator[Checkpoint]: ...

    def diff(self, a: str, b: str) -> builtins.list[DiffEntry]: ...

    def prune(
        self,
        thread_id: str,
        *,
        keep_last: int | None = None,
        older_than: timedelta | None = None,
        keep_labeled: bool = True,
        dry_run: bool = False,
    ) -> PruneReport: ...

    def gc(self, *, grace: timedelta | None = None, dry_run: bool = False) -> GcReport: ...
