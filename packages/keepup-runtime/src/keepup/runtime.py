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
from typing import TYPE_CHECKING, Any, Generic, Self, TypeAlias, TypeVar, overload

from runtime_core import (
    ConflictError,
    Durability,
    KeepupError,
    NullTelemetry,
    SystemClock,
    ValidationError,
)

if TYPE_CHECKING:
    # Imported where used: a command that lists threads loads neither the runner, the tools, the
    # session repositories nor asyncio (tests/test_cli_startup.py keeps it so).
    from runtime_core import (
        ArtifactRef,
        Checkpoint,
        Clock,
        Driver,
        GcReport,
        PruneReport,
        RestoreReport,
        Run,
        RunStatus,
        Serializer,
        Telemetry,
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
        Keyring,
        Leases,
        RunRecords,
        Sessions,
        SessionSweeper,
        ShadowGit,
        SweeperThread,
        Tasks,
    )
    from runtime_persistence.storage.threaded import AsyncThreadDriver
    from runtime_tools import ToolRegistry, ToolSpec

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
    "keyring_path",
    "open_runtime",
    "resolved_keyring",
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
    import platformdirs

    return Path(platformdirs.user_state_dir("keepup")).resolve()


def default_store_url(home: str | os.PathLike[str] | None = None) -> str:
    """The URL of the embedded SQLite store in the Keepup home (``sqlite:////abs/keepup.db``)."""
    from runtime_persistence.storage.drivers.sqlite import sqlite_url

    return sqlite_url(keepup_home(home) / STORE_FILE)


def keyring_path(
    keyring: str | os.PathLike[str] | None = None, home: str | os.PathLike[str] | None = None
) -> Path:
    """Where the keyring is looked for: ``keyring``, else ``$KEEPUP_KEYRING``, else
    ``keyring.toml`` in the Keepup home."""
    from runtime_persistence.storage.private import KEYRING_ENV, KEYRING_FILE

    named = keyring if keyring is not None else os.environ.get(KEYRING_ENV) or None
    return Path(named).expanduser() if named is not None else keepup_home(home) / KEYRING_FILE


def resolved_keyring(
    keyring: str | os.PathLike[str] | None = None, home: str | os.PathLike[str] | None = None
) -> Keyring | None:
    """The keyring :func:`open_runtime` uses: the file ``keyring``, else the file named by
    ``$KEEPUP_KEYRING`` (both must exist), else ``keyring.toml`` in the Keepup home if it
    exists, else None (no encryption). The file format is in docs/security.md."""
    from runtime_persistence.storage.private import KEYRING_ENV

    path = keyring_path(keyring, home)
    if keyring is None and not os.environ.get(KEYRING_ENV) and not (path.exists() or path.is_symlink()):
        return None
    from runtime_persistence.storage.encryption import read_keyring_file

    return read_keyring_file(path)


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


ToolSource: TypeAlias = "ToolRegistry | Iterable[ToolSpec | Callable[..., Any]]"
"""Tools for :meth:`Runtime.runner`: a registry to use as is, or tool specs and plain functions to
register (their JSON Schema is derived from the type hints)."""


T = TypeVar("T")


