"""Shadow-git snapshots of a workspace, kept in a git directory under Keepup's own state
directory, never inside the workspace. Sits directly above ``storage``; the link between a
snapshot and a checkpoint lives in ``checkpoint.workspaces``. ``AsyncShadowGit`` is the async twin of
``ShadowGit``; it runs on worker threads."""

# Made lazy by scripts/gen_facade.py: add a re-export to the imports under TYPE_CHECKING,
# then run the script, which rewrites __all__, _SOURCES and __getattr__ from them.

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime_persistence.shadow_git.packs import (
        AsyncSnapshotPacks,
        SharedSnapshots,
        SnapshotPacks,
    )
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
    from runtime_persistence.shadow_git.threaded import (
        AsyncShadowGit,
    )

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

# Where each name is imported from, on first use.
_SOURCES: dict[str, str] = {
    "DEFAULT_EXCLUDES": "runtime_persistence.shadow_git.repository",
    "DEFAULT_MAX_FILE_SIZE": "runtime_persistence.shadow_git.repository",
    "DEFAULT_TIME_BUDGET": "runtime_persistence.shadow_git.repository",
    "SECRET_EXCLUDES": "runtime_persistence.shadow_git.repository",
    "AsyncShadowGit": "runtime_persistence.shadow_git.threaded",
    "AsyncSnapshotPacks": "runtime_persistence.shadow_git.packs",
    "ShadowGit": "runtime_persistence.shadow_git.repository",
    "SharedSnapshots": "runtime_persistence.shadow_git.packs",
    "SnapshotPacks": "runtime_persistence.shadow_git.packs",
    "WorkspaceScan": "runtime_persistence.shadow_git.repository",
    "check_workspace": "runtime_persistence.shadow_git.repository",
    "keepup_state_dir": "runtime_persistence.shadow_git.repository",
    "shadow_git_dir": "runtime_persistence.shadow_git.repository",
}

# Submodules reachable as attributes, as they were when this module imported them.
_SUBMODULES = frozenset(
    {
        "_async",
        "_dirfd",
        "_git",
        "_pack_records",
        "_sync",
        "diff",
        "excludes",
        "packs",
        "refs",
        "repository",
        "restore",
        "sharing",
        "snapshot",
        "threaded",
        "touched",
        "workspace",
    }
)


if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        source = _SOURCES.get(name)
        if source is not None:
            value = getattr(importlib.import_module(source), name)
            globals()[name] = value  # later lookups skip this function
            return value
        if name in _SUBMODULES:
            return importlib.import_module(f"{__name__}.{name}")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
