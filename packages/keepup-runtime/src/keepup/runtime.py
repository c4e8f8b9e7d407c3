"""The composition root: one object that opens a store and gives every part of Keepup wired to it.

``open_runtime()`` with no arguments opens the embedded SQLite store in the Keepup home, which is
the user's state directory (``platformdirs.user_state_dir("keepup")``) unless ``KEEPUP_HOME`` names
another; ``KEEPUP_STORE_URL`` (or the ``store`` argument) chooses any other store by URL.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import platformdirs
from runtime_core import (
    ArtifactRef,
    Checkpoint,
    Clock,
    ConflictError,
    Driver,
    Durability,
    GcReport,
    KeepupError,
    NullTelemetry,
    PruneReport,
    RestoreReport,
    Run,
    RunStatus,
    SessionStatus,
    SystemClock,
    Telemetry,
    ValidationError,
)
from runtime_execution import Agent, Runner
from runtime_persistence import (
    Artifacts,
    AsyncCheckpoints,
    AsyncEvents,
    AsyncLeases,
    AsyncRunRecords,
    AsyncSessions,
    AsyncSessionSweeper,
    AsyncTasks,
    Checkpoints,
    Events,
    Leases,
    RunRecords,
    Sessions,
    SessionSweeper,
    ShadowGit,
    SnapshotBeforeChange,
    SnapshotPacks,
    SweeperThread,
    Tasks,
    WorkspaceCheckpoints,
    collect_snapshot_packs,
)
from runtime_persistence.storage.private import PRIVATE_DIR
from runtime_persistence.storage.stores import open_store
from runtime_persistence.storage.threaded import AsyncThreadDriver
from runtime_tools import ToolRegistry, ToolSpec, WorkspaceTools

__all__ = [
    "HOME_ENV",
    "SHARE_SNAPSHOTS_ENV",
    "STORE_URL_ENV",
    "TOOL_OUTPUT_SCOPE",
    "ArtifactOutputSink",
    "Runtime",
    "SessionRuns",
    "default_store_url",
    "keepup_home",
    "open_runtime",
    "shares_snapshots_by_default",
]

HOME_ENV = "KEEPUP_HOME"
STORE_URL_ENV = "KEEPUP_STORE_URL"
STORE_FILE = "keepup.db"
TOOL_OUTPUT_SCOPE = "tool-outputs"
SHARE_SNAPSHOTS_ENV = "KEEPUP_SHARE_SNAPSHOTS"
_LOCAL_SCHEMES = ("sqlite", "file", "memory")


def shares_snapshots_by_default(driver: Driver) -> bool:
    """Whether workspace snapshots go to ``driver``'s blob area unless told otherwise:
    ``$KEEPUP_SHARE_SNAPSHOTS`` (``1``/``0``) when set, else yes for a server store (PostgreSQL,
    MySQL, Redis, MongoDB: stores other hosts can reach) and no for SQLite, files and memory."""
    env = os.environ.get(SHARE_SNAPSHOTS_ENV, "").strip().lower()
    if env in ("1", "true", "yes", "on"):
        return True
    if env in ("0", "false", "no", "off"):
        return False
    if env:
        raise ValidationError(f"{SHARE_SNAPSHOTS_ENV} is 1 or 0, got {env!r:.40}")
    scheme = driver.url.split(":", 1)[0].split("+", 1)[0].lower()
    return scheme not in _LOCAL_SCHEMES


def keepup_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The Keepup home: ``home`` if given, else ``$KEEPUP_HOME``, else the user's state directory.

    Holds the default SQLite store (``keepup.db``), the shadow-git snapshots (``shadow/``) and the
    demo's scratch workspaces (``demo/``). Not created here; :func:`open_runtime` creates it 0700
    (``keepup store doctor --fix`` makes an existing one private)."""
    if home is not None:
        return Path(home).expanduser().resolve()
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return Path(platformdirs.user_state_dir("keepup")).resolve()


def default_store_url(home: str | os.PathLike[str] | None = None) -> str:
    """The URL of the embedded SQLite store in the Keepup home (``sqlite:////abs/keepup.db``)."""
    from runtime_persistence.storage.drivers.sqlite import sqlite_url

    return sqlite_url(keepup_home(home) / STORE_FILE)


