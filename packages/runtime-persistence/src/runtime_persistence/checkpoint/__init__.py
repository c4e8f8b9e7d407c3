"""Threads of checkpoints: save, history, fork, restore, replay, diff, retention, garbage
collection and export, plus the link between a checkpoint and its workspace snapshot.

Sits above ``storage``, ``artifact`` and ``shadow_git``; below ``session``."""

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
