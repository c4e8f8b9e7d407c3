"""runtime-persistence."""

from runtime_persistence.artifact_schemas import BUILTIN_SCHEMAS, ArtifactSchemas
from runtime_persistence.artifacts import (
    TYPED_MEDIA_TYPE,
    Artifacts,
    fold_artifact_key,
    validate_artifact_key,
    validate_scope,
)
from runtime_persistence.checkpoints import Checkpoints, RemovalListener, diff_states
from runtime_persistence.events import Events, MessageRecorder
from runtime_persistence.export import ExportReport, export_threads, import_threads
from runtime_persistence.gc import register_blob_roots, unregister_blob_roots
from runtime_persistence.leases import Leases
from runtime_persistence.runs import RunRecords
from runtime_persistence.serialization import EnvelopeSerializer, Keyring
from runtime_persistence.sessions import Sessions
from runtime_persistence.shadow_git import (
    DEFAULT_EXCLUDES,
    DEFAULT_MAX_FILE_SIZE,
    DEFAULT_TIME_BUDGET,
    ShadowGit,
    WorkspaceScan,
    check_workspace,
    keepup_state_dir,
    shadow_git_dir,
)
from runtime_persistence.stores import open_store, redact_url
from runtime_persistence.tasks import Tasks
from runtime_persistence.workspaces import SnapshotBeforeChange, WorkspaceCheckpoints, WorkspaceRestore

__all__: list[str] = [
    "BUILTIN_SCHEMAS",
    "DEFAULT_EXCLUDES",
    "DEFAULT_MAX_FILE_SIZE",
    "DEFAULT_TIME_BUDGET",
    "TYPED_MEDIA_TYPE",
    "ArtifactSchemas",
    "Artifacts",
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
    "SnapshotBeforeChange",
    "Tasks",
    "WorkspaceCheckpoints",
    "WorkspaceRestore",
    "WorkspaceScan",
    "check_workspace",
    "diff_states",
    "export_threads",
    "fold_artifact_key",
    "import_threads",
    "keepup_state_dir",
    "open_store",
    "redact_url",
    "register_blob_roots",
    "shadow_git_dir",
    "unregister_blob_roots",
    "validate_artifact_key",
    "validate_scope",
]