def resolved_store_url(store: str | None = None, home: str | os.PathLike[str] | None = None) -> str:
    """The URL :func:`open_runtime` opens for these arguments: ``store``, else
    ``$KEEPUP_STORE_URL``, else the embedded store in the Keepup home."""
    return store or os.environ.get(STORE_URL_ENV) or default_store_url(home)


class ArtifactOutputSink:
    """Where the tool registry puts outputs too large to keep inline: an artifact per call, in
    ``scope`` (implements :class:`runtime_core.OutputSink`)."""

    def __init__(self, artifacts: Artifacts, scope: str = TOOL_OUTPUT_SCOPE) -> None:
        self.artifacts = artifacts
        self.scope = scope

    def store_output(self, call_id: str, data: bytes, media_type: str) -> ArtifactRef:
        """Store ``data`` as the next version of the key ``call_id`` and return its reference."""
        return self.artifacts.put(self.scope, call_id, data, media_type=media_type).ref


class SessionRuns:
    """The run records, linking every run created through them (and its thread) to a session:
    what :meth:`Runtime.runner` hands the runner when given a ``session_id``. Implements
    :class:`runtime_core.RunStore` by delegating to ``runs``."""

    def __init__(self, runs: RunRecords, sessions: Sessions, session_id: str) -> None:
        self._runs = runs
        self._sessions = sessions
        self.session_id = session_id

    def create(self, run: Run) -> Run:
        """Create the run, then link it and its thread to the session (ConflictError, after the
        run exists, when the session is no longer active)."""
        created = self._runs.create(run)
        self._sessions.link(self.session_id, thread_id=created.thread_id, run_id=created.id)
        return created

    def get(self, run_id: str) -> Run:
        return self._runs.get(run_id)

    def update(self, run: Run) -> Run:
        return self._runs.update(run)

    def list(
        self, *, thread_id: str | None = None, status: RunStatus | None = None, limit: int = 50
    ) -> list[Run]:
        return self._runs.list(thread_id=thread_id, status=status, limit=limit)

    def request_cancel(self, run_id: str) -> Run:
        return self._runs.request_cancel(run_id)


ToolSource = ToolRegistry | Iterable[ToolSpec | Callable[..., Any]]
"""Tools for :meth:`Runtime.runner`: a registry to use as is, or tool specs and plain functions to
register (their JSON Schema is derived from the type hints)."""


