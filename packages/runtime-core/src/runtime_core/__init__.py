"""Keepup core: the data model, the interfaces (Protocols) every store implements, the typed
errors, time-sortable ids and an injectable clock. Standard library only; no I/O."""

# Made lazy by scripts/gen_facade.py: add a re-export to the imports under TYPE_CHECKING,
# then run the script, which rewrites __all__, _SOURCES and __getattr__ from them.

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime_core.artifacts import (
        ArtifactRef,
        ArtifactStore,
        ArtifactVersion,
        TypedArtifact,
    )
    from runtime_core.checkpoints import (
        Checkpoint,
        CheckpointSource,
        CheckpointStore,
        DiffEntry,
        DiffKind,
        GcReport,
        PendingWrite,
        PruneReport,
    )
    from runtime_core.clock import (
        Clock,
        ManualClock,
        SystemClock,
        utc_now,
    )
    from runtime_core.errors import (
        BudgetExceededError,
        ConflictError,
        CorruptionError,
        DriverUnavailableError,
        KeepupError,
        NotFoundError,
        RecoveryRefusedError,
        RuntimeBusyError,
        StorageError,
        UnsafeWorkspaceError,
        ValidationError,
    )
    from runtime_core.events import (
        Event,
        EventLog,
    )
    from runtime_core.ids import (
        id_timestamp,
        new_id,
        validate_id,
    )
    from runtime_core.runs import (
        Message,
        RecoveryPlan,
        Run,
        RunError,
        RunState,
        RunStatus,
        ToolCall,
        ToolCallResult,
        prepare_recovery,
    )
    from runtime_core.serialization import (
        Serializer,
    )
    from runtime_core.sessions import (
        SESSION_FORMAT_VERSION,
        Lease,
        LeaseStore,
        RunStore,
        Session,
        SessionStatus,
        SessionStore,
        SweepReport,
    )
    from runtime_core.storage import (
        MAX_KEY_BYTES,
        AsyncBlobArea,
        AsyncDriver,
        BlobArea,
        BlobInfo,
        Delete,
        Driver,
        Durability,
        Entry,
        Put,
        blob_digest,
        validate_digest,
        validate_key,
        validate_namespace,
    )
    from runtime_core.tasks import (
        MAX_DESCRIPTION_CHARS,
        TASK_TRANSITIONS,
        ImportedTask,
        Task,
        TaskImportItem,
        TaskImportReport,
        TaskLog,
        TaskRepository,
        TaskStatus,
        TaskTreeNode,
        check_transition,
    )
    from runtime_core.telemetry import (
        NullTelemetry,
        Telemetry,
    )
    from runtime_core.threads import (
        Thread,
    )
    from runtime_core.tools import (
        OutputSink,
        ToolDescription,
        ToolInvoker,
    )
    from runtime_core.workspace import (
        BeforeChangeHook,
        ChangedPaths,
        FileChange,
        FileStatus,
        RestoreReport,
        SnapshotInfo,
        WorkspaceRef,
        WorkspaceSnapshots,
    )

__version__ = "0.1.0"

__all__ = [
    "MAX_DESCRIPTION_CHARS",
    "MAX_KEY_BYTES",
    "SESSION_FORMAT_VERSION",
    "TASK_TRANSITIONS",
    "ArtifactRef",
    "ArtifactStore",
    "ArtifactVersion",
    "AsyncBlobArea",
    "AsyncDriver",
    "BeforeChangeHook",
    "BlobArea",
    "BlobInfo",
    "BudgetExceededError",
    "ChangedPaths",
    "Checkpoint",
    "CheckpointSource",
    "CheckpointStore",
    "Clock",
    "ConflictError",
    "CorruptionError",
    "Delete",
    "DiffEntry",
    "DiffKind",
    "Driver",
    "DriverUnavailableError",
    "Durability",
    "Entry",
    "Event",
    "EventLog",
    "FileChange",
    "FileStatus",
    "GcReport",
    "ImportedTask",
    "KeepupError",
    "Lease",
    "LeaseStore",
    "ManualClock",
    "Message",
    "NotFoundError",
    "NullTelemetry",
    "OutputSink",
    "PendingWrite",
    "PruneReport",
    "Put",
    "RecoveryPlan",
    "RecoveryRefusedError",
    "RestoreReport",
    "Run",
    "RunError",
    "RunState",
    "RunStatus",
    "RunStore",
    "RuntimeBusyError",
    "Serializer",
    "Session",
    "SessionStatus",
    "SessionStore",
    "SnapshotInfo",
    "StorageError",
    "SweepReport",
    "SystemClock",
    "Task",
    "TaskImportItem",
    "TaskImportReport",
    "TaskLog",
    "TaskRepository",
    "TaskStatus",
    "TaskTreeNode",
    "Telemetry",
    "Thread",
    "ToolCall",
    "ToolCallResult",
    "ToolDescription",
    "ToolInvoker",
    "TypedArtifact",
    "UnsafeWorkspaceError",
    "ValidationError",
    "WorkspaceRef",
    "WorkspaceSnapshots",
    "blob_digest",
    "check_transition",
    "id_timestamp",
    "new_id",
    "prepare_recovery",
    "utc_now",
    "validate_digest",
    "validate_id",
    "validate_key",
    "validate_namespace",
]

