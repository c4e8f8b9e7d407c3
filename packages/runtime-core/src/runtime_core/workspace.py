"""Workspace snapshots (shadow git): the records and the interface.

A snapshot is a commit in a git directory that Keepup keeps outside the workspace; a checkpoint
names the snapshot taken with it, so that conversation and files restore together.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from runtime_core._validation import check_aware
from runtime_core.errors import ValidationError

__all__ = [
    "BeforeChangeHook",
    "ChangedPaths",
    "FileChange",
    "FileStatus",
    "RestoreReport",
    "SnapshotInfo",
    "WorkspaceRef",
    "WorkspaceSnapshots",
]


def _check_commit(value: object) -> None:
    if (
        not isinstance(value, str)
        or len(value) not in (40, 64)
        or not all(c in "0123456789abcdef" for c in value)
    ):
        raise ValidationError(f"a snapshot commit must be a full hex git object id, got {value!r:.80}")


@dataclass(frozen=True, slots=True)
class WorkspaceRef:
    """The workspace snapshot a checkpoint was saved with: which workspace, which commit."""

    workspace: str  # absolute path of the workspace root
    commit: str

    def __post_init__(self) -> None:
        if not isinstance(self.workspace, str) or not self.workspace.startswith("/"):
            raise ValidationError(f"workspace must be an absolute path, got {self.workspace!r:.200}")
        _check_commit(self.commit)


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """One snapshot of a workspace."""

    commit: str
    message: str
    created_at: datetime
    files: int = 0

    def __post_init__(self) -> None:
        _check_commit(self.commit)
        check_aware(self.created_at, "created_at")


class FileStatus(StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    RENAMED = "renamed"
    TYPE_CHANGED = "type_changed"


@dataclass(frozen=True, slots=True)
class FileChange:
    """One file that differs between two snapshots, or between a snapshot and the working tree."""

    path: str
    status: FileStatus
    old_path: str | None = None
    patch: str | None = None  # unified diff text, when content was asked for


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What a restore changed (or, with ``dry_run``, would change).

    ``rescue_commit`` is the snapshot taken just before the restore, from which anything the restore
    overwrote or removed can be brought back (None on a dry run, or when nothing had changed).
    """

    commit: str
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    created: tuple[str, ...] = ()
    rescue_commit: str | None = None
    dry_run: bool = False
    skipped: tuple[str, ...] = field(default=())  # files left alone because they could not be brought back


@runtime_checkable
class WorkspaceSnapshots(Protocol):
    """Snapshots of one workspace directory, kept outside it."""

    @property
    def workspace(self) -> str: ...

    def snapshot(self, message: str = "") -> str | None:
        """Record the workspace; return the commit, or None when nothing changed since the last one.

        Raises BudgetExceededError when it takes longer than the configured time budget."""
        ...

    def list(self, limit: int | None = None) -> builtins.list[SnapshotInfo]:
        """Snapshots newest first."""
        ...

    def diff(self, a: str, b: str | None = None, *, content: bool = False) -> builtins.list[FileChange]:
        """Files that differ from snapshot ``a`` to snapshot ``b`` (None: the working tree)."""
        ...

    def restore(
        self, commit: str, paths: Sequence[str] | None = None, *, dry_run: bool = False
    ) -> RestoreReport:
        """Bring the workspace (or only ``paths``) back to ``commit``, after a rescue snapshot."""
        ...

    def keep(self, commit: str, name: str) -> None:
        """Keep ``commit`` alive under a ref ``name`` (a checkpoint id), so gc never drops it."""
        ...

    def release(self, name: str) -> None:
        """Drop the ref ``name``; the snapshot may be collected if nothing else keeps it."""
        ...


@runtime_checkable
class BeforeChangeHook(Protocol):
    """Called by a tool just before it changes the workspace (write, edit, delete, run).

    The facade wires this to a shadow-git snapshot, so that every change can be undone."""

    def __call__(self, tool: str, paths: Sequence[str]) -> None: ...


@runtime_checkable
class ChangedPaths(Protocol):
    """Told by workspace tools, after each change, what they changed.

    The facade wires a shadow-git repository here, so that a snapshot may stage only the reported
    paths instead of scanning the whole workspace (only when the repository is told that nothing
    else changes the workspace; otherwise reports are not relied on). A tool that can change
    anything (running a command) calls :meth:`tree_changed` before and after it runs."""

    def paths_changed(self, paths: Sequence[str]) -> None:
        """``paths`` (relative to the workspace, ``/``-separated) were written or deleted."""
        ...

    def tree_changed(self) -> None:
        """Anything in the workspace may have changed."""
        ...
