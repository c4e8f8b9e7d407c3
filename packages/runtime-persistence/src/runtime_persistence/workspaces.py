"""The old import path ``runtime_persistence.workspaces``, kept working: the code lives in :mod:`runtime_persistence.checkpoint.workspaces`."""

from runtime_persistence.checkpoint.workspaces import (
    AsyncWorkspaceCheckpoints,
    SnapshotBeforeChange,
    WorkspaceCheckpoints,
    WorkspaceRestore,
    collect_snapshot_packs,
    collect_snapshot_packs_async,
)

__all__ = [
    "AsyncWorkspaceCheckpoints",
    "SnapshotBeforeChange",
    "WorkspaceCheckpoints",
    "WorkspaceRestore",
    "collect_snapshot_packs",
    "collect_snapshot_packs_async",
]
