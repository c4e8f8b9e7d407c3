"""The JSON shapes printed by ``--json`` (documented in docs/cli.md, checked by tests).

Every shape is built here explicitly, field by field, so that a change to a record class cannot
change the command line's output by accident."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keepup._cli.rendering import plain
from keepup._cli.values import render_values

if TYPE_CHECKING:
    from runtime_core import (
        ArtifactVersion,
        Checkpoint,
        DiffEntry,
        FileChange,
        GcReport,
        Lease,
        PruneReport,
        RestoreReport,
        Run,
        SnapshotInfo,
        Thread,
        WorkspaceRef,
    )

__all__ = [
    "artifact_json",
    "checkpoint_json",
    "diff_entry_json",
    "file_change_json",
    "gc_json",
    "lease_json",
    "prune_json",
    "restore_report_json",
    "run_json",
    "snapshot_json",
    "thread_json",
    "workspace_json",
]


def thread_json(thread: Thread) -> dict[str, Any]:
    return {
        "id": thread.id,
        "name": thread.name,
        "metadata": plain(thread.metadata),
        "parent_thread_id": thread.parent_thread_id,
        "forked_from": thread.forked_from,
        "head": thread.head,
        "created_at": thread.created_at.isoformat(),
        "updated_at": thread.updated_at.isoformat(),
    }


def workspace_json(ref: WorkspaceRef | None) -> dict[str, Any] | None:
    return None if ref is None else {"workspace": ref.workspace, "commit": ref.commit}


def checkpoint_json(cp: Checkpoint, *, state: bool = False) -> dict[str, Any]:
    """A checkpoint; with ``state`` also its channels and pending writes."""
    status = cp.state.get("status")
    out: dict[str, Any] = {
        "id": cp.id,
        "thread_id": cp.thread_id,
        "parent_id": cp.parent_id,
        "step": cp.step,
        "source": cp.source.value,
        "label": cp.label,
        "created_at": cp.created_at.isoformat(),
        "metadata": plain(cp.metadata),
        "status": status if isinstance(status, str) else None,
        "workspace": workspace_json(cp.workspace),
        "artifacts": [{"scope": a.scope, "key": a.key, "version": a.version} for a in cp.artifacts],
        "pending_write_count": len(cp.pending_writes),
    }
    if state:
        out["state"] = plain(render_values(cp.state))
        out["pending_writes"] = [
            {
                "task_id": w.task_id,
                "channel": w.channel,
                "value": plain(render_values(w.value)),
                "created_at": w.created_at.isoformat(),
            }
            for w in cp.pending_writes
        ]
    return out


def diff_entry_json(entry: DiffEntry) -> dict[str, Any]:
    return {"path": entry.path, "kind": entry.kind.value, "old": plain(entry.old), "new": plain(entry.new)}


def file_change_json(change: FileChange) -> dict[str, Any]:
    return {
        "path": change.path,
        "status": change.status.value,
        "old_path": change.old_path,
        "patch": change.patch,
    }


def prune_json(report: PruneReport) -> dict[str, Any]:
    return {
        "thread_id": report.thread_id,
        "dry_run": report.dry_run,
        "removed": list(report.removed),
        "kept": list(report.kept),
        "protected": dict(report.protected),
    }


def gc_json(report: GcReport) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "blobs_removed": report.blobs_removed,
        "bytes_freed": report.bytes_freed,
        "records_removed": report.records_removed,
        "blobs_kept_young": report.blobs_kept_young,
    }


def restore_report_json(report: RestoreReport) -> dict[str, Any]:
    return {
        "commit": report.commit,
        "dry_run": report.dry_run,
        "changed": list(report.changed),
        "created": list(report.created),
        "removed": list(report.removed),
        "skipped": list(report.skipped),
        "rescue_commit": report.rescue_commit,
    }


def snapshot_json(info: SnapshotInfo) -> dict[str, Any]:
    return {
        "commit": info.commit,
        "message": info.message,
        "created_at": info.created_at.isoformat(),
        "files": info.files,
    }


def artifact_json(version: ArtifactVersion) -> dict[str, Any]:
    return {
        "scope": version.scope,
        "key": version.key,
        "version": version.version,
        "digest": version.digest,
        "size": version.size,
        "media_type": version.media_type,
        "artifact_type": version.artifact_type,
        "created_at": version.created_at.isoformat(),
        "metadata": plain(version.metadata),
        "quarantined": version.quarantined,
        "quarantine_reason": version.quarantine_reason,
    }


def run_json(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "thread_id": run.thread_id,
        "agent": run.agent,
        "status": run.status.value,
        "started_at": run.started_at.isoformat(),
        "ended_at": None if run.ended_at is None else run.ended_at.isoformat(),
        "steps": run.steps,
        "error": None
        if run.error is None
        else {"message": run.error.message, "code": run.error.code, "recoverable": run.error.recoverable},
        "cancel_requested": run.cancel_requested,
        "metadata": plain(run.metadata),
    }


def lease_json(lease: Lease | None) -> dict[str, Any] | None:
    if lease is None:
        return None
    return {
        "holder": lease.holder,
        "owner": lease.owner,
        "acquired_at": lease.acquired_at.isoformat(),
        "expires_at": lease.expires_at.isoformat(),
    }
