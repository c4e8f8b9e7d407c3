"""Checkpoints and workspace snapshots, saved and restored together, written once as async code
(:class:`AsyncWorkspaceCheckpoints`); ``WorkspaceCheckpoints`` in ``_sync/workspaces.py`` is
generated from it. The shadow-git work (git subprocesses, local files) runs in a worker thread
in the async class (``asyncio.to_thread``) and directly in the sync one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar

from runtime_core import (
    ArtifactRef,
    AsyncDriver,
    Checkpoint,
    CheckpointSource,
    Clock,
    KeepupError,
    NullTelemetry,
    RestoreReport,
    RuntimeBusyError,
    Serializer,
    Telemetry,
    ValidationError,
    WorkspaceRef,
    WorkspaceSnapshots,
)

from runtime_persistence.checkpoint import _links
from runtime_persistence.checkpoint._async.checkpoints import AsyncCheckpoints
from runtime_persistence.checkpoint._links import WorkspaceRestore, same_path
from runtime_persistence.checkpoint._records import CKPT_NS, Record, is_record_key
from runtime_persistence.shadow_git._async.packs import AsyncSnapshotPacks
from runtime_persistence.storage._async.leases import AsyncLeases
from runtime_persistence.storage.serialization import EnvelopeSerializer

__all__ = ["AsyncWorkspaceCheckpoints", "collect_snapshot_packs"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


class AsyncWorkspaceCheckpoints:
    """Checkpoints of threads that work in one workspace, saved and restored with its files.

    ``leases`` is consulted before any file is touched (default: the checkpoint store's own
    ``leases`` when it has one, like :class:`runtime_persistence.AsyncCheckpoints`). When the store
    offers ``add_removal_listener``, pruned or deleted checkpoints release their snapshots (one
    listener per store and workspace in a process, however many links are made)."""

    def __init__(
        self,
        checkpoints: AsyncCheckpoints,  # sync: checkpoints: _links.CheckpointStore,
        snapshots: WorkspaceSnapshots,
        *,
        leases: AsyncLeases | None = None,  # sync: leases: _links.LeaseStore | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._checkpoints = checkpoints
        self._snapshots = snapshots
        self._telemetry: Telemetry = telemetry or NullTelemetry()
        if leases is None:
            leases = checkpoints.leases  # sync: leases = _links.leases_of(checkpoints)
        self._leases: AsyncLeases | None = leases  # sync: self._leases = leases
        notifier = checkpoints  # sync: notifier = _links.notifier(checkpoints)
        if notifier is not None and _links.first_link(checkpoints, snapshots.workspace):
            notifier.add_removal_listener(self._on_removed)

    @property
    def checkpoints(self) -> AsyncCheckpoints:  # sync: def checkpoints(self) -> _links.CheckpointStore:
        return self._checkpoints

    @property
    def snapshots(self) -> WorkspaceSnapshots:
        return self._snapshots

    async def _git(self, fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """Run shadow-git work (subprocesses, local files): in a worker thread in async code."""
        return await asyncio.to_thread(fn, *args, **kwargs)  # sync: return fn(*args, **kwargs)

    async def save(
        self,
        thread_id: str,
        state: Mapping[str, Any],
        *,
        message: str | None = None,
        parent_id: str | None = None,
        source: CheckpointSource = CheckpointSource.LOOP,
        step: int | None = None,
        label: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        artifacts: tuple[ArtifactRef, ...] = (),
    ) -> Checkpoint:
        """Snapshot the workspace, then save a checkpoint that records the snapshot (the newest
        one when nothing changed) and keep that snapshot alive under the checkpoint's id.

        Raises what the snapshot raises (BudgetExceededError) before anything is saved, and what
        the save raises (ConflictError when the head moved); the snapshot then stays an ordinary
        snapshot that retention may drop."""
        commit = await self._git(self._snapshots.snapshot, message or f"checkpoint of thread {thread_id}")
        if commit is None:
            newest = await self._git(self._snapshots.list, limit=1)
            if not newest:  # pragma: no cover - a first snapshot always records a commit
                raise ValidationError("the workspace has no snapshot to link")
            commit = newest[0].commit
        checkpoint = await self._checkpoints.save(
            thread_id,
            state,
            parent_id=parent_id,
            source=source,
            step=step,
            label=label,
            metadata=metadata,
            workspace=WorkspaceRef(self._snapshots.workspace, commit),
            artifacts=artifacts,
        )
        await self._git(self._snapshots.keep, commit, checkpoint.id)
        self._telemetry.event(
            "workspace.checkpoint_saved", thread_id=thread_id, checkpoint_id=checkpoint.id, commit=commit
        )
        return checkpoint

    async def restore(
        self,
        checkpoint_id: str,
        *,
        workspace: bool = True,
        paths: Sequence[str] | None = None,
        dry_run: bool = False,
    ) -> WorkspaceRestore:
        """Restore the conversation of ``checkpoint_id`` (a new head with its state) and, with
        ``workspace``, its files, in one call.

        Refused with RuntimeBusyError while a live lease holds the thread, checked before any file
        is touched. Files are restored first (after a rescue snapshot); if the conversation
        restore then fails, the files are put back from the rescue snapshot and the error is
        raised. ``dry_run`` changes nothing and reports what the file restore would do. Raises
        ValidationError when the checkpoint's snapshot belongs to another workspace."""
        source = await self._checkpoints.get(checkpoint_id)
        await self._check_free(source.thread_id)
        files: RestoreReport | None = None
        if workspace and source.workspace is not None:
            if not same_path(source.workspace.workspace, self._snapshots.workspace):
                raise ValidationError(
                    f"checkpoint {checkpoint_id} was saved with workspace {source.workspace.workspace!r}, "
                    f"not {self._snapshots.workspace!r}: use the snapshots of that workspace"
                )
            files = await self._git(self._snapshots.restore, source.workspace.commit, paths, dry_run=dry_run)
        if dry_run:
            return WorkspaceRestore(source, None, files, dry_run=True)
        try:
            restored = await self._checkpoints.restore(checkpoint_id)
        except BaseException:
            if files is not None and files.rescue_commit is not None:
                await self._git(self._snapshots.restore, files.rescue_commit, paths)
            raise
        if restored.workspace is not None and same_path(
            restored.workspace.workspace, self._snapshots.workspace
        ):
            await self._git(self._snapshots.keep, restored.workspace.commit, restored.id)
        self._telemetry.event(
            "workspace.checkpoint_restored",
            thread_id=source.thread_id,
            checkpoint_id=restored.id,
            restored_from=source.id,
            files_changed=0
            if files is None
            else len(files.changed) + len(files.created) + len(files.removed),
        )
        return WorkspaceRestore(source, restored, files)

    async def _check_free(self, thread_id: str) -> None:
        if self._leases is None:
            return
        lease = await self._leases.current(thread_id)
        if lease is not None:
            raise RuntimeBusyError(
                f"cannot restore: thread {thread_id} is held by run {lease.holder} until "
                f"{lease.expires_at.isoformat()}; stop that run or wait for its lease to expire",
                thread_id=thread_id,
                holder=lease.holder,
            )

    async def _on_removed(self, thread_id: str, removed: tuple[str, ...]) -> None:
        """Release the snapshots of removed checkpoints. The checkpoints are already gone, so a
        failure here is reported, not raised: the snapshot then lives until snapshot retention."""
        for checkpoint_id in removed:
            try:
                await self._git(self._snapshots.release, checkpoint_id)
            except KeepupError as exc:
                self._telemetry.event(
                    "workspace.release_failed",
                    thread_id=thread_id,
                    checkpoint_id=checkpoint_id,
                    error=type(exc).__name__,
                    message=str(exc)[:500],
                )


