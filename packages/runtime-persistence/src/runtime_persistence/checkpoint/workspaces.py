"""Checkpoints and workspace snapshots, saved and restored together.

:class:`WorkspaceCheckpoints` links a checkpoint store (the conversation) with the shadow-git
snapshots of one workspace (the files): a checkpoint saved through it records the snapshot commit
taken at the same moment and keeps that snapshot alive under a ref named by the checkpoint id;
``restore(checkpoint_id)`` brings back the conversation and the files in one call, refused while a
run holds the thread; pruning or deleting checkpoints releases their snapshots.

:class:`SnapshotBeforeChange` is the :class:`runtime_core.BeforeChangeHook` that workspace tools
call just before they change a file, so that every change an agent makes can be undone.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from runtime_core import (
    ArtifactRef,
    Checkpoint,
    CheckpointSource,
    CheckpointStore,
    KeepupError,
    LeaseStore,
    NullTelemetry,
    RestoreReport,
    RuntimeBusyError,
    Telemetry,
    ValidationError,
    WorkspaceRef,
    WorkspaceSnapshots,
)

__all__ = ["SnapshotBeforeChange", "WorkspaceCheckpoints", "WorkspaceRestore"]

_MAX_PATHS_IN_MESSAGE = 10


class _Notifies(Protocol):
    def add_removal_listener(self, listener: Callable[[str, tuple[str, ...]], None]) -> None: ...


@dataclass(frozen=True, slots=True)
class WorkspaceRestore:
    """The result of restoring a checkpoint with its workspace.

    ``checkpoint`` is the new head written by the restore (None on a dry run); ``source`` the
    checkpoint restored; ``files`` what the file restore changed or would change (None when the
    workspace was not asked for or the checkpoint has no snapshot)."""

    source: Checkpoint
    checkpoint: Checkpoint | None
    files: RestoreReport | None
    dry_run: bool = False


def _same_path(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


class WorkspaceCheckpoints:
    """Checkpoints of threads that work in one workspace, saved and restored with its files.

    ``leases`` is consulted before any file is touched (default: the checkpoint store's own
    ``leases`` when it has one, like :class:`runtime_persistence.Checkpoints`). When the store
    offers ``add_removal_listener``, pruned or deleted checkpoints release their snapshots (one
    listener per store and workspace in a process, however many links are made)."""

    def __init__(
        self,
        checkpoints: CheckpointStore,
        snapshots: WorkspaceSnapshots,
        *,
        leases: LeaseStore | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._checkpoints = checkpoints
        self._snapshots = snapshots
        self._telemetry: Telemetry = telemetry or NullTelemetry()
        self._leases = leases if leases is not None else _leases_of(checkpoints)
        notifier = _notifier(checkpoints)
        if notifier is not None and _first_link(checkpoints, snapshots.workspace):
            notifier.add_removal_listener(self._on_removed)

    @property
    def checkpoints(self) -> CheckpointStore:
        return self._checkpoints

    @property
    def snapshots(self) -> WorkspaceSnapshots:
        return self._snapshots

    def save(
        self,
        thread_id: str,
        state: Mapping[str, Any],
        *,
        message: str | None = None,
        parent_id: str | None = None,
        source: CheckpointSource = CheckpointSource.LOOP,
        step: int | None = None,
        label: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        artifacts: tuple[ArtifactRef, ...] = (),
    ) -> Checkpoint:
        """Snapshot the workspace, then save a checkpoint that records the snapshot (the newest
        one when nothing changed) and keep that snapshot alive under the checkpoint's id.

        Raises what the snapshot raises (BudgetExceededError) before anything is saved, and what
        the save raises (ConflictError when the head moved); the snapshot then stays an ordinary
        snapshot that retention may drop."""
        commit = self._snapshots.snapshot(message or f"checkpoint of thread {thread_id}")
        if commit is None:
            newest = self._snapshots.list(limit=1)
            if not newest:  # pragma: no cover - a first snapshot always records a commit
                raise ValidationError("the workspace has no snapshot to link")
            commit = newest[0].commit
        checkpoint = self._checkpoints.save(
            thread_id,
            state,
            parent_id=parent_id,
            source=source,
            step=step,
            label=label,
            metadata=metadata,
            workspace=WorkspaceRef(self._snapshots.workspace, commit),
            artifacts=artifacts,
        )
        self._snapshots.keep(commit, checkpoint.id)
        self._telemetry.event(
            "workspace.checkpoint_saved", thread_id=thread_id, checkpoint_id=checkpoint.id, commit=commit
        )
        return checkpoint

    def restore(
        self,
        checkpoint_id: str,
        *,
        workspace: bool = True,
        paths: Sequence[str] | None = None,
        dry_run: bool = False,
    ) -> WorkspaceRestore:
        """Restore the conversation of ``checkpoint_id`` (a new head with its state) and, with
        ``workspace``, its files, in one call.

        Refused with RuntimeBusyError while a live lease holds the thread, checked before any file
        is touched. Files are restored first (after a rescue snapshot); if the conversation
        restore then fails, the files are put back from the rescue snapshot and the error is
        raised. ``dry_run`` changes nothing and reports what the file restore would do. Raises
        ValidationError when the checkpoint's snapshot belongs to another workspace."""
        source = self._checkpoints.get(checkpoint_id)
        self._check_free(source.thread_id)
        files: RestoreReport | None = None
        if workspace and source.workspace is not None:
            if not _same_path(source.workspace.workspace, self._snapshots.workspace):
                raise ValidationError(
                    f"checkpoint {checkpoint_id} was saved with workspace {source.workspace.workspace!r}, "
                    f"not {self._snapshots.workspace!r}: use the snapshots of that workspace"
                )
            files = self._snapshots.restore(source.workspace.commit, paths, dry_run=dry_run)
        if dry_run:
            return WorkspaceRestore(source, None, files, dry_run=True)
        try:
            restored = self._checkpoints.restore(checkpoint_id)
        except BaseException:
            if files is not None and files.rescue_commit is not None:
                self._snapshots.restore(files.rescue_commit, paths)
            raise
        if restored.workspace is not None and _same_path(
            restored.workspace.workspace, self._snapshots.workspace
        ):
            self._snapshots.keep(restored.workspace.commit, restored.id)
        self._telemetry.event(
            "workspace.checkpoint_restored",
            thread_id=source.thread_id,
            checkpoint_id=restored.id,
            restored_from=source.id,
            files_changed=0
            if files is None
            else len(files.changed) + len(files.created) + len(files.removed),
        )
        return WorkspaceRestore(source, restored, files)

    def _check_free(self, thread_id: str) -> None:
        if self._leases is None:
            return
        lease = self._leases.current(thread_id)
        if lease is not None:
            raise RuntimeBusyError(
                f"cannot restore: thread {thread_id} is held by run {lease.holder} until "
                f"{lease.expires_at.isoformat()}; stop that run or wait for its lease to expire",
                thread_id=thread_id,
                holder=lease.holder,
            )

    def _on_removed(self, thread_id: str, removed: tuple[str, ...]) -> None:
        """Release the snapshots of removed checkpoints. The checkpoints are already gone, so a
        failure here is reported, not raised: the snapshot then lives until snapshot retention."""
        for checkpoint_id in removed:
            try:
                self._snapshots.release(checkpoint_id)
            except KeepupError as exc:
                self._telemetry.event(
                    "workspace.release_failed",
                    thread_id=thread_id,
                    checkpoint_id=checkpoint_id,
                    error=type(exc).__name__,
                    message=str(exc)[:500],
                )


