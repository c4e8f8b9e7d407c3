"""runtime-persistence: where agent state is kept.

The folders follow the design card, bottom to top:

* :mod:`~runtime_persistence.storage`: the driver contract, the drivers, the codec, store URLs,
  leases and the blob-root registry;
* :mod:`~runtime_persistence.artifact` and :mod:`~runtime_persistence.shadow_git`: versioned
  artifacts and workspace snapshots;
* :mod:`~runtime_persistence.checkpoint`: threads of checkpoints, retention, gc, export, and the
  checkpoint-to-snapshot link;
* :mod:`~runtime_persistence.session`: sessions, runs, tasks, events and the recorder.

Every public name is re-exported here; the module paths of earlier releases
(``runtime_persistence.checkpoints``, ``runtime_persistence.drivers.sqlite`` ...) keep working."""

from runtime_persistence.artifact import (
    BUILTIN_SCHEMAS,
    TYPED_MEDIA_TYPE,
    Artifacts,
    ArtifactSchemas,
    AsyncArtifacts,
    fold_artifact_key,
    validate_artifact_key,
    validate_scope,
)
from runtime_persistence.checkpoint import (
    AsyncCheckpoints,
    AsyncRemovalListener,
    AsyncWorkspaceCheckpoints,
    Checkpoints,
    ExportReport,
    RemovalListener,
    SnapshotBeforeChange,
    WorkspaceCheckpoints,
    WorkspaceRestore,
    collect_snapshot_packs,
    collect_snapshot_packs_async,
    diff_states,
    export_threads,
    export_threads_async,
    import_threads,
    import_threads_async,
    register_blob_roots,
    unregister_blob_roots,
)
from runtime_persistence.session import (
    AsyncEvents,
    AsyncMessageRecorder,
    AsyncRunRecords,
    AsyncSessions,
    AsyncTasks,
    Events,
    MessageRecorder,
    RunRecords,
    Sessions,
    Tasks,
)
from runtime_persistence.shadow_git import (
    DEFAULT_EXCLUDES,
    DEFAULT_MAX_FILE_SIZE,
    DEFAULT_TIME_BUDGET,
    AsyncShadowGit,
    AsyncSnapshotPacks,
    ShadowGit,
    SharedSnapshots,
    SnapshotPacks,
    WorkspaceScan,
    check_workspace,
    keepup_state_dir,
    shadow_git_dir,
)
from runtime_persistence.storage import (
    AsyncLeases,
    EnvelopeSerializer,
    Keyring,
    Leases,
    open_store,
    open_store_async,
    redact_url,
)

__all__: list[str] = [
    "BUILTIN_SCHEMAS",
    "DEFAULT_EXCLUDES",
    "DEFAULT_MAX_FILE_SIZE",
    "DEFAULT_TIME_BUDGET",
    "TYPED_MEDIA_TYPE",
    "ArtifactSchemas",
    "Artifacts",
    "AsyncArtifacts",
    "AsyncCheckpoints",
    "AsyncEvents",
    "AsyncLeases",
    "AsyncMessageRecorder",
    "AsyncRemovalListener",
    "AsyncRunRecords",
    "AsyncSessions",
    "AsyncShadowGit",
    "AsyncSnapshotPacks",
    "AsyncTasks",
    "AsyncWorkspaceCheckpoints",
    "Checkpoints",
    "EnvelopeSerializer",
    "Events",
    "ExportReport",
    "Keyring",
    "Leases",
    "MessageRecorder",
    "RemovalListener",
    "RunRecords",
    "Sessions",
    "ShadowGit",
    "SharedSnapshots",
    "SnapshotBeforeChange",
    "SnapshotPacks",
    "Tasks",
    "WorkspaceCheckpoints",
    "WorkspaceRestore",
    "WorkspaceScan",
    "check_workspace",
    "collect_snapshot_packs",
    "collect_snapshot_packs_async",
    "diff_states",
    "export_threads",
    "export_threads_async",
    "fold_artifact_key",
    "import_threads",
    "import_threads_async",
    "keepup_state_dir",
    "open_store",
    "open_store_async",
    "redact_url",
    "register_blob_roots",
    "shadow_git_dir",
    "unregister_blob_roots",
    "validate_artifact_key",
    "validate_scope",
]