async def collect_snapshot_packs(
    driver: AsyncDriver,
    *,
    grace: timedelta = timedelta(hours=1),
    dry_run: bool = False,
    clock: Clock | None = None,
    serializer: Serializer | None = None,
) -> list[str]:
    """Remove the store's records of published snapshots that no checkpoint names (directly or
    as the prerequisite of one that does) and that are older than ``grace``; return their
    commits. Blob garbage collection afterwards frees their packs. A snapshot a checkpoint saved
    during this call names is kept when its record is younger than ``grace``; an older one it
    reuses unchanged may be removed, and that checkpoint then restores its files only on hosts
    that hold the snapshot locally (run with a grace longer than a run)."""
    ser: Serializer = serializer or EnvelopeSerializer()  # an encrypted store: the caller's, with its keyring
    live: set[str] = set()
    async for entry in driver.scan(CKPT_NS):
        thread_id = entry.key.split("/", 1)[0]
        if not is_record_key(entry.key, thread_id):
            continue
        rec: Record = ser.loads(entry.value, Record, at=(CKPT_NS, entry.key))
        if rec.workspace is not None:
            live.add(rec.workspace[1])
    packs = AsyncSnapshotPacks(driver, clock=clock, serializer=ser)
    return await packs.collect(live, grace=grace, dry_run=dry_run)
