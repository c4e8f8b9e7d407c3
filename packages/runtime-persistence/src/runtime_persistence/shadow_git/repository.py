"""Shadow-git snapshots of a workspace, kept outside it (DESIGN §5).

Each workspace gets one git directory under Keepup's state directory
(``<state>/shadow/<hash of the resolved path>/git``), shared by every thread, session and process
that snapshots it. The user's own ``.git`` (its objects, index, hooks, config) is never read for
writing or touched: every git command runs with ``--git-dir`` pointing at the shadow directory,
``--work-tree`` at the workspace, and an environment rebuilt from scratch (no ``GIT_*`` variable of
the caller survives, no system or global config, hooks off, no automatic gc, a fixed identity).

What a snapshot leaves out: the workspace's ``.gitignore`` rules (git reads them from the work
tree), built-in patterns (virtualenvs, ``node_modules``, build output, caches), secret files
(``SECRET_EXCLUDES``: no rule of the workspace can bring them back; ``allow_secrets`` opts named
paths in), Git LFS patterns (``filter=lfs`` in ``.gitattributes``), files over a size cap, and
nested repositories (a directory holding a ``.git`` directory or file), which are reported and
never renamed or entered. Symlinks are stored as links and never followed.

Every snapshot is a parentless commit of the workspace tree, kept alive by its own ref
``refs/keepup/snapshots/<time>-<commit>`` (so retention can drop any one of them) and, while a
checkpoint names it, by ``refs/keepup/keep/<checkpoint id>``. ``refs/heads/main`` points at the
newest snapshot.

The class is assembled from one part per idea: :mod:`._git` (the scrubbed git runner, locks, time
budget, set-up), :mod:`.excludes` (what snapshots leave out, staging), :mod:`.snapshot`,
:mod:`.diff`, :mod:`.restore` and :mod:`.refs` (keep, release, prune, gc); :mod:`.workspace` holds
the path rules. This module stays the import path of :class:`ShadowGit` and of the public names.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

from runtime_core import (
    DriverUnavailableError,
    NotFoundError,
    NullTelemetry,
    RestoreReport,
    Telemetry,
    UnsafeWorkspaceError,
    ValidationError,
)

from runtime_persistence.shadow_git._git import DEFAULT_TIME_BUDGET
from runtime_persistence.shadow_git.diff import _Diff
from runtime_persistence.shadow_git.excludes import (
    _FOLDER_MARGIN_NS,
    DEFAULT_EXCLUDES,
    DEFAULT_MAX_FILE_SIZE,
    SECRET_EXCLUDES,
    WorkspaceScan,
)
from runtime_persistence.shadow_git.refs import _Refs
from runtime_persistence.shadow_git.restore import _Restore
from runtime_persistence.shadow_git.sharing import SharedSnapshots, _Sharing
from runtime_persistence.shadow_git.snapshot import MAX_MESSAGE_CHARS  # noqa: F401 (still importable from here)
from runtime_persistence.shadow_git.workspace import (
    STATE_ENV,  # noqa: F401 (still importable from here)
    check_workspace,
    keepup_state_dir,
    shadow_git_dir,
)

__all__ = [
    "DEFAULT_EXCLUDES",
    "DEFAULT_MAX_FILE_SIZE",
    "DEFAULT_TIME_BUDGET",
    "SECRET_EXCLUDES",
    "ShadowGit",
    "WorkspaceScan",
    "check_workspace",
    "keepup_state_dir",
    "shadow_git_dir",
]


class ShadowGit(_Restore, _Refs, _Diff, _Sharing):
    """Snapshots of one workspace in a shadow git directory (implements
    :class:`runtime_core.WorkspaceSnapshots`).

    Safe to share between threads; several instances (in several processes) on the same workspace
    serialize their writes through a file lock in the shadow directory. Needs the ``git`` command
    line (2.28 or newer)."""

    def __init__(
        self,
        workspace: str | os.PathLike[str],
        *,
        state_dir: str | os.PathLike[str] | None = None,
        telemetry: Telemetry | None = None,
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
        time_budget: float | None = DEFAULT_TIME_BUDGET,
        extra_excludes: Sequence[str] = (),
        allow_secrets: Sequence[str] = (),
        git: str | None = None,
        shared: SharedSnapshots | None = None,
        trust_changed_paths: bool = False,
    ) -> None:
        """``allow_secrets`` lists paths (files or folders, relative to the workspace) that
        snapshots may hold although they match :data:`SECRET_EXCLUDES`; every other secret file
        stays out whatever the workspace's ignore rules say.

        ``shared`` (a :class:`runtime_persistence.SnapshotPacks` over a shared store) publishes
        every snapshot's new objects to the store and fetches from it any snapshot this repository
        lacks before a diff, restore or keep, so every host sharing the store can use it."""
        if isinstance(max_file_size, bool) or not isinstance(max_file_size, int) or max_file_size < 0:
            raise ValidationError(f"max_file_size must be a non-negative integer, got {max_file_size!r}")
        if time_budget is not None and (
            isinstance(time_budget, bool) or not isinstance(time_budget, (int, float)) or time_budget <= 0
        ):
            raise ValidationError(f"time_budget must be a positive number of seconds, got {time_budget!r}")
        for pattern in extra_excludes:
            if not isinstance(pattern, str) or "\n" in pattern or "\x00" in pattern or not pattern.strip():
                raise ValidationError(f"an exclude pattern is one non-empty line, got {pattern!r:.80}")
        root = check_workspace(workspace)
        state = keepup_state_dir(state_dir)
        if state.is_relative_to(root):
            raise UnsafeWorkspaceError(
                f"Keepup's state directory {str(state)!r} is inside the workspace {str(root)!r}; "
                "set KEEPUP_HOME (or state_dir) to a folder outside it"
            )
        exe = git or shutil.which("git")
        if exe is None:
            raise DriverUnavailableError("shadow-git snapshots need the `git` command line; install git")
        budget = float(time_budget) if time_budget is not None else None
        super().__init__(
            root,
            shadow_git_dir(root, state),
            exe,
            budget,
            telemetry if telemetry is not None else NullTelemetry(),
        )
        self._max_file_size = max_file_size
        self._extra_excludes = tuple(extra_excludes)
        allowed = self._check_paths(allow_secrets)
        if allowed is None:
            raise ValidationError("allow_secrets names secret paths, not the whole workspace")
        self._allow_secrets = tuple(sorted(set(allowed)))
        self._reinclude = []
        self._last_scan = WorkspaceScan()
        self._scanned = False
        self._folders = {}
        self._folder_margin_ns = _FOLDER_MARGIN_NS
        self._shared = shared
        self._init_touched(bool(trust_changed_paths))
        self._ensure_repository()

    # ---------------------------------------------------------------------------- shared store
    @property
    def shared(self) -> SharedSnapshots | None:
        """Where snapshots are published and fetched (None: this repository only)."""
        return self._shared

    def snapshot(self, message: str = "") -> str | None:
        """Record the workspace and return the new commit, or None when nothing changed since the
        newest snapshot. Durable once it returns (git writes the objects before the ref moves);
        with a shared store, also published there before it returns (the newest snapshot too
        when nothing changed, if an earlier publication failed).

        Raises BudgetExceededError (the git process is killed, nothing is half-recorded) when it
        takes longer than the time budget, and what the store raises when publishing fails (the
        snapshot then stays here, and the next snapshot publishes it)."""
        commit = super().snapshot(message)
        if self._shared is not None and self._shared.publishing:
            newest = commit if commit is not None else self.head()
            if newest is not None and not self._is_shared(newest):
                self._shared.publish(self, newest)
        return commit

    def restore(
        self, commit: str, paths: Sequence[str] | None = None, *, dry_run: bool = False
    ) -> RestoreReport:
        """Bring the workspace (or only ``paths``, files or folders relative to it) back to
        ``commit``, after a rescue snapshot of the whole workspace; see :meth:`_Restore.restore`.
        The next snapshot scans the whole workspace (the restore wrote files no tool reported)."""
        try:
            return super().restore(commit, paths, dry_run=dry_run)
        finally:
            if not dry_run:
                self.tree_changed()

    @property
    def trust_changed_paths(self) -> bool:
        """Whether snapshots may stage only the paths the tools reported (see ``__init__``)."""
        return self._trust_changes

    def resolve(self, commit: str) -> str:
        """The full id of snapshot ``commit`` (a full id or a prefix of 4+ hex digits), fetched
        from the shared store first when this repository lacks it. NotFoundError when neither
        has it; CorruptionError when the store's copy fails verification."""
        return self._resolve(commit)

    def _resolve(self, commit: str) -> str:
        try:
            return super()._resolve(commit)
        except NotFoundError:
            if self._shared is None:
                raise
        return super()._resolve(self._shared.fetch(self, commit))

    # ------------------------------------------------------------------------------------ props
    @property
    def workspace(self) -> str:
        """The resolved absolute path of the workspace."""
        return str(self._root)

    @property
    def git_dir(self) -> str:
        """The shadow git directory (for people and tools that want to look inside)."""
        return str(self._git_dir)

    @property
    def last_scan(self) -> WorkspaceScan:
        """What the most recent snapshot, diff or restore left out (nested repositories, files over
        the size cap, LFS patterns, unreadable folders), as its scan of the workspace found it (a
        snapshot that staged only reported paths does not scan: the scan before it stands)."""
        return self._last_scan