class SnapshotBeforeChange:
    """A :class:`runtime_core.BeforeChangeHook` that snapshots the workspace just before a tool
    changes it, so the change can be undone by restoring that snapshot.

    A snapshot that fails (BudgetExceededError, a git error) is raised, so the tool does not make
    a change that could not be undone. ``last`` is the newest snapshot this hook saw."""

    def __init__(self, snapshots: WorkspaceSnapshots) -> None:
        self._snapshots = snapshots
        self.last: str | None = None

    def __call__(self, tool: str, paths: Sequence[str]) -> None:
        shown = ", ".join(str(p) for p in list(paths)[:_MAX_PATHS_IN_MESSAGE])
        more = len(paths) - _MAX_PATHS_IN_MESSAGE
        if more > 0:
            shown += f" and {more} more"
        commit = self._snapshots.snapshot(f"before {tool}: {shown}" if shown else f"before {tool}")
        if commit is not None:
            self.last = commit


_LINKED: weakref.WeakKeyDictionary[object, set[str]] = weakref.WeakKeyDictionary()
_LINKED_GUARD = threading.Lock()


def _first_link(store: object, workspace: str) -> bool:
    """Whether this is the first link of ``store`` to ``workspace`` in this process, so that
    linking again (a facade builds one per call) does not pile up removal listeners."""
    with _LINKED_GUARD:
        try:
            seen = _LINKED.setdefault(store, set())
        except TypeError:  # not weak-referenceable: cannot tell, so listen (releases are idempotent)
            return True
        if workspace in seen:
            return False
        seen.add(workspace)
        return True


def _leases_of(store: object) -> LeaseStore | None:
    leases: object = getattr(store, "leases", None)
    return leases if isinstance(leases, LeaseStore) else None


def _notifier(store: object) -> _Notifies | None:
    add = getattr(store, "add_removal_listener", None)
    return store if callable(add) else None  # type: ignore[return-value]
