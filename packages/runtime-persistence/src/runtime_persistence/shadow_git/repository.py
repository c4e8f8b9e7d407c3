"""Shadow-git snapshots of a workspace, kept outside it (DESIGN §5).

Each workspace gets one git directory under Keepup's state directory
(``<state>/shadow/<hash of the resolved path>/git``), shared by every thread, session and process
that snapshots it. The user's own ``.git`` (its objects, index, hooks, config) is never read for
writing or touched: every git command runs with ``--git-dir`` pointing at the shadow directory,
``--work-tree`` at the workspace, and an environment rebuilt from scratch (no ``GIT_*`` variable of
the caller survives, no system or global config, hooks off, no automatic gc, a fixed identity).

What a snapshot leaves out: the workspace's ``.gitignore`` rules (git reads them from the work
tree), built-in patterns (virtualenvs, ``node_modules``, build output, caches, secrets such as
``.env``), Git LFS patterns (``filter=lfs`` in ``.gitattributes``), files over a size cap, and
nested repositories (a directory holding a ``.git`` directory or file), which are reported and
never renamed or entered. Symlinks are stored as links and never followed.

Every snapshot is a parentless commit of the workspace tree, kept alive by its own ref
``refs/keepup/snapshots/<time>-<commit>`` (so retention can drop any one of them) and, while a
checkpoint names it, by ``refs/keepup/keep/<checkpoint id>``. ``refs/heads/main`` points at the
newest snapshot.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

import platformdirs
from runtime_core import (
    BudgetExceededError,
    DriverUnavailableError,
    FileChange,
    FileStatus,
    NotFoundError,
    NullTelemetry,
    RestoreReport,
    SnapshotInfo,
    StorageError,
    Telemetry,
    UnsafeWorkspaceError,
    ValidationError,
)

__all__ = [
    "DEFAULT_EXCLUDES",
    "DEFAULT_MAX_FILE_SIZE",
    "DEFAULT_TIME_BUDGET",
    "ShadowGit",
    "WorkspaceScan",
    "check_workspace",
    "keepup_state_dir",
    "shadow_git_dir",
]

DEFAULT_MAX_FILE_SIZE = 25 * 1024 * 1024
"""Files larger than this (bytes) are left out of snapshots unless the cap is changed."""

DEFAULT_TIME_BUDGET = 60.0
"""Seconds one snapshot, diff or restore may take before it is stopped with BudgetExceededError."""

STATE_ENV = "KEEPUP_HOME"
MAX_MESSAGE_CHARS = 10_000
_TRAILER_FILES = "Keepup-Files:"
_SNAPSHOT_REFS = "refs/keepup/snapshots/"
_KEEP_REFS = "refs/keepup/keep/"
_BRANCH = "refs/heads/main"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_HEX_RE = re.compile(r"^[0-9a-f]{4,64}$")
_IDENTITY = ("Keepup", "keepup@localhost")

# Directory names the scan does not enter: each is also excluded by a ``name/`` pattern below.
_PRUNED_DIRS = frozenset(
    {
        ".venv",
        "venv",
        ".virtualenv",
        ".tox",
        ".nox",
        "__pypackages__",
        "node_modules",
        "bower_components",
        ".pnpm-store",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".hypothesis",
        ".cache",
        ".gradle",
        ".next",
        ".nuxt",
        ".parcel-cache",
        ".turbo",
        ".terraform",
        "htmlcov",
        ".eggs",
        "dist",
        "build",
        "target",
    }
)

DEFAULT_EXCLUDES: tuple[str, ...] = (
    # virtualenvs, package managers, caches, build output
    *sorted(f"{name}/" for name in _PRUNED_DIRS),
    "*.egg-info/",
    "*.py[cod]",
    ".coverage",
    ".coverage.*",
    ".DS_Store",
    "Thumbs.db",
    # secrets
    ".env",
    ".env.*",
    "!.env.example",
    "!.env.sample",
    "!.env.template",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    ".pypirc",
    ".aws/",
    ".ssh/",
    ".gnupg/",
)
"""Patterns every snapshot leaves out (gitignore syntax), before the workspace's own rules."""

# Folders refused as a workspace, with everything under them.
_SYSTEM_TREES = tuple(
    Path(p)
    for p in (
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/proc",
        "/run",
        "/sbin",
        "/sys",
        "/usr",
        "/var/lib",
        "/var/log",
        "/var/cache",
        "/var/run",
        "/System",
        "/Library",
        "/private/etc",
        "/private/var/db",
        "/nix/store",
    )
)
# Folders refused as a workspace themselves (their subfolders are fine).
_PROTECTED_DIRS = tuple(
    Path(p)
    for p in (
        "/",
        "/home",
        "/Users",
        "/root",
        "/tmp",  # noqa: S108
        "/var",
        "/var/tmp",  # noqa: S108
        "/opt",
        "/srv",
        "/mnt",
        "/media",
        "/Volumes",
        "/private",
        "/private/tmp",
        "/private/var",
        "/snap",
        "/nix",
        "/Applications",
    )
)

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


