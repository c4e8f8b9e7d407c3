"""Threads of checkpoints: save, history, fork, restore, replay, diff, retention, garbage
collection and export, plus the link between a checkpoint and its workspace snapshot.

Sits above ``storage``, ``artifact`` and ``shadow_git``; below ``session``."""

# Made lazy by scripts/gen_facade.py: add a re-export to the imports under TYPE_CHECKING,
# then run the script, which rewrites __all__, _SOURCES and __getattr__ from them.

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime_persistence.checkpoint.checkpoints import (
        CKPT_ID_NS,
        CKPT_NS,
        CKPT_PIN_NS,
        FORK_NS,
        HEAD_NS,
        THREAD_NS,
        AsyncCheckpoints,
        AsyncRemovalListener,
        Checkpoints,
        RemovalListener,
        diff_states,
    )
    from runtime_persistence.checkpoint.export import (
        EXPORT_MAGIC,
        EXPORT_VERSION,
        ExportReport,
        Progress,
        export_threads,
        export_threads_async,
        import_threads,
        import_threads_async,
    )
    from runtime_persistence.checkpoint.gc import (
        DEFAULT_GRACE,
        ENTRY_POINT_GROUP,
        BlobRootProvider,
        blob_root_providers,
        collect,
        collect_async,
        register_blob_roots,
        unregister_blob_roots,
    )
    from runtime_persistence.checkpoint.retention import (
        plan_prune,
    )
    from runtime_persistence.checkpoint.workspaces import (
        AsyncWorkspaceCheckpoints,
        SnapshotBeforeChange,
        WorkspaceCheckpoints,
        WorkspaceRestore,
        collect_snapshot_packs,
        collect_snapshot_packs_async,
    )

__all__ = [
    "CKPT_ID_NS",
    "CKPT_NS",
    "CKPT_PIN_NS",
    "DEFAULT_GRACE",
    "ENTRY_POINT_GROUP",
    "EXPORT_MAGIC",
    "EXPORT_VERSION",
    "FORK_NS",
    "HEAD_NS",
    "THREAD_NS",
    "AsyncCheckpoints",
    "AsyncRemovalListener",
    "AsyncWorkspaceCheckpoints",
    "BlobRootProvider",
    "Checkpoints",
    "ExportReport",
    "Progress",
    "RemovalListener",
    "SnapshotBeforeChange",
    "WorkspaceCheckpoints",
    "WorkspaceRestore",
    "blob_root_providers",
    "collect",
    "collect_async",
    "collect_snapshot_packs",
    "collect_snapshot_packs_async",
    "diff_states",
    "export_threads",
    "export_threads_async",
    "import_threads",
    "import_threads_async",
    "plan_prune",
    "register_blob_roots",
    "unregister_blob_roots",
]

# Where each name is imported from, on first use.
_SOURCES: dict[str, str] = {
    "CKPT_ID_NS": "runtime_persistence.checkpoint.checkpoints",
    "CKPT_NS": "runtime_persistence.checkpoint.checkpoints",
    "CKPT_PIN_NS": "runtime_persistence.checkpoint.checkpoints",
    "DEFAULT_GRACE": "runtime_persistence.checkpoint.gc",
    "ENTRY_POINT_GROUP": "runtime_persistence.checkpoint.gc",
    "EXPORT_MAGIC": "runtime_persistence.checkpoint.export",
    "EXPORT_VERSION": "runtime_persistence.checkpoint.export",
    "FORK_NS": "runtime_persistence.checkpoint.checkpoints",
    "HEAD_NS": "runtime_persistence.checkpoint.checkpoints",
    "THREAD_NS": "runtime_persistence.checkpoint.checkpoints",
    "AsyncCheckpoints": "runtime_persistence.checkpoint.checkpoints",
    "AsyncRemovalListener": "runtime_persistence.checkpoint.checkpoints",
    "AsyncWorkspaceCheckpoints": "runtime_persistence.checkpoint.workspaces",
    "BlobRootProvider": "runtime_persistence.checkpoint.gc",
    "Checkpoints": "runtime_persistence.checkpoint.checkpoints",
    "ExportReport": "runtime_persistence.checkpoint.export",
    "Progress": "runtime_persistence.checkpoint.export",
    "RemovalListener": "runtime_persistence.checkpoint.checkpoints",
    "SnapshotBeforeChange": "runtime_persistence.checkpoint.workspaces",
    "WorkspaceCheckpoints": "runtime_persistence.checkpoint.workspaces",
    "WorkspaceRestore": "runtime_persistence.checkpoint.workspaces",
    "blob_root_providers": "runtime_persistence.checkpoint.gc",
    "collect": "runtime_persistence.checkpoint.gc",
    "collect_async": "runtime_persistence.checkpoint.gc",
    "collect_snapshot_packs": "runtime_persistence.checkpoint.workspaces",
    "collect_snapshot_packs_async": "runtime_persistence.checkpoint.workspaces",
    "diff_states": "runtime_persistence.checkpoint.checkpoints",
    "export_threads": "runtime_persistence.checkpoint.export",
    "export_threads_async": "runtime_persistence.checkpoint.export",
    "import_threads": "runtime_persistence.checkpoint.export",
    "import_threads_async": "runtime_persistence.checkpoint.export",
    "plan_prune": "runtime_persistence.checkpoint.retention",
    "register_blob_roots": "runtime_persistence.checkpoint.gc",
    "unregister_blob_roots": "runtime_persistence.checkpoint.gc",
}

# Submodules reachable as attributes, as they were when this module imported them.
_SUBMODULES = frozenset(
    {
        "_async",
        "_channel_ref",
        "_collect",
        "_export_format",
        "_layout",
        "_links",
        "_reading",
        "_records",
        "_shared",
        "_state",
        "_sync",
        "checkpoints",
        "export",
        "gc",
        "retention",
        "workspaces",
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
