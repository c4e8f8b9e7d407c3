"""Shadow-git snapshots of a workspace, kept in a git directory under Keepup's own state
directory, never inside the workspace. Sits directly above ``storage``; the link between a
snapshot and a checkpoint lives in ``checkpoint.workspaces``. ``AsyncShadowGit`` is the async twin of
``ShadowGit``; it runs on worker threads."""

from runtime_persistence.shadow_git.packs import AsyncSnapshotPacks, SharedSnapshots, SnapshotPacks
from runtime_persistence.shadow_git.repository import (
    DEFAULT_EXCLUDES,
    DEFAULT_MAX_FILE_SIZE,
    DEFAULT_TIME_BUDGET,
    SECRET_EXCLUDES,
    ShadowGit,
    WorkspaceScan,
    check_workspace,
    keepup_state_dir,
    shadow_git_dir,
)
from runtime_persistence.shadow_git.threaded import AsyncShadowGit

__all__ = [
    "DEFAULT_EXCLUDES",
    "DEFAULT_MAX_FILE_SIZE",
    "DEFAULT_TIME_BUDGET",
    "SECRET_EXCLUDES",
    "AsyncShadowGit",
    "AsyncSnapshotPacks",
    "ShadowGit",
    "SharedSnapshots",
    "SnapshotPacks",
    "WorkspaceScan",
    "check_workspace",
    "keepup_state_dir",
    "shadow_git_dir",
]
