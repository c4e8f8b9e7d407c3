"""Checkpoints and workspace snapshots, saved and restored together.

:class:`WorkspaceCheckpoints` (and its async twin :class:`AsyncWorkspaceCheckpoints`, from which
it is generated: ``_async/workspaces.py``) links a checkpoint store (the conversation) with the shadow-git
snapshots of one workspace (the files): a checkpoint saved through it records the snapshot commit
taken at the same moment and keeps that snapshot alive under a ref named by the checkpoint id;
``restore(checkpoint_id)`` brings back the conversation and the files in one call, refused while a
run holds the thread; pruning or deleting checkpoints releases their snapshots.

:class:`SnapshotBeforeChange` is the :class:`runtime_core.BeforeChangeHook` that workspace tools
call just before they change a file, so that every change an agent makes can be undone.
"""

from __future__ import annotations

from collections.abc import Sequence

from runtime_core import WorkspaceSnapshots

from runtime_persistence.checkpoint._async.workspaces import AsyncWorkspaceCheckpoints
from runtime_persistence.checkpoint._async.workspaces import (
    collect_snapshot_packs as collect_snapshot_packs_async,
)
from runtime_persistence.checkpoint._links import WorkspaceRestore
from runtime_persistence.checkpoint._sync.workspaces import WorkspaceCheckpoints, collect_snapshot_packs

__all__ = [
    "AsyncWorkspaceCheckpoints",
    "SnapshotBeforeChange",
    "WorkspaceCheckpoints",
    "WorkspaceRestore",
    "collect_snapshot_packs",
    "collect_snapshot_packs_async",
]

_MAX_PATHS_IN_MESSAGE = 10


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