class Runtime:
    """Every part of Keepup over one store, wired together. Close it (or use it as a context
    manager) when done: that closes the store if this runtime opened it.

    * ``checkpoints``: threads and checkpoints (:class:`runtime_persistence.Checkpoints`);
    * ``leases`` and ``runs``: who runs which thread, and the run records;
    * ``artifacts``: versioned, content-addressed artifacts;
    * ``sessions``, ``tasks`` and ``events``: the session DB, the task board and the event log
      (``async_sessions``, ``async_tasks``, ``async_events``, ``async_runs`` and
      ``async_checkpoints`` are their async twins on the same store, its calls on worker threads);
    * ``sweeper(...)`` and ``start_sweeper(...)``: the session sweeper, once or in the background;
    * ``snapshots(path)``: the shadow-git snapshots of a workspace, kept under ``<home>/shadow``;
    * ``snapshots(path)``: the shadow-git snapshots of a workspace, kept under ``<home>/shadow``
      and, with ``share_snapshots`` (on by default for server stores), published to the store's
      blob area so every host sharing the store can diff and restore them; a snapshot missing
      here is always looked for in the store (an import or another host may have put it there);
    * ``runner(...)``: a durable runner wired to a tool registry whose workspace tools take a
      snapshot before every change and report what they changed to the workspace's snapshots;
      with ``trust_tool_changes`` (off by default: declare it only when nothing but these tools
      changes the workspace) a snapshot then stages only the reported paths, falling back to a
      full scan whenever that cannot be trusted (see ``runtime_persistence.shadow_git.touched``);
    * ``telemetry`` and ``clock``: what every part reports to and reads the time from.

    Safe to share between threads of one process."""

    def __init__(
        self,
        driver: Driver,
        *,
        home: Path,
        telemetry: Telemetry | None = None,
        clock: Clock | None = None,
        owns_driver: bool = True,
        share_snapshots: bool | None = None,
        trust_tool_changes: bool = False,
    ) -> None:
        self.driver = driver
        self.trust_tool_changes = bool(trust_tool_changes)
        self.share_snapshots = (
            shares_snapshots_by_default(driver) if share_snapshots is None else bool(share_snapshots)
        )
        self.home = home
        self.telemetry: Telemetry = telemetry if telemetry is not None else NullTelemetry()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.leases = Leases(driver, clock=self.clock)
        self.checkpoints = Checkpoints(driver, leases=self.leases, clock=self.clock, telemetry=self.telemetry)
        self.runs = RunRecords(driver)
        self.artifacts = Artifacts(driver, clock=self.clock, telemetry=self.telemetry)
        self.sessions = Sessions(driver, clock=self.clock)
        self.tasks = Tasks(driver, clock=self.clock)
        self.events = Events(driver, clock=self.clock)
        self.async_driver = AsyncThreadDriver(driver)
        self.async_leases = AsyncLeases(self.async_driver, clock=self.clock)
        self.async_checkpoints = AsyncCheckpoints(
            self.async_driver, leases=self.async_leases, clock=self.clock, telemetry=self.telemetry
        )
        self.async_runs = AsyncRunRecords(self.async_driver)
        self.async_sessions = AsyncSessions(self.async_driver, clock=self.clock)
        self.async_tasks = AsyncTasks(self.async_driver, clock=self.clock)
        self.async_events = AsyncEvents(self.async_driver, clock=self.clock)
        self._owns_driver = owns_driver
        self._closed = False
        self._lock = threading.Lock()
        self._snapshots: dict[str, ShadowGit] = {}
        self._sweepers: list[SweeperThread] = []

    @property
    def shadow_dir(self) -> Path:
        """Where the shadow-git directories of every workspace live."""
        return self.home / "shadow"

    def snapshots(self, workspace: str | os.PathLike[str]) -> ShadowGit:
        """The shadow-git snapshots of ``workspace`` (one shared object per resolved path).

        Raises ValidationError when the path is not a directory, UnsafeWorkspaceError for a home
        or system folder, DriverUnavailableError when git is not installed."""
        key = str(Path(workspace).expanduser().resolve())
        with self._lock:
            found = self._snapshots.get(key)
            if found is None:
                found = ShadowGit(
                    key,
                    state_dir=self.home,
                    telemetry=self.telemetry,
                    shared=SnapshotPacks(self.driver, publishing=self.share_snapshots, clock=self.clock),
                    trust_changed_paths=self.trust_tool_changes,
                )
                self._snapshots[key] = found
            return found

    def tools(
        self, tools: ToolSource | None = None, workspace: str | os.PathLike[str] | None = None
    ) -> ToolRegistry:
        """A tool registry holding ``tools`` and, with ``workspace``, the workspace tools confined
        to it, which take a shadow-git snapshot before every change (so every change can be
        undone with ``keepup snapshot restore``)."""
        if isinstance(tools, ToolRegistry):
            registry = tools
        else:
            registry = ToolRegistry(telemetry=self.telemetry, output_sink=ArtifactOutputSink(self.artifacts))
            for tool in tools or ():
                registry.register(tool if isinstance(tool, ToolSpec) else ToolSpec.from_function(tool))
        if workspace is not None:
            snaps = self.snapshots(workspace)

            WorkspaceTools(
                snaps.workspace, before_change=SnapshotBeforeChange(snaps), changes=snaps
            ).register(registry)
        return registry

    def runner(
        self,
        tools: ToolSource | None = None,
        workspace: str | os.PathLike[str] | None = None,
        *,
        agents: Sequence[Agent] = (),
        session_id: str | None = None,
        **options: Any,
    ) -> Runner:
        """A durable runner on this runtime's stores, with the tools of :meth:`tools`; with
        ``workspace`` it also snapshots the workspace with every checkpoint, so files and
        conversation restore together; with ``session_id`` every run it starts (and its thread)
        is linked to that active session (NotFoundError, ConflictError for a closed one, before
        anything runs). ``options`` go to :class:`runtime_execution.Runner` (``lease_ttl``,
        ``tool_timeout``…)."""
        runs: RunRecords | SessionRuns = self.runs
        if session_id is not None:
            session = self.sessions.get(session_id)
            if session.status is not SessionStatus.ACTIVE:
                raise ConflictError(
                    f"session {session_id} is {session.status.value}; runs link to an active session"
                )
            runs = SessionRuns(self.runs, self.sessions, session_id)
        return Runner(
            self.checkpoints,
            self.leases,
            runs,
            self.tools(tools, workspace),
            agents=agents,
            workspace=None if workspace is None else self.snapshots(workspace),
            clock=self.clock,
            telemetry=self.telemetry,
            **options,
        )

    def restore(
        self, checkpoint_id: str, *, workspace: bool = False
    ) -> tuple[Checkpoint, RestoreReport | None]:
        """Make ``checkpoint_id`` its thread's head again (a new checkpoint with its state) and,
        with ``workspace``, bring the workspace files back to the checkpoint's snapshot too
        (:class:`runtime_persistence.WorkspaceCheckpoints`). Returns the new head and what the
        file restore changed.

        Refused with RuntimeBusyError (naming the run) while a live lease holds the thread, before
        any file is touched. The file restore takes a rescue snapshot first (the report's
        ``rescue_commit``), and puts the files back if the conversation restore then fails.
        Raises ValidationError with ``workspace`` when the checkpoint has no snapshot."""
        cp = self.checkpoints.get(checkpoint_id)
        self.leases.check_free(cp.thread_id, "restore")
        if not workspace:
            return self.checkpoints.restore(checkpoint_id), None
        if cp.workspace is None:
            raise ValidationError(f"checkpoint {cp.id} has no workspace snapshot to restore files from")
        linked = WorkspaceCheckpoints(
            self.checkpoints, self.snapshots(cp.workspace.workspace), leases=self.leases
        )
        done = linked.restore(checkpoint_id, workspace=True)
        if done.checkpoint is None:  # pragma: no cover - only a dry run returns no checkpoint
            raise ValidationError("the restore wrote no checkpoint")
        return done.checkpoint, done.files

    def prune(
        self,
        thread_id: str,
        *,
        keep_last: int | None = None,
        older_than: timedelta | None = None,
        keep_labeled: bool = True,
        dry_run: bool = False,
    ) -> PruneReport:
        """:meth:`Checkpoints.prune`, then release the workspace snapshots the removed
        checkpoints kept alive (so that snapshot retention may drop them)."""
        plan = self.checkpoints.prune(
            thread_id, keep_last=keep_last, older_than=older_than, keep_labeled=keep_labeled, dry_run=True
        )
        if dry_run:
            return plan
        workspaces = self._workspaces_of(plan.removed)
        report = self.checkpoints.prune(
            thread_id, keep_last=keep_last, older_than=older_than, keep_labeled=keep_labeled
        )
        self._release(report.removed, workspaces)
        return report

    def delete_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        """:meth:`Checkpoints.delete`, then release the workspace snapshot the checkpoint kept
        alive. Returns the checkpoint as it was. Refused for the head, pinned checkpoints, fork
        origins (ValidationError) and while a run holds the thread (RuntimeBusyError)."""
        cp = self.checkpoints.get(checkpoint_id)
        self.checkpoints.delete(checkpoint_id)
        if cp.workspace is not None:
            self._release([cp.id], {cp.id: cp.workspace.workspace})
        return cp

    def delete_thread(self, thread_id: str) -> None:
        """:meth:`Checkpoints.delete_thread`, then release the workspace snapshots its
        checkpoints kept alive. Refused with RuntimeBusyError while a run holds the thread."""
        self.leases.check_free(thread_id, "delete")
        ids: list[str] = []
        before: str | None = None
        while page := self.checkpoints.list(thread_id, before=before, limit=1000):
            ids.extend(cp.id for cp in page)
            before = page[-1].id
        workspaces = self._workspaces_of(ids)
        self.checkpoints.delete_thread(thread_id)
        self._release(ids, workspaces)

    def _workspaces_of(self, checkpoint_ids: Iterable[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for checkpoint_id in checkpoint_ids:
            ref = self.checkpoints.get(checkpoint_id).workspace
            if ref is not None:
                found[checkpoint_id] = ref.workspace
        return found

    def _release(self, removed: Iterable[str], workspaces: dict[str, str]) -> None:
        for checkpoint_id in removed:
            folder = workspaces.get(checkpoint_id)
            if folder is None:
                continue
            try:
                self.snapshots(folder).release(checkpoint_id)
            except KeepupError as exc:  # the checkpoint is gone; its snapshot waits for retention
                self.telemetry.event(
                    "runtime.snapshot_release_failed", checkpoint_id=checkpoint_id, error=type(exc).__name__
                )

    def sweeper(
        self,
        *,
        stale_after: timedelta = timedelta(minutes=30),
        purge_after: timedelta | None = None,
        delete_linked: bool = False,
    ) -> SessionSweeper:
        """A session sweeper on this runtime's store (see :class:`runtime_persistence.SessionSweeper`):
        sessions silent for ``stale_after`` become stale; closed and stale ones that ended
        ``purge_after`` ago are purged, with their threads and runs when ``delete_linked``."""
        return SessionSweeper(
            self.sessions,
            stale_after=stale_after,
            purge_after=purge_after,
            delete_linked=delete_linked,
            checkpoints=self.checkpoints,
            runs=self.runs,
        )

    def async_sweeper(
        self,
        *,
        stale_after: timedelta = timedelta(minutes=30),
        purge_after: timedelta | None = None,
        delete_linked: bool = False,
    ) -> AsyncSessionSweeper:
        """The async twin of :meth:`sweeper` (run it with
        :func:`runtime_persistence.sweep_forever`)."""
        return AsyncSessionSweeper(
            self.async_sessions,
            stale_after=stale_after,
            purge_after=purge_after,
            delete_linked=delete_linked,
            checkpoints=self.async_checkpoints,
            runs=self.async_runs,
        )

    def start_sweeper(
        self,
        interval: timedelta = timedelta(minutes=1),
        *,
        stale_after: timedelta = timedelta(minutes=30),
        purge_after: timedelta | None = None,
        delete_linked: bool = False,
    ) -> SweeperThread:
        """Sweep sessions every ``interval`` on a daemon thread until the runtime closes (or the
        returned thread is stopped). Safe to run in every long-running process sharing a store.
        Each pass is reported to telemetry (``session.sweep``; ``session.sweep_failed``)."""
        thread = SweeperThread(
            self.sweeper(stale_after=stale_after, purge_after=purge_after, delete_linked=delete_linked),
            interval,
            on_report=lambda r: self.telemetry.event(
                "session.sweep", marked_stale=len(r.marked_stale), purged=len(r.purged)
            ),
            on_error=lambda e: self.telemetry.event("session.sweep_failed", error=type(e).__name__),
        )
        with self._lock:
            self._sweepers.append(thread)
        return thread.start()

    def gc(self, *, grace: timedelta | None = None, dry_run: bool = False) -> GcReport:
        """Collect garbage: first the store's records of shared snapshots that no checkpoint
        needs any more (older than ``grace``), then every unreferenced blob and record
        (:meth:`Checkpoints.gc`), which frees their packs. ``records_removed`` counts both."""
        window = timedelta(hours=1) if grace is None else grace
        packs = collect_snapshot_packs(self.driver, grace=window, dry_run=dry_run, clock=self.clock)
        report = self.checkpoints.gc(grace=window, dry_run=dry_run)
        return dataclasses.replace(report, records_removed=report.records_removed + len(packs))

    def close(self) -> None:
        """Stop the background sweepers and close the store (when this runtime opened it). Safe
        to call twice."""
        if self._closed:
            return
        self._closed = True
        for sweeper in self._sweepers:
            sweeper.stop()
        if self._owns_driver:
            self.driver.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_runtime(
    store: str | Driver | None = None,
    home: str | os.PathLike[str] | None = None,
    *,
    durability: Durability | str = Durability.DURABLE,
    telemetry: Telemetry | None = None,
    clock: Clock | None = None,
    share_snapshots: bool | None = None,
    trust_tool_changes: bool = False,
) -> Runtime:
    """Open Keepup over ``store``: a URL, an open driver (which stays the caller's to close), or
    None for ``$KEEPUP_STORE_URL`` or else the embedded SQLite store in the Keepup home.

    ``share_snapshots`` publishes workspace snapshots to the store (default: see
    :func:`shares_snapshots_by_default`). ``trust_tool_changes`` declares that nothing but the
    runtime's workspace tools changes its workspaces, so snapshots may stage only the paths those
    tools reported (see :class:`Runtime`). Raises ValidationError for a malformed URL and
    DriverUnavailableError when the store's
    driver is not installed or its server does not answer."""
    root = keepup_home(home)
    if store is None or isinstance(store, str):
        url = resolved_store_url(store, root)
        if url == default_store_url(root):
            root.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)  # other users read nothing
        driver = open_store(url, durability=durability)
        owns = True
    else:
        driver, owns = store, False
    return Runtime(
        driver,
        home=root,
        telemetry=telemetry,
        clock=clock,
        owns_driver=owns,
        share_snapshots=share_snapshots,
        trust_tool_changes=trust_tool_changes,
    )