# Where each name is imported from, on first use.
_SOURCES: dict[str, str] = {
    "MAX_DESCRIPTION_CHARS": "runtime_core.tasks",
    "MAX_KEY_BYTES": "runtime_core.storage",
    "SESSION_FORMAT_VERSION": "runtime_core.sessions",
    "TASK_TRANSITIONS": "runtime_core.tasks",
    "ArtifactRef": "runtime_core.artifacts",
    "ArtifactStore": "runtime_core.artifacts",
    "ArtifactVersion": "runtime_core.artifacts",
    "AsyncBlobArea": "runtime_core.storage",
    "AsyncDriver": "runtime_core.storage",
    "BeforeChangeHook": "runtime_core.workspace",
    "BlobArea": "runtime_core.storage",
    "BlobInfo": "runtime_core.storage",
    "BudgetExceededError": "runtime_core.errors",
    "ChangedPaths": "runtime_core.workspace",
    "Checkpoint": "runtime_core.checkpoints",
    "CheckpointSource": "runtime_core.checkpoints",
    "CheckpointStore": "runtime_core.checkpoints",
    "Clock": "runtime_core.clock",
    "ConflictError": "runtime_core.errors",
    "CorruptionError": "runtime_core.errors",
    "Delete": "runtime_core.storage",
    "DiffEntry": "runtime_core.checkpoints",
    "DiffKind": "runtime_core.checkpoints",
    "Driver": "runtime_core.storage",
    "DriverUnavailableError": "runtime_core.errors",
    "Durability": "runtime_core.storage",
    "Entry": "runtime_core.storage",
    "Event": "runtime_core.events",
    "EventLog": "runtime_core.events",
    "FileChange": "runtime_core.workspace",
    "FileStatus": "runtime_core.workspace",
    "GcReport": "runtime_core.checkpoints",
    "ImportedTask": "runtime_core.tasks",
    "KeepupError": "runtime_core.errors",
    "Lease": "runtime_core.sessions",
    "LeaseStore": "runtime_core.sessions",
    "ManualClock": "runtime_core.clock",
    "Message": "runtime_core.runs",
    "NotFoundError": "runtime_core.errors",
    "NullTelemetry": "runtime_core.telemetry",
    "OutputSink": "runtime_core.tools",
    "PendingWrite": "runtime_core.checkpoints",
    "PruneReport": "runtime_core.checkpoints",
    "Put": "runtime_core.storage",
    "RecoveryPlan": "runtime_core.runs",
    "RecoveryRefusedError": "runtime_core.errors",
    "RestoreReport": "runtime_core.workspace",
    "Run": "runtime_core.runs",
    "RunError": "runtime_core.runs",
    "RunState": "runtime_core.runs",
    "RunStatus": "runtime_core.runs",
    "RunStore": "runtime_core.sessions",
    "RuntimeBusyError": "runtime_core.errors",
    "Serializer": "runtime_core.serialization",
    "Session": "runtime_core.sessions",
    "SessionStatus": "runtime_core.sessions",
    "SessionStore": "runtime_core.sessions",
    "SnapshotInfo": "runtime_core.workspace",
    "StorageError": "runtime_core.errors",
    "SweepReport": "runtime_core.sessions",
    "SystemClock": "runtime_core.clock",
    "Task": "runtime_core.tasks",
    "TaskImportItem": "runtime_core.tasks",
    "TaskImportReport": "runtime_core.tasks",
    "TaskLog": "runtime_core.tasks",
    "TaskRepository": "runtime_core.tasks",
    "TaskStatus": "runtime_core.tasks",
    "TaskTreeNode": "runtime_core.tasks",
    "Telemetry": "runtime_core.telemetry",
    "Thread": "runtime_core.threads",
    "ToolCall": "runtime_core.runs",
    "ToolCallResult": "runtime_core.runs",
    "ToolDescription": "runtime_core.tools",
    "ToolInvoker": "runtime_core.tools",
    "TypedArtifact": "runtime_core.artifacts",
    "UnsafeWorkspaceError": "runtime_core.errors",
    "ValidationError": "runtime_core.errors",
    "WorkspaceRef": "runtime_core.workspace",
    "WorkspaceSnapshots": "runtime_core.workspace",
    "blob_digest": "runtime_core.storage",
    "check_transition": "runtime_core.tasks",
    "id_timestamp": "runtime_core.ids",
    "new_id": "runtime_core.ids",
    "prepare_recovery": "runtime_core.runs",
    "utc_now": "runtime_core.clock",
    "validate_digest": "runtime_core.storage",
    "validate_id": "runtime_core.ids",
    "validate_key": "runtime_core.storage",
    "validate_namespace": "runtime_core.storage",
}

# Submodules reachable as attributes, as they were when this module imported them.
_SUBMODULES = frozenset(
    {
        "_validation",
        "artifacts",
        "checkpoints",
        "clock",
        "errors",
        "events",
        "ids",
        "runs",
        "serialization",
        "sessions",
        "storage",
        "tasks",
        "telemetry",
        "threads",
        "tools",
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