class _Part(Generic[T]):
    """A part of the :class:`Runtime`, built on first use (once, under the runtime's lock) and
    then kept in the instance's ``__dict__``, so later reads cost a plain attribute lookup. A
    command opens only the repositories it uses, and imports only their modules."""

    def __init__(self, build: Callable[[Any], T]) -> None:
        self._build = build
        self._name = build.__name__
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, runtime: None, owner: type | None = None) -> Self: ...

    @overload
    def __get__(self, runtime: Runtime, owner: type | None = None) -> T: ...

    def __get__(self, runtime: Runtime | None, owner: type | None = None) -> T | Self:
        if runtime is None:
            return self
        with runtime._parts_lock:
            built: T
            if self._name in runtime.__dict__:  # another thread built it while this one waited
                built = runtime.__dict__[self._name]
            else:
                built = self._build(runtime)
                runtime.__dict__[self._name] = built
            return built


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

    Each repository is built on first use, so a command that lists threads opens only the
    checkpoint repository and imports only its modules.

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
        serializer: Serializer | None = None,
        trust_tool_changes: bool = False,
    ) -> None:
        self.driver = driver
        self.trust_tool_changes = bool(trust_tool_changes)
        if serializer is not None:  # else the plain envelope serializer, built on first use
            self.__dict__["serializer"] = serializer
        self.share_snapshots = (
            shares_snapshots_by_default(driver) if share_snapshots is None else bool(share_snapshots)
        )
        self.home = home
        self.telemetry: Telemetry = telemetry if telemetry is not None else NullTelemetry()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._owns_driver = owns_driver
        self._closed = False
        self._lock = threading.Lock()
        self._parts_lock = threading.RLock()  # a part may use another part while it is built
        self._snapshots: dict[str, ShadowGit] = {}
        self._sweepers: list[SweeperThread] = []

    # The repositories, each built on first use (see _Part).

    @_Part
    def serializer(self) -> Serializer:
        """What every repository reads and writes with: with a keyring, the store is encrypted."""
        from runtime_persistence import EnvelopeSerializer

        return EnvelopeSerializer()

    @_Part
    def leases(self) -> Leases:
        """Who runs which thread (:class:`runtime_persistence.Leases`)."""
        from runtime_persistence import Leases

        return Leases(self.driver, clock=self.clock, serializer=self.serializer)

    @_Part
    def checkpoints(self) -> Checkpoints:
        """Threads and checkpoints (:class:`runtime_persistence.Checkpoints`)."""
        from runtime_persistence import Checkpoints

        return Checkpoints(
            self.driver,
            leases=self.leases,
            clock=self.clock,
            telemetry=self.telemetry,
            serializer=self.serializer,
        )

    @_Part
    def runs(self) -> RunRecords:
        """The run records (:class:`runtime_persistence.RunRecords`)."""
        from runtime_persistence import RunRecords

        return RunRecords(self.driver, serializer=self.serializer)

    @_Part
    def artifacts(self) -> Artifacts:
        """Versioned, content-addressed artifacts (:class:`runtime_persistence.Artifacts`)."""
        from runtime_persistence import Artifacts

        return Artifacts(self.driver, clock=self.clock, telemetry=self.telemetry, serializer=self.serializer)

    @_Part
    def sessions(self) -> Sessions:
        """The session DB (:class:`runtime_persistence.Sessions`)."""
        from runtime_persistence import Sessions

        return Sessions(self.driver, clock=self.clock, serializer=self.serializer)

    @_Part
    def tasks(self) -> Tasks:
        """The task board (:class:`runtime_persistence.Tasks`)."""
        from runtime_persistence import Tasks

        return Tasks(self.driver, clock=self.clock, serializer=self.serializer)

    @_Part
    def events(self) -> Events:
        """The event log (:class:`runtime_persistence.Events`)."""
        from runtime_persistence import Events

        return Events(self.driver, clock=self.clock, serializer=self.serializer)

    @_Part
    def async_driver(self) -> AsyncThreadDriver:
        """The store's driver as an async driver, its calls on worker threads."""
        from runtime_persistence.storage.threaded import AsyncThreadDriver

        return AsyncThreadDriver(self.driver)

    @_Part
    def async_leases(self) -> AsyncLeases:
        """The async twin of :attr:`leases`."""
        from runtime_persistence import AsyncLeases

        return AsyncLeases(self.async_driver, clock=self.clock, serializer=self.serializer)

    @_Part
    def async_checkpoints(self) -> AsyncCheckpoints:
        """The async twin of :attr:`checkpoints`."""
        from runtime_persistence import AsyncCheckpoints

        return AsyncCheckpoints(
            self.async_driver,
            leases=self.async_leases,
            clock=self.clock,
            telemetry=self.telemetry,
            serializer=self.serializer,
        )

    @_Part
    def async_runs(self) -> AsyncRunRecords:
        """The async twin of :attr:`runs`."""
        from runtime_persistence import AsyncRunRecords

        return AsyncRunRecords(self.async_driver, serializer=self.serializer)

    @_Part
    def async_sessions(self) -> AsyncSessions:
        """The async twin of :attr:`sessions`."""
        from runtime_persistence import AsyncSessions

        return AsyncSessions(self.async_driver, clock=self.clock, serializer=self.serializer)

    @_Part
    def async_tasks(self) -> AsyncTasks:
        """The async twin of :attr:`tasks`."""
        from runtime_persistence import AsyncTasks

        return AsyncTasks(self.async_driver, clock=self.clock, serializer=self.serializer)

    @_Part
    def async_events(self) -> AsyncEvents:
        """The async twin of :attr:`events`."""
        from runtime_persistence import AsyncEvents

        return AsyncEvents(self.async_driver, clock=self.clock, serializer=self.serializer)

    @property
    def shadow_dir(self) -> Path:
        """Where the shadow-git directories of every workspace live."""
        return self.home / "shadow"

    def snapshots(self, workspace: str | os.PathLike[str]) -> ShadowGit:
        """The shadow-git snapshots of ``workspace`` (one shared object per resolved path).

        Raises ValidationError when the path is not a directory, UnsafeWorkspaceError for a home
        or system folder, DriverUnavailableError when git is not installed."""
        from runtime_persistence import ShadowGit, SnapshotPacks

        key = str(Path(workspace).expanduser().resolve())
        with self._lock:
            found = self._snapshots.get(key)
            if found is None:
                found = ShadowGit(
                    key,
                    state_dir=self.home,
                    telemetry=self.telemetry,
                    shared=SnapshotPacks(
                        self.driver,
                        publishing=self.share_snapshots,
                        clock=self.clock,
                        serializer=self.serializer,
                    ),
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
        from runtime_persistence import SnapshotBeforeChange
        from runtime_tools import ToolRegistry, ToolSpec, WorkspaceTools

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
        from runtime_core import SessionStatus
        from runtime_execution import Runner

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
        from runtime_persistence import WorkspaceCheckpoints

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
        from runtime_persistence import SessionSweeper

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
        from runtime_persistence import AsyncSessionSweeper

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
        from runtime_persistence import SweeperThread

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
        from runtime_persistence import collect_snapshot_packs

        window = timedelta(hours=1) if grace is None else grace
        packs = collect_snapshot_packs(
            self.driver, grace=window, dry_run=dry_run, clock=self.clock, serializer=self.serializer
        )
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
    keyring: Keyring | str | os.PathLike[str] | None = None,
    trust_tool_changes: bool = False,
) -> Runtime:
    """Open Keepup over ``store``: a URL, an open driver (which stays the caller's to close), or
    None for ``$KEEPUP_STORE_URL`` or else the embedded SQLite store in the Keepup home.

    ``keyring`` encrypts the store (every record is then refused without it): a
    :class:`Keyring`, or the path of a keyring file; None means the file named by
    ``$KEEPUP_KEYRING``, else ``keyring.toml`` in the Keepup home when it exists, else no
    encryption (:func:`resolved_keyring`).

    ``share_snapshots`` publishes workspace snapshots to the store (default: see
    :func:`shares_snapshots_by_default`). ``trust_tool_changes`` declares that nothing but the
    runtime's workspace tools changes its workspaces, so snapshots may stage only the paths those
    tools reported (see :class:`Runtime`). Raises ValidationError for a malformed URL and
    DriverUnavailableError when the store's
    driver is not installed or its server does not answer."""
    from runtime_persistence.storage.private import PRIVATE_DIR
    from runtime_persistence.storage.stores import open_store

    root = keepup_home(home)
    if store is None or isinstance(store, str):
        url = resolved_store_url(store, root)
        if url == default_store_url(root):
            root.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)  # other users read nothing
        driver = open_store(url, durability=durability)
        owns = True
    else:
        driver, owns = store, False
    try:
        ring = (
            resolved_keyring(keyring, root)
            if keyring is None or isinstance(keyring, (str, os.PathLike))
            else keyring
        )
    except BaseException:
        if owns:
            driver.close()
        raise
    serializer = None
    if ring is not None:
        from runtime_persistence import EnvelopeSerializer

        serializer = EnvelopeSerializer(keyring=ring)
    return Runtime(
        driver,
        home=root,
        telemetry=telemetry,
        clock=clock,
        owns_driver=owns,
        share_snapshots=share_snapshots,
        serializer=serializer,
        trust_tool_changes=trust_tool_changes,
    )