# One in-process lock per shadow directory, so threads queue instead of polling the file lock.
_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def keepup_state_dir(state_dir: str | os.PathLike[str] | None = None) -> Path:
    """Keepup's state directory: ``state_dir`` if given, else ``$KEEPUP_HOME``, else the user's
    state directory (``platformdirs.user_state_dir("keepup")``). Not created here."""
    if state_dir is not None:
        return Path(state_dir).expanduser().resolve()
    env = os.environ.get(STATE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return Path(platformdirs.user_state_dir("keepup")).resolve()


def _home_dirs() -> set[Path]:
    homes: set[Path] = set()
    with contextlib.suppress(RuntimeError, KeyError, OSError):
        homes.add(Path.home().resolve())
    if sys.platform != "win32":  # the account's home, even when $HOME points elsewhere
        import pwd

        with contextlib.suppress(KeyError, OSError):
            homes.add(Path(pwd.getpwuid(os.getuid()).pw_dir).resolve())
    return homes


def check_workspace(workspace: str | os.PathLike[str]) -> Path:
    """Resolve ``workspace`` (symlinks included) and return it if it may be snapshotted.

    Raises ValidationError when it is not an existing directory, and UnsafeWorkspaceError when it is
    the filesystem root, a home directory or one of its ancestors, or a system folder."""
    try:
        resolved = Path(workspace).expanduser().resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise ValidationError(f"workspace {os.fspath(workspace)!r} does not exist: {exc}") from None
    if not resolved.is_dir():
        raise ValidationError(f"workspace {str(resolved)!r} is not a directory")
    homes = _home_dirs()
    if resolved in homes:
        raise UnsafeWorkspaceError(
            f"refusing to snapshot the home directory {str(resolved)!r}: choose a project folder inside it"
        )
    if any(home.is_relative_to(resolved) for home in homes):
        raise UnsafeWorkspaceError(
            f"refusing to snapshot {str(resolved)!r}: it contains a home directory; choose a project folder"
        )
    if resolved in _PROTECTED_DIRS or resolved == Path(resolved.anchor):
        raise UnsafeWorkspaceError(
            f"refusing to snapshot the protected folder {str(resolved)!r}: choose a project folder"
        )
    for tree in _SYSTEM_TREES:
        if resolved.is_relative_to(tree):
            raise UnsafeWorkspaceError(
                f"refusing to snapshot {str(resolved)!r}: it is inside the system folder {str(tree)!r}"
            )
    return resolved


def shadow_git_dir(
    workspace: str | os.PathLike[str], state_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Where the shadow repository of ``workspace`` lives (one per resolved workspace path)."""
    resolved = Path(workspace).expanduser().resolve()
    key = hashlib.sha256(os.fsencode(resolved)).hexdigest()[:32]
    return keepup_state_dir(state_dir) / "shadow" / key


@dataclass(frozen=True, slots=True)
class WorkspaceScan:
    """What the last scan of the workspace left out of snapshots, besides ignore rules.

    Paths are relative to the workspace, with ``/`` separators."""

    nested_repositories: tuple[str, ...] = ()
    oversized: tuple[str, ...] = ()
    lfs_patterns: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()
    files: int = 0


@dataclass(slots=True)
class _Plan:
    changed: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _escape_pattern(path: str) -> str:
    """``path`` as a gitignore pattern that matches exactly that path from the workspace root."""
    out = re.sub(r"([\\*?\[\]])", r"\\\1", path)
    if out.endswith(" "):
        out = out[:-1] + "\\ "
    return "/" + out


def _now() -> float:
    return time.monotonic()


class ShadowGit:
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
        git: str | None = None,
    ) -> None:
        if isinstance(max_file_size, bool) or not isinstance(max_file_size, int) or max_file_size < 0:
            raise ValidationError(f"max_file_size must be a non-negative integer, got {max_file_size!r}")
        if time_budget is not None and (
            isinstance(time_budget, bool) or not isinstance(time_budget, (int, float)) or time_budget <= 0
        ):
            raise ValidationError(f"time_budget must be a positive number of seconds, got {time_budget!r}")
        for pattern in extra_excludes:
            if not isinstance(pattern, str) or "\n" in pattern or "\x00" in pattern or not pattern.strip():
                raise ValidationError(f"an exclude pattern is one non-empty line, got {pattern!r:.80}")
        self._root = check_workspace(workspace)
        state = keepup_state_dir(state_dir)
        if state.is_relative_to(self._root):
            raise UnsafeWorkspaceError(
                f"Keepup's state directory {str(state)!r} is inside the workspace {str(self._root)!r}; "
                "set KEEPUP_HOME (or state_dir) to a folder outside it"
            )
        exe = git or shutil.which("git")
        if exe is None:
            raise DriverUnavailableError("shadow-git snapshots need the `git` command line; install git")
        self._exe = exe
        self._dir = shadow_git_dir(self._root, state)
        self._git_dir = self._dir / "git"
        self._home = self._dir / "home"
        self._telemetry: Telemetry = telemetry if telemetry is not None else NullTelemetry()
        self._max_file_size = max_file_size
        self._budget = float(time_budget) if time_budget is not None else None
        self._extra_excludes = tuple(extra_excludes)
        self._last_scan = WorkspaceScan()
        self._scanned = False
        self._env = self._scrubbed_env()
        with _PROCESS_LOCKS_GUARD:
            self._thread_lock = _PROCESS_LOCKS.setdefault(str(self._dir), threading.Lock())
        self._holder = threading.local()  # ``held`` is True in the thread inside _locked
        self._ensure_repository()

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
        the size cap, LFS patterns, unreadable folders)."""
        return self._last_scan

    # --------------------------------------------------------------------------------- snapshots
    def snapshot(self, message: str = "") -> str | None:
        """Record the workspace and return the new commit, or None when nothing changed since the
        newest snapshot. Durable once it returns (git writes the objects before the ref moves).

        Raises BudgetExceededError (the git process is killed, nothing is half-recorded) when it
        takes longer than the time budget."""
        message = self._check_message(message)
        with self._telemetry.span("shadow_git.snapshot", workspace=str(self._root)) as fields:
            deadline = self._deadline()
            with self._locked(deadline):
                commit = self._snapshot_locked(message, deadline)
            fields["commit"] = commit
            fields["changed"] = commit is not None
            fields["nested_repositories"] = len(self._last_scan.nested_repositories)
            fields["oversized"] = len(self._last_scan.oversized)
            return commit

    def head(self) -> str | None:
        """The newest snapshot's commit, or None before the first snapshot."""
        out = self._git(["rev-parse", "-q", "--verify", f"{_BRANCH}^{{commit}}"], ok=(0, 1))
        text = out.stdout.decode().strip()
        return text or None

    def list(self, limit: int | None = None) -> builtins.list[SnapshotInfo]:
        """Snapshots newest first (at most ``limit``)."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValidationError(f"limit must be a non-negative integer, got {limit!r}")
        if limit == 0:
            return []
        args = [
            "for-each-ref",
            "--sort=-refname",
            "--format=%(objectname) %(committerdate:unix)%00%(contents)%00",
        ]
        if limit is not None:
            args.append(f"--count={limit}")
        args.append(_SNAPSHOT_REFS)
        out = self._git(args).stdout.decode("utf-8", "replace")
        parts = out.split("\x00")
        infos: builtins.list[SnapshotInfo] = []
        for raw_header, body in zip(parts[0::2], parts[1::2], strict=False):
            header = raw_header.strip()
            if not header:
                continue
            commit, _, stamp = header.partition(" ")
            text, files = _split_trailer(body)
            infos.append(SnapshotInfo(commit, text, datetime.fromtimestamp(int(stamp), UTC), files))
        return infos

    def info(self, commit: str) -> SnapshotInfo:
        """One snapshot by commit (a full id or a unique prefix of at least 4 hex digits)."""
        full = self._resolve(commit)
        out = self._git(["log", "-1", "--format=%H %ct%x00%B", full]).stdout.decode("utf-8", "replace")
        header, _, body = out.partition("\x00")
        sha, _, stamp = header.partition(" ")
        text, files = _split_trailer(body)
        return SnapshotInfo(sha, text, datetime.fromtimestamp(int(stamp), UTC), files)

    # -------------------------------------------------------------------------------------- diff
    def diff(self, a: str, b: str | None = None, *, content: bool = False) -> builtins.list[FileChange]:
        """Files that differ from snapshot ``a`` to snapshot ``b``, or to the working tree as a
        snapshot would see it now (same excludes) when ``b`` is None. With ``content``, each change
        carries its unified diff. Renames are detected. Reads only: nothing is committed."""
        with self._telemetry.span("shadow_git.diff", workspace=str(self._root)) as fields:
            deadline = self._deadline()
            left = self._resolve(a)
            if b is None:
                with self._locked(deadline):
                    right = self._index_tree(deadline)
            else:
                right = self._resolve(b)
            args = ["diff-tree", "-r", "-z", "--raw", "-M", "--no-ext-diff", "--no-textconv"]
            if content:
                args += ["-p", "--no-color", "--binary"]
            out = self._git([*args, left, right], deadline=deadline).stdout
            changes = _parse_diff(out, content)
            fields["files"] = len(changes)
            return changes

    # ----------------------------------------------------------------------------------- restore
    def restore(
        self, commit: str, paths: Sequence[str] | None = None, *, dry_run: bool = False
    ) -> RestoreReport:
        """Bring the workspace (or only ``paths``, files or folders relative to it) back to
        ``commit``.

        First takes a rescue snapshot of the current state, so anything the restore overwrites or
        removes can be brought back from ``rescue_commit``. It only removes or overwrites files that
        the rescue snapshot holds; a file it cannot bring back (ignored, excluded, over the size cap,
        inside a nested repository, or in the way of a restored path) is left alone and listed in
        ``skipped``. Never follows a symlink out of the workspace. ``dry_run`` changes nothing and
        lists every file that would be changed, created, removed or skipped."""
        target = self._resolve(commit)
        selected = self._check_paths(paths)
        with self._telemetry.span(
            "shadow_git.restore", workspace=str(self._root), commit=target, dry_run=dry_run
        ) as fields:
            deadline = self._deadline()
            with self._locked(deadline):
                report = self._restore_locked(target, selected, dry_run, deadline)
            fields.update(
                changed=len(report.changed),
                created=len(report.created),
                removed=len(report.removed),
                skipped=len(report.skipped),
                rescue_commit=report.rescue_commit,
            )
            return report

    # --------------------------------------------------------------------------------- retention
    def keep(self, commit: str, name: str) -> None:
        """Keep ``commit`` alive under ``refs/keepup/keep/<name>`` (a checkpoint id) until
        :meth:`release`. Raises NotFoundError when the commit is not a snapshot here."""
        name = _check_ref_name(name)
        full = self._resolve(commit)
        self._git(["update-ref", "--no-deref", f"{_KEEP_REFS}{name}", full])

    def release(self, name: str) -> None:
        """Drop the keep ref ``name``. When no other keep ref names the same snapshot and it is not
        the newest, its snapshot ref goes too, so the next :meth:`gc` may collect it (this is how
        pruning a checkpoint prunes its snapshot). Releasing an unknown name does nothing."""
        name = _check_ref_name(name)
        ref = f"{_KEEP_REFS}{name}"
        with self._locked(self._deadline()):
            found = self._git(["rev-parse", "-q", "--verify", ref], ok=(0, 1)).stdout.decode().strip()
            if not found:
                return
            self._git(["update-ref", "--no-deref", "-d", ref, found])
            self._drop_if_unkept(found)

    def kept(self) -> dict[str, str]:
        """Every keep ref: name → commit."""
        out = self._git(["for-each-ref", "--format=%(objectname) %(refname)", _KEEP_REFS]).stdout.decode()
        result: dict[str, str] = {}
        for line in out.splitlines():
            commit, _, ref = line.partition(" ")
            result[ref.removeprefix(_KEEP_REFS)] = commit
        return result

    def prune(
        self,
        *,
        keep_last: int | None = None,
        older_than: timedelta | None = None,
        dry_run: bool = False,
    ) -> builtins.list[str]:
        """Drop the refs of snapshots that no keep ref names, except the newest, the last
        ``keep_last`` and those younger than ``older_than`` (with neither, nothing is dropped).
        Return the commits dropped (or, with ``dry_run``, that would be). Run :meth:`gc` to free
        their space."""
        if keep_last is None and older_than is None:
            return []
        if keep_last is not None and (
            isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 0
        ):
            raise ValidationError(f"keep_last must be a non-negative integer, got {keep_last!r}")
        with self._locked(self._deadline()):
            kept = set(self.kept().values())
            head = self.head()
            out = self._git(
                [
                    "for-each-ref",
                    "--sort=-refname",
                    "--format=%(objectname) %(committerdate:unix) %(refname)",
                    _SNAPSHOT_REFS,
                ]
            ).stdout.decode()
            now = time.time()
            dropped: builtins.list[str] = []
            deletes: builtins.list[str] = []
            for index, line in enumerate(out.splitlines()):
                commit, stamp, ref = line.split(" ", 2)
                if commit in kept or commit == head:
                    continue
                if keep_last is not None and index < keep_last:
                    continue
                if older_than is not None and now - int(stamp) < older_than.total_seconds():
                    continue
                dropped.append(commit)
                deletes.append(f"delete {ref} {commit}\n")
            if deletes and not dry_run:
                self._git(["update-ref", "--stdin"], stdin="".join(deletes).encode())
            return dropped

    def gc(self) -> None:
        """Delete every object no ref reaches (released and pruned snapshots) and pack the rest.
        Holds the lock, so no snapshot is being written meanwhile."""
        with self._locked(self._deadline()):
            self._git(["gc", "--quiet", "--prune=now"], deadline=self._deadline())

    # ------------------------------------------------------------------------------- internals
    def _snapshot_locked(self, message: str, deadline: float | None) -> str | None:
        tree = self._index_tree(deadline)
        files = self._index_entries()
        previous = self._git(["for-each-ref", "--format=%(objectname) %(tree)", _BRANCH], deadline=deadline)
        old, _, old_tree = previous.stdout.decode().strip().partition(" ")
        if old and old_tree == tree:
            return None
        body = f"{message}\n\n{_TRAILER_FILES} {files}\n" if message else f"\n{_TRAILER_FILES} {files}\n"
        commit = (
            self._git(["commit-tree", tree, "-F", "-"], stdin=body.encode(), deadline=deadline)
            .stdout.decode()
            .strip()
        )
        stamp = f"{time.time_ns():020d}"
        zero = "0" * len(commit)
        transaction = (
            f"update {_BRANCH} {commit} {old or zero}\ncreate {_SNAPSHOT_REFS}{stamp}-{commit} {commit}\n"
        )
        self._git(["update-ref", "--stdin"], stdin=transaction.encode(), deadline=deadline)
        return commit

    def _index_tree(self, deadline: float | None) -> str:
        """Bring the shadow index up to the working tree (honouring every exclude) and return its
        tree id. Writes objects to the shadow store only; moves no ref.

        The scan of the workspace runs while ``git add`` does (both mostly wait on the file
        system). In the usual case the scan finds the same exclusions as last time and nothing more
        is done; when they changed, the excludes are rewritten, newly excluded files untracked and
        ``git add`` run again (stopped at once if it may be hashing a file that is now excluded)."""
        exclude = self._git_dir / "info" / "exclude"
        try:
            previous_text = exclude.read_text("utf-8", "surrogateescape")
        except OSError:
            previous_text = None
        previous_scan = self._last_scan if self._scanned else None
        add: subprocess.Popen[bytes] | None = None
        if previous_text is not None and previous_scan is not None:
            add = self._spawn(["add", "-A"], stdin=False, deadline=deadline)
        try:
            scan, fingerprint = self._scan(deadline)
        except BaseException:
            if add is not None:
                self._kill(add)
            raise
        self._last_scan = scan
        self._scanned = True
        text = self._exclude_text(scan)
        marker = self._git_dir / "keepup-excludes.fingerprint"
        digest = hashlib.sha256(text.encode("utf-8", "surrogateescape") + fingerprint).hexdigest()
        try:
            same_digest = marker.read_text() == digest
        except OSError:
            same_digest = False
        if text == previous_text:
            if add is None:
                self._git(["add", "-A"], deadline=deadline)
            else:
                self._wait(add, ["add", "-A"], deadline=deadline)
            if not same_digest:  # an ignore file changed: drop tracked files it now ignores
                self._untrack_excluded(deadline)
                marker.write_text(digest)
        else:
            if add is not None:
                grew = previous_scan is None or (
                    not set(scan.oversized) <= set(previous_scan.oversized)
                    or not set(scan.lfs_patterns) <= set(previous_scan.lfs_patterns)
                )
                if grew:
                    self._kill(add)
                else:
                    self._wait(add, ["add", "-A"], deadline=deadline)
            exclude.parent.mkdir(parents=True, exist_ok=True)
            exclude.write_text(text, "utf-8", "surrogateescape")
            self._untrack_excluded(deadline)
            self._git(["add", "-A"], deadline=deadline)
            marker.write_text(digest)
        return self._git(["write-tree"], deadline=deadline).stdout.decode().strip()

    def _index_entries(self) -> int:
        try:
            with open(self._git_dir / "index", "rb") as fh:
                header = fh.read(12)
        except OSError:
            return 0
        if len(header) < 12 or header[:4] != b"DIRC":
            return 0
        return int.from_bytes(header[8:12], "big")

    def _restore_locked(
        self, target: str, selected: builtins.list[str] | None, dry_run: bool, deadline: float | None
    ) -> RestoreReport:
        rescue: str | None = None
        created_rescue = False
        if dry_run:  # the working tree as a snapshot would see it (a tree; the rescue is a commit)
            current = self._index_tree(deadline)
        else:
            rescue = self._snapshot_locked(f"keepup: rescue before restoring {target[:12]}", deadline)
            created_rescue = rescue is not None
            if rescue is None:
                rescue = self.head()
            if rescue is None:  # pragma: no cover - a target exists, so a snapshot does
                raise StorageError("the shadow repository has no snapshot to rescue into")
            current = rescue
        plan = self._plan(current, target, selected, deadline)
        if dry_run:
            return RestoreReport(
                target,
                tuple(plan.changed),
                tuple(plan.removed),
                tuple(plan.created),
                None,
                True,
                tuple(plan.skipped),
            )
        try:
            self._apply(plan, target, deadline)
        except (BudgetExceededError, StorageError) as exc:
            raise type(exc)(
                f"{exc}; the workspace may be partly restored: snapshot {rescue} holds it as it was before"
            ) from exc
        touched = plan.changed or plan.created or plan.removed
        return RestoreReport(
            target,
            tuple(plan.changed),
            tuple(plan.removed),
            tuple(plan.created),
            rescue if (touched or created_rescue) else None,
            False,
            tuple(plan.skipped),
        )

    def _plan(
        self, current: str, target: str, selected: builtins.list[str] | None, deadline: float | None
    ) -> _Plan:
        """Sort what differs from ``current`` to ``target`` (trees or commits) into what the
        restore changes, creates, removes, and skips because it could not bring it back."""
        args = ["--literal-pathspecs", "diff-tree", "-r", "-z", "--raw", "--no-renames", current, target]
        if selected is not None:
            args += ["--", *selected]
        changes = _parse_diff(self._git(args, deadline=deadline).stdout, content=False)
        removed = {c.path for c in changes if c.status is FileStatus.DELETED}
        nested = self._last_scan.nested_repositories
        plan = _Plan()
        for change in changes:
            path = change.path
            if _under_any(path, nested) or not self._leading_dirs_ok(path, removed):
                plan.skipped.append(path)
                continue
            if change.status is FileStatus.DELETED:
                plan.removed.append(path)
                continue
            full = self._root / path
            try:
                st = full.lstat()
            except FileNotFoundError:
                plan.created.append(path)
                continue
            except OSError:
                plan.skipped.append(path)
                continue
            if change.status is FileStatus.ADDED:
                if stat.S_ISDIR(st.st_mode) and _only_removed_inside(full, path, removed):
                    plan.created.append(path)
                else:  # something the rescue snapshot does not hold is in the way
                    plan.skipped.append(path)
            # modified or type changed: the rescue snapshot holds the file, unless a folder is there
            elif stat.S_ISDIR(st.st_mode):
                plan.skipped.append(path)
            else:
                plan.changed.append(path)
        return plan

    def _leading_dirs_ok(self, path: str, removed: set[str]) -> bool:
        """Whether every folder above ``path`` is a real folder inside the workspace, missing (it
        will be created), or a tracked file or symlink that the restore removes first."""
        parts = PurePosixPath(path).parts
        for depth in range(1, len(parts)):
            prefix = "/".join(parts[:depth])
            try:
                st = (self._root / prefix).lstat()
            except FileNotFoundError:
                return True
            except OSError:
                return False
            if stat.S_ISDIR(st.st_mode):
                continue
            return prefix in removed
        return True

    def _apply(self, plan: _Plan, target: str, deadline: float | None) -> None:
        for path in plan.removed:
            full = self._root / path
            with contextlib.suppress(FileNotFoundError):
                if not stat.S_ISDIR(full.lstat().st_mode):
                    full.unlink()
            self._prune_empty_parents(full.parent)
        writes = plan.changed + plan.created
        if not writes:
            return
        for path in plan.created:
            full = self._root / path
            with contextlib.suppress(OSError):
                if stat.S_ISDIR(full.lstat().st_mode):
                    _remove_empty_tree(full)
        index = self._git_dir / f"keepup-restore-{secrets.token_hex(6)}.index"
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            self._git(["read-tree", target], env=env, deadline=deadline)
            stdin = b"".join(os.fsencode(p) + b"\x00" for p in writes)
            self._git(["checkout-index", "-f", "-z", "--stdin"], env=env, stdin=stdin, deadline=deadline)
        finally:
            with contextlib.suppress(FileNotFoundError):
                index.unlink()

    def _prune_empty_parents(self, folder: Path) -> None:
        while folder != self._root and folder.is_relative_to(self._root):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def _drop_if_unkept(self, commit: str) -> None:
        """Delete the snapshot refs of ``commit`` unless a keep ref names it or it is the newest."""
        out = self._git(
            [
                "for-each-ref",
                "--points-at",
                commit,
                "--format=%(refname)",
                _KEEP_REFS,
                _SNAPSHOT_REFS,
                _BRANCH,
            ]
        ).stdout.decode()
        refs = out.splitlines()
        if any(ref == _BRANCH or ref.startswith(_KEEP_REFS) for ref in refs):
            return
        deletes = "".join(f"delete {ref} {commit}\n" for ref in refs if ref.startswith(_SNAPSHOT_REFS))
        if deletes:
            self._git(["update-ref", "--stdin"], stdin=deletes.encode())

    # ------------------------------------------------------------------------------ excludes
    def _exclude_text(self, scan: WorkspaceScan) -> str:
        """The shadow repository's ``info/exclude`` for this scan."""
        lines = ["# Keepup shadow-git excludes: generated on every snapshot, do not edit", *DEFAULT_EXCLUDES]
        if self._extra_excludes:
            lines += ["# extra excludes", *self._extra_excludes]
        user_exclude = self._root / ".git" / "info" / "exclude"
        with contextlib.suppress(OSError):
            if user_exclude.is_file() and not user_exclude.is_symlink():
                lines += [
                    "# the workspace's .git/info/exclude",
                    *user_exclude.read_text("utf-8", "surrogateescape").splitlines(),
                ]
        if scan.lfs_patterns:
            lines += ["# Git LFS patterns", *scan.lfs_patterns]
        if scan.nested_repositories:
            lines += ["# nested repositories", *(_escape_pattern(p) + "/" for p in scan.nested_repositories)]
        if scan.oversized:
            lines += [
                f"# files over {self._max_file_size} bytes",
                *(_escape_pattern(p) for p in scan.oversized),
            ]
        if scan.unreadable:
            lines += ["# unreadable folders", *(_escape_pattern(p) + "/" for p in scan.unreadable)]
        return "\n".join(lines) + "\n"

    def _untrack_excluded(self, deadline: float | None) -> None:
        """Untrack (in the shadow index only) files tracked before they became excluded: a grown
        file, a new nested repository, a new ignore rule. Otherwise they would stay in every later
        snapshot."""
        out = self._git(
            ["ls-files", "-z", "--cached", "--ignored", "--exclude-standard"], deadline=deadline
        ).stdout
        if out.strip(b"\x00"):
            self._git(
                [
                    "--literal-pathspecs",
                    "rm",
                    "-r",
                    "-q",
                    "--cached",
                    "--ignore-unmatch",
                    "--pathspec-from-file=-",
                    "--pathspec-file-nul",
                ],
                stdin=out,
                deadline=deadline,
            )

    def _scan(self, deadline: float | None) -> tuple[WorkspaceScan, bytes]:
        """Walk the workspace without following symlinks or entering pruned folders and nested
        repositories; return what must be excluded and a fingerprint of the ignore files seen."""
        nested: builtins.list[str] = []
        oversized: builtins.list[str] = []
        unreadable: builtins.list[str] = []
        attributes: builtins.list[str] = []
        fingerprint = hashlib.sha256()
        cap = self._max_file_size
        files = 0
        stack: builtins.list[str] = [""]
        while stack:
            rel = stack.pop()
            folder = os.path.join(self._root, rel) if rel else str(self._root)
            try:
                with os.scandir(folder) as it:
                    entries = list(it)
            except OSError:
                if rel:
                    unreadable.append(rel)
                continue
            if rel and any(e.name == ".git" for e in entries):
                nested.append(rel)
                continue
            if deadline is not None and _now() > deadline:
                raise BudgetExceededError(
                    f"scanning the workspace {str(self._root)!r} took longer than the {self._budget}s budget"
                )
            for entry in entries:
                name = entry.name
                if name == ".git":
                    continue
                path = f"{rel}/{name}" if rel else name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if name not in _PRUNED_DIRS:
                            stack.append(path)
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    files += 1
                    if name in (".gitignore", ".gitattributes"):
                        st = entry.stat(follow_symlinks=False)
                        fingerprint.update(
                            f"{path}\x00{st.st_size}\x00{st.st_mtime_ns}\x00".encode(
                                "utf-8", "surrogateescape"
                            )
                        )
                        if name == ".gitattributes":
                            attributes.append(path)
                        continue
                    if cap and entry.stat(follow_symlinks=False).st_size > cap:
                        oversized.append(path)
                except OSError:
                    continue
        lfs = self._lfs_patterns(attributes)
        nested.sort()
        oversized.sort()
        unreadable.sort()
        return WorkspaceScan(
            tuple(nested), tuple(oversized), tuple(lfs), tuple(unreadable), files
        ), fingerprint.digest()

    def _lfs_patterns(self, attribute_files: builtins.list[str]) -> builtins.list[str]:
        patterns: builtins.list[str] = []
        for rel in sorted(attribute_files):
            try:
                text = (self._root / rel).read_text("utf-8", "surrogateescape")
            except OSError:
                continue
            base = str(PurePosixPath(rel).parent)
            base = "" if base == "." else base
            for line in text.splitlines():
                pattern = _lfs_pattern(line)
                if pattern is None:
                    continue
                if base:
                    inner = pattern.lstrip("/")
                    prefix = _escape_pattern(base)
                    pattern = f"{prefix}/{inner}" if "/" in pattern.rstrip("/") else f"{prefix}/**/{inner}"
                patterns.append(pattern)
        return patterns

    # --------------------------------------------------------------------------------- helpers
    def _check_message(self, message: str) -> str:
        if not isinstance(message, str):
            raise ValidationError(f"a snapshot message must be a str, got {type(message).__name__}")
        if "\x00" in message:
            raise ValidationError("a snapshot message must not contain NUL characters")
        if len(message) > MAX_MESSAGE_CHARS:
            raise ValidationError(f"a snapshot message is at most {MAX_MESSAGE_CHARS} characters")
        return message.strip()

    def _check_paths(self, paths: Sequence[str] | None) -> builtins.list[str] | None:
        if paths is None:
            return None
        if isinstance(paths, str):
            raise ValidationError("paths is a list of paths, not one string")
        result: builtins.list[str] = []
        for raw in paths:
            if not isinstance(raw, str) or not raw or "\x00" in raw:
                raise ValidationError(f"a restore path must be a non-empty str without NUL, got {raw!r:.80}")
            if os.path.isabs(raw):  # resolve the folders (not the file) so an alias of the root works
                head, tail = os.path.split(os.path.normpath(raw))
                candidate = os.path.join(os.path.realpath(head), tail)
            else:
                candidate = os.path.normpath(os.path.join(self._root, raw))
            rel = os.path.relpath(candidate, self._root)
            if rel == ".":
                return None
            if rel.startswith(".." + os.sep) or rel == ".." or os.path.isabs(rel):
                raise UnsafeWorkspaceError(f"path {raw!r:.200} is outside the workspace {str(self._root)!r}")
            parts = PurePosixPath(rel.replace(os.sep, "/")).parts
            if ".git" in parts:
                raise UnsafeWorkspaceError(
                    f"path {raw!r:.200} is inside a .git folder, which snapshots never hold"
                )
            result.append("/".join(parts))
        return result

    def _resolve(self, commit: str) -> str:
        if not isinstance(commit, str) or not _HEX_RE.match(commit):
            raise ValidationError(
                f"a snapshot is named by its commit id (4 to 64 hex digits), got {commit!r:.80}"
            )
        out = self._git(["rev-parse", "-q", "--verify", f"{commit}^{{commit}}"], ok=(0, 1, 128))
        full = out.stdout.decode().strip()
        if out.returncode != 0 or not full:
            raise NotFoundError(f"no snapshot {commit} in the shadow repository of {str(self._root)!r}")
        return full

    def _deadline(self) -> float | None:
        return None if self._budget is None else _now() + self._budget

    @contextlib.contextmanager
    def _locked(self, deadline: float | None) -> Iterator[None]:
        timeout = -1.0 if deadline is None else max(0.0, deadline - _now())
        if not self._thread_lock.acquire(timeout=timeout):
            raise BudgetExceededError(
                f"waited longer than the {self._budget}s budget for another snapshot of {str(self._root)!r}"
            )
        try:
            fd = os.open(self._dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                while not _try_lock(fd):
                    if deadline is not None and _now() > deadline:
                        raise BudgetExceededError(
                            f"waited longer than the {self._budget}s budget for another process "
                            f"snapshotting {str(self._root)!r}"
                        )
                    time.sleep(0.01)
                self._holder.held = True
                try:
                    yield
                finally:
                    self._holder.held = False
                    _unlock(fd)
            finally:
                os.close(fd)
        finally:
            self._thread_lock.release()

    def _scrubbed_env(self) -> dict[str, str]:
        """An environment built from scratch: nothing of the caller's git setup survives."""
        env = {k: os.environ[k] for k in ("PATH", "TMPDIR", "SYSTEMROOT", "TZ") if k in os.environ}
        name, email = _IDENTITY
        env.update(
            HOME=str(self._home),
            XDG_CONFIG_HOME=str(self._home / ".config"),
            LC_ALL="C",
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=os.devnull,
            GIT_TERMINAL_PROMPT="0",
            GIT_OPTIONAL_LOCKS="0",
            GIT_AUTHOR_NAME=name,
            GIT_AUTHOR_EMAIL=email,
            GIT_COMMITTER_NAME=name,
            GIT_COMMITTER_EMAIL=email,
        )
        return env

    def _command(self, args: Sequence[str]) -> builtins.list[str]:
        name, email = _IDENTITY
        return [
            self._exe,
            f"--git-dir={self._git_dir}",
            f"--work-tree={self._root}",
            "-c", "core.hooksPath=/dev/null",
            "-c", "core.fsmonitor=false",
            "-c", "core.autocrlf=false",
            "-c", "core.safecrlf=false",
            "-c", "core.quotepath=off",
            "-c", "core.symlinks=true",
            "-c", "core.untrackedCache=true",
            "-c", "core.precomposeUnicode=true",
            "-c", "gc.auto=0",
            "-c", "maintenance.auto=false",
            "-c", "commit.gpgSign=false",
            "-c", "tag.gpgSign=false",
            "-c", "submodule.recurse=false",
            "-c", "advice.addEmbeddedRepo=false",
            "-c", f"user.name={name}",
            "-c", f"user.email={email}",
            *args,
        ]  # fmt: skip

    def _git(
        self,
        args: Sequence[str],
        *,
        stdin: bytes | None = None,
        env: dict[str, str] | None = None,
        ok: tuple[int, ...] = (0,),
        deadline: float | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run git on the shadow repository; kill it (and its children) and raise
        BudgetExceededError when ``deadline`` passes; raise StorageError on an unexpected exit."""
        proc = self._spawn(args, env=env, stdin=stdin is not None, deadline=deadline)
        return self._wait(proc, args, stdin=stdin, ok=ok, deadline=deadline)

    def _spawn(
        self, args: Sequence[str], *, env: dict[str, str] | None = None, stdin: bool, deadline: float | None
    ) -> subprocess.Popen[bytes]:
        if deadline is not None and deadline <= _now():
            raise BudgetExceededError(f"the {self._budget}s budget ran out before `git {args[0]}`")
        return subprocess.Popen(
            self._command(args),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._env if env is None else {**self._env, **env},
            cwd=self._root,
            start_new_session=True,
        )

    def _wait(
        self,
        proc: subprocess.Popen[bytes],
        args: Sequence[str],
        *,
        stdin: bytes | None = None,
        ok: tuple[int, ...] = (0,),
        deadline: float | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        timeout = None if deadline is None else max(0.0, deadline - _now())
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            raise BudgetExceededError(
                f"`git {args[0]}` on {str(self._root)!r} took longer than the {self._budget}s budget "
                "and was stopped; nothing was recorded"
            ) from None
        except BaseException:
            self._kill(proc)
            raise
        if proc.returncode not in ok:
            text = err.decode("utf-8", "replace").strip()
            raise StorageError(
                f"`git {' '.join(args[:2])}` failed in the shadow repository ({proc.returncode}): {text[:2000]}"
            )
        return subprocess.CompletedProcess(args, proc.returncode, out, err)

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        """Stop a git process and its children and, when this thread holds the repository lock,
        remove the lock files it may have left."""
        killpg = getattr(os, "killpg", None)
        if killpg is not None:  # the whole process group: git may have started helpers
            with contextlib.suppress(ProcessLookupError, PermissionError):
                killpg(proc.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.communicate()
        if getattr(self._holder, "held", False):
            self._clear_stale_locks()

    def _clear_stale_locks(self) -> None:
        # Only called while we hold the repository lock, so any lock file is from the git we killed
        # (a read outside the lock leaves them: they may be a concurrent writer's).
        for lock in (
            self._git_dir / "index.lock",
            self._git_dir / "packed-refs.lock",
            self._git_dir / "HEAD.lock",
        ):
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
        refs = self._git_dir / "refs"
        if refs.is_dir():
            for lock in refs.rglob("*.lock"):
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()

    def _ensure_repository(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self._home.mkdir(exist_ok=True)
        if (self._git_dir / "HEAD").is_file():
            return
        with self._locked(self._deadline()):
            if (self._git_dir / "HEAD").is_file():
                return
            staging = self._dir / f"git-init-{secrets.token_hex(4)}"
            result = subprocess.run(
                [self._exe, "init", "-q", "--bare", "--initial-branch=main", str(staging)],
                capture_output=True,
                env=self._env,
                cwd=self._dir,
                check=False,
            )
            if result.returncode != 0:
                shutil.rmtree(staging, ignore_errors=True)
                raise StorageError(
                    f"`git init` of the shadow repository failed: {result.stderr.decode('utf-8', 'replace')[:2000]}"
                )
            config = [
                ("core.bare", "false"),
                ("core.logAllRefUpdates", "false"),
                ("core.hooksPath", "/dev/null"),
                ("gc.auto", "0"),
                ("commit.gpgSign", "false"),
                ("core.autocrlf", "false"),
                ("core.quotepath", "off"),
            ]
            for key, value in config:
                subprocess.run(
                    [self._exe, f"--git-dir={staging}", "config", key, value],
                    capture_output=True,
                    env=self._env,
                    cwd=self._dir,
                    check=True,
                )
            # Store content byte for byte: no end-of-line conversion, filter or encoding that the
            # workspace's .gitattributes asks for (info/attributes wins over them).
            (staging / "info").mkdir(exist_ok=True)
            (staging / "info" / "attributes").write_text(
                "* -text !eol -filter -ident !working-tree-encoding\n", "utf-8"
            )
            (self._dir / "workspace").write_text(str(self._root) + "\n", "utf-8", "surrogateescape")
            if self._git_dir.exists():  # a half-made directory left by a crash during an earlier init
                shutil.rmtree(self._git_dir)
            os.replace(staging, self._git_dir)


def _lfs_pattern(line: str) -> str | None:
    """The pattern of a ``.gitattributes`` line that sets ``filter=lfs``, else None."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    if line.startswith('"'):
        end = line.find('"', 1)
        if end < 0:
            return None
        pattern, rest = line[1:end], line[end + 1 :]
    else:
        pattern, _, rest = line.partition(" ")
        if "\t" in pattern:
            pattern, _, more = pattern.partition("\t")
            rest = more + " " + rest
    if "filter=lfs" not in rest.split():
        return None
    return pattern


def _split_trailer(body: str) -> tuple[str, int]:
    text = body.rstrip("\n")
    files = 0
    lines = text.split("\n")
    if lines and lines[-1].startswith(_TRAILER_FILES):
        with contextlib.suppress(ValueError):
            files = int(lines[-1][len(_TRAILER_FILES) :].strip())
        text = "\n".join(lines[:-1]).rstrip("\n")
    return text, files


def _check_ref_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name or name.endswith((".lock", ".")):
        raise ValidationError(
            f"a keep name is 1-200 characters of A-Z a-z 0-9 . _ - (like a checkpoint id), got {name!r:.80}"
        )
    return name


def _under_any(path: str, folders: Sequence[str]) -> bool:
    return any(path == f or path.startswith(f + "/") for f in folders)


def _only_removed_inside(folder: Path, rel: str, removed: set[str]) -> bool:
    """Whether every file under ``folder`` is one the restore removes (so the folder will be empty)."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        base = os.path.relpath(dirpath, folder)
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            inner = name if base == "." else f"{base}/{name}"
            if f"{rel}/{inner}".replace(os.sep, "/") not in removed:
                return False
    return True


def _remove_empty_tree(folder: Path) -> None:
    for dirpath, _dirnames, _filenames in os.walk(folder, topdown=False):  # children first
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)


_STATUS = {
    "A": FileStatus.ADDED,
    "C": FileStatus.ADDED,
    "D": FileStatus.DELETED,
    "M": FileStatus.MODIFIED,
    "R": FileStatus.RENAMED,
    "T": FileStatus.TYPE_CHANGED,
}


def _parse_diff(out: bytes, content: bool) -> builtins.list[FileChange]:
    """Parse ``diff-tree -z --raw [-p]``: NUL-separated raw records, then (with -p) a NUL and the
    patch text, whose ``diff --git`` blocks come in the same order (two for a type change)."""
    records: builtins.list[tuple[FileStatus, str, str | None]] = []
    fields = out.split(b"\x00")
    i = 0
    patch_start = len(fields)
    while i < len(fields):
        meta = fields[i]
        if not meta.startswith(b":"):
            patch_start = i
            break
        status_code = meta.decode().split()[4]
        letter = status_code[0]
        if letter in ("R", "C"):
            source, new = os.fsdecode(fields[i + 1]), os.fsdecode(fields[i + 2])
            records.append((_STATUS[letter], new, source))
            i += 3
        else:
            records.append((_STATUS.get(letter, FileStatus.MODIFIED), os.fsdecode(fields[i + 1]), None))
            i += 2
    patches: builtins.list[str] = []
    if content:
        text = b"\x00".join(fields[patch_start:]).decode("utf-8", "replace").lstrip("\x00")
        if text:
            blocks = re.split(r"(?m)^(?=diff --git )", text)
            patches = [b for b in blocks if b]
    changes: builtins.list[FileChange] = []
    cursor = 0
    for status, path, old in records:
        patch: str | None = None
        if content:
            take = 2 if status is FileStatus.TYPE_CHANGED else 1
            chunk = patches[cursor : cursor + take]
            cursor += take
            patch = "".join(chunk) if chunk else ""
        changes.append(FileChange(path, status, old, patch))
    return changes
