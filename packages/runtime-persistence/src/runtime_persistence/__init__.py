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
(``runtime_persistence.checkpoints``, ``runtime_persistence.drivers.sqlite`` ...) keep working.
The package ``__init__`` files are lazy (PEP 562, written by ``scripts/gen_facade.py``): a name's
module is imported when the name is first used, so a program that lists threads does not load the
recorder, export or encryption."""

# Made lazy by scripts/gen_facade.py: add a re-export to the imports under TYPE_CHECKING,
# then run the script, which rewrites __all__, _SOURCES and __getattr__ from them.

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from runtime_persistence.encryption import (
        RECORD_NAMESPACES,
        EncryptReport,
        encrypt_store,
    )
    from runtime_persistence.session import (
        AsyncEvents,
        AsyncMessageLog,
        AsyncMessageRecorder,
        AsyncRunRecords,
        AsyncSessions,
        AsyncSessionSweeper,
        AsyncTasks,
        Events,
        MessageLog,
        MessageRecorder,
        RunRecords,
        Sessions,
        SessionSweeper,
        SweeperThread,
        Tasks,
        sweep_forever,
    )
    from runtime_persistence.session.recorder import (
        AsyncMessageStore,
        BatchResult,
        Delivery,
        Enricher,
        Incoming,
        KeywordTagger,
        MessageSource,
        MessageStore,
        RecordedMessage,
        Recorder,
        RecorderConfig,
        RecorderState,
        RecorderStats,
        SearchHit,
        SearchIndex,
        SqliteSearchIndex,
        combine_enrichers,
        open_source,
        search_index_for,
    )
    from runtime_persistence.session.transfer import (
        export_all,
        export_all_async,
        import_all,
        import_all_async,
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

__all__ = [
    "BUILTIN_SCHEMAS",
    "DEFAULT_EXCLUDES",
    "DEFAULT_MAX_FILE_SIZE",
    "DEFAULT_TIME_BUDGET",
    "RECORD_NAMESPACES",
    "TYPED_MEDIA_TYPE",
    "ArtifactSchemas",
    "Artifacts",
    "AsyncArtifacts",
    "AsyncCheckpoints",
    "AsyncEvents",
    "AsyncLeases",
    "AsyncMessageLog",
    "AsyncMessageRecorder",
    "AsyncMessageStore",
    "AsyncRemovalListener",
    "AsyncRunRecords",
    "AsyncSessionSweeper",
    "AsyncSessions",
    "AsyncShadowGit",
    "AsyncSnapshotPacks",
    "AsyncTasks",
    "AsyncWorkspaceCheckpoints",
    "BatchResult",
    "Checkpoints",
    "Delivery",
    "EncryptReport",
    "Enricher",
    "EnvelopeSerializer",
    "Events",
    "ExportReport",
    "Incoming",
    "Keyring",
    "KeywordTagger",
    "Leases",
    "MessageLog",
    "MessageRecorder",
    "MessageSource",
    "MessageStore",
    "RecordedMessage",
    "Recorder",
    "RecorderConfig",
    "RecorderState",
    "RecorderStats",
    "RemovalListener",
    "RunRecords",
    "SearchHit",
    "SearchIndex",
    "SessionSweeper",
    "Sessions",
    "ShadowGit",
    "SharedSnapshots",
    "SnapshotBeforeChange",
    "SnapshotPacks",
    "SqliteSearchIndex",
    "SweeperThread",
    "Tasks",
    "WorkspaceCheckpoints",
    "WorkspaceRestore",
    "WorkspaceScan",
    "check_workspace",
    "collect_snapshot_packs",
    "collect_snapshot_packs_async",
    "combine_enrichers",
    "diff_states",
    "encrypt_store",
    "export_all",
    "export_all_async",
    "export_threads",
    "export_threads_async",
    "fold_artifact_key",
    "import_all",
    "import_all_async",
    "import_threads",
    "import_threads_async",
    "keepup_state_dir",
    "open_source",
    "open_store",
    "open_store_async",
    "redact_url",
    "register_blob_roots",
    "search_index_for",
    "shadow_git_dir",
    "sweep_forever",
    "unregister_blob_roots",
    "validate_artifact_key",
    "validate_scope",
]

# Where each name is imported from, on first use.
_SOURCES: dict[str, str] = {
    "BUILTIN_SCHEMAS": "runtime_persistence.artifact",
    "DEFAULT_EXCLUDES": "runtime_persistence.shadow_git",
    "DEFAULT_MAX_FILE_SIZE": "runtime_persistence.shadow_git",
    "DEFAULT_TIME_BUDGET": "runtime_persistence.shadow_git",
    "RECORD_NAMESPACES": "runtime_persistence.encryption",
    "TYPED_MEDIA_TYPE": "runtime_persistence.artifact",
    "ArtifactSchemas": "runtime_persistence.artifact",
    "Artifacts": "runtime_persistence.artifact",
    "AsyncArtifacts": "runtime_persistence.artifact",
    "AsyncCheckpoints": "runtime_persistence.checkpoint",
    "AsyncEvents": "runtime_persistence.session",
    "AsyncLeases": "runtime_persistence.storage",
    "AsyncMessageLog": "runtime_persistence.session",
    "AsyncMessageRecorder": "runtime_persistence.session",
    "AsyncMessageStore": "runtime_persistence.session.recorder",
    "AsyncRemovalListener": "runtime_persistence.checkpoint",
    "AsyncRunRecords": "runtime_persistence.session",
    "AsyncSessionSweeper": "runtime_persistence.session",
    "AsyncSessions": "runtime_persistence.session",
    "AsyncShadowGit": "runtime_persistence.shadow_git",
    "AsyncSnapshotPacks": "runtime_persistence.shadow_git",
    "AsyncTasks": "runtime_persistence.session",
    "AsyncWorkspaceCheckpoints": "runtime_persistence.checkpoint",
    "BatchResult": "runtime_persistence.session.recorder",
    "Checkpoints": "runtime_persistence.checkpoint",
    "Delivery": "runtime_persistence.session.recorder",
    "EncryptReport": "runtime_persistence.encryption",
    "Enricher": "runtime_persistence.session.recorder",
    "EnvelopeSerializer": "runtime_persistence.storage",
    "Events": "runtime_persistence.session",
    "ExportReport": "runtime_persistence.checkpoint",
    "Incoming": "runtime_persistence.session.recorder",
    "Keyring": "runtime_persistence.storage",
    "KeywordTagger": "runtime_persistence.session.recorder",
    "Leases": "runtime_persistence.storage",
    "MessageLog": "runtime_persistence.session",
    "MessageRecorder": "runtime_persistence.session",
    "MessageSource": "runtime_persistence.session.recorder",
    "MessageStore": "runtime_persistence.session.recorder",
    "RecordedMessage": "runtime_persistence.session.recorder",
    "Recorder": "runtime_persistence.session.recorder",
    "RecorderConfig": "runtime_persistence.session.recorder",
    "RecorderState": "runtime_persistence.session.recorder",
    "RecorderStats": "runtime_persistence.session.recorder",
    "RemovalListener": "runtime_persistence.checkpoint",
    "RunRecords": "runtime_persistence.session",
    "SearchHit": "runtime_persistence.session.recorder",
    "SearchIndex": "runtime_persistence.session.recorder",
    "SessionSweeper": "runtime_persistence.session",
    "Sessions": "runtime_persistence.session",
    "ShadowGit": "runtime_persistence.shadow_git",
    "SharedSnapshots": "runtime_persistence.shadow_git",
    "SnapshotBeforeChange": "runtime_persistence.checkpoint",
    "SnapshotPacks": "runtime_persistence.shadow_git",
    "SqliteSearchIndex": "runtime_persistence.session.recorder",
    "SweeperThread": "runtime_persistence.session",
    "Tasks": "runtime_persistence.session",
    "WorkspaceCheckpoints": "runtime_persistence.checkpoint",
    "WorkspaceRestore": "runtime_persistence.checkpoint",
    "WorkspaceScan": "runtime_persistence.shadow_git",
    "check_workspace": "runtime_persistence.shadow_git",
    "collect_snapshot_packs": "runtime_persistence.checkpoint",
    "collect_snapshot_packs_async": "runtime_persistence.checkpoint",
    "combine_enrichers": "runtime_persistence.session.recorder",
    "diff_states": "runtime_persistence.checkpoint",
    "encrypt_store": "runtime_persistence.encryption",
    "export_all": "runtime_persistence.session.transfer",
    "export_all_async": "runtime_persistence.session.transfer",
    "export_threads": "runtime_persistence.checkpoint",
    "export_threads_async": "runtime_persistence.checkpoint",
    "fold_artifact_key": "runtime_persistence.artifact",
    "import_all": "runtime_persistence.session.transfer",
    "import_all_async": "runtime_persistence.session.transfer",
    "import_threads": "runtime_persistence.checkpoint",
    "import_threads_async": "runtime_persistence.checkpoint",
    "keepup_state_dir": "runtime_persistence.shadow_git",
    "open_source": "runtime_persistence.session.recorder",
    "open_store": "runtime_persistence.storage",
    "open_store_async": "runtime_persistence.storage",
    "redact_url": "runtime_persistence.storage",
    "register_blob_roots": "runtime_persistence.checkpoint",
    "search_index_for": "runtime_persistence.session.recorder",
    "shadow_git_dir": "runtime_persistence.shadow_git",
    "sweep_forever": "runtime_persistence.session",
    "unregister_blob_roots": "runtime_persistence.checkpoint",
    "validate_artifact_key": "runtime_persistence.artifact",
    "validate_scope": "runtime_persistence.artifact",
}

# Submodules reachable as attributes, as they were when this module imported them.
_SUBMODULES = frozenset(
    {
        "artifact",
        "artifact_schemas",
        "artifacts",
        "checkpoint",
        "checkpoints",
        "drivers",
        "encryption",
        "events",
        "export",
        "gc",
        "leases",
        "retention",
        "runs",
        "serialization",
        "session",
        "sessions",
        "shadow_git",
        "storage",
        "stores",
        "tasks",
        "testing",
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
