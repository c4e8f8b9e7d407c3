"""The git runner under every shadow-git operation: one repository, git in a scrubbed environment.

Every command runs with ``--git-dir`` at the shadow directory, ``--work-tree`` at the workspace and
an environment built from scratch (no ``GIT_*`` variable of the caller, no system or global config,
hooks off, no automatic gc, a fixed identity). Writers serialize through an in-process lock per
shadow directory and a file lock beside it (so several processes queue too). An operation runs
against a deadline (the time budget): a git process still running then is killed with its children,
its lock files removed, and BudgetExceededError raised. Any other unexpected exit is a StorageError.
"""

from __future__ import annotations

import builtins
import contextlib
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
from pathlib import Path

from runtime_core import BudgetExceededError, NotFoundError, StorageError, Telemetry, ValidationError

DEFAULT_TIME_BUDGET = 60.0
"""Seconds one snapshot, diff or restore may take before it is stopped with BudgetExceededError."""

_SNAPSHOT_REFS = "refs/keepup/snapshots/"
_KEEP_REFS = "refs/keepup/keep/"
_BRANCH = "refs/heads/main"
_HEX_RE = re.compile(r"^[0-9a-f]{4,64}$")
_IDENTITY = ("Keepup", "keepup@localhost")

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


# Every git process and every file Keepup writes in the shadow directory is private to the user:
# folders 0700, files 0600 (objects 0400), whatever the process umask (issue 11, hole 7).
_PRIVATE_UMASK = 0o077 if os.name == "posix" else -1
_SHARED_REPOSITORY = "0600"


def _private_dir(path: Path) -> None:
    """Make the folder ``path`` (its parent exists) if missing, and make it 0700."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) != 0o700:
        os.chmod(path, 0o700)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as a file only its owner can read (0600, also when it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
    with os.fdopen(fd, "wb") as fh:
        if os.name == "posix":
            os.fchmod(fh.fileno(), 0o600)
        fh.write(data)


def _make_private(top: Path) -> None:
    """Take every group and other permission off ``top`` and everything under it (symlinks are
    never followed): what an older Keepup, or a wide umask, left readable."""
    if os.name != "posix":  # pragma: no cover - POSIX modes only
        return
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
                    os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)
    with contextlib.suppress(OSError):
        os.chmod(top, stat.S_IMODE(top.stat().st_mode) & 0o700)


# One in-process lock per shadow directory, so threads queue instead of polling the file lock.
_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _now() -> float:
    return time.monotonic()


class _GitRunner:
    """Runs git on one shadow repository: environment, command line, locks, deadlines, set-up.

    The base of :class:`~runtime_persistence.shadow_git.repository.ShadowGit`; holds the state
    every part shares (the workspace root, the shadow directory, the budget, telemetry)."""

    def __init__(
        self, root: Path, directory: Path, exe: str, budget: float | None, telemetry: Telemetry
    ) -> None:
        self._root = root
        self._exe = exe
        self._dir = directory
        self._git_dir = directory / "git"
        self._home = directory / "home"
        self._budget = budget
        self._telemetry = telemetry
        self._env = self._scrubbed_env()
        with _PROCESS_LOCKS_GUARD:
            self._thread_lock = _PROCESS_LOCKS.setdefault(str(directory), threading.Lock())
        self._holder = threading.local()  # ``held`` is True in the thread inside _locked

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
            # index writes hold only the entries that changed; the rest stays in a shared index
            # file, rewritten when over 20 % of the entries changed (git's default)
            "-c", "core.splitIndex=true",
            "-c", "core.precomposeUnicode=true",
            "-c", f"core.sharedRepository={_SHARED_REPOSITORY}",
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
            umask=_PRIVATE_UMASK,
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

    def _needs_private_modes(self) -> bool:
        """Whether the shadow directory or its git directory is open to group or others, or git is
        not told to keep new files private (a repository made by an older Keepup)."""
        if os.name != "posix":  # pragma: no cover - POSIX modes only
            return False
        try:
            wide = any(
                p.stat().st_mode & 0o077 for p in (self._dir, self._git_dir, self._git_dir / "objects")
            )
            config = (self._git_dir / "config").read_text("utf-8", "replace")
        except OSError:
            return True
        return wide or "sharedrepository" not in config.lower()

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
        """Create the shadow repository if missing. Everything in it is private to the user
        (folders 0700, files 0600, objects 0400); a repository left group- or other-readable by an
        older Keepup is made private here, once."""
        self._dir.parent.mkdir(parents=True, exist_ok=True)
        _private_dir(self._dir.parent)  # <state>/shadow: Keepup's own folder of shadow repositories
        fresh = not self._dir.exists()
        _private_dir(self._dir)
        _private_dir(self._home)
        if (self._git_dir / "HEAD").is_file():
            if not fresh and self._needs_private_modes():
                with self._locked(self._deadline()):
                    self._git(["config", "core.sharedRepository", _SHARED_REPOSITORY])
                    _make_private(self._dir)
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
                umask=_PRIVATE_UMASK,
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
                ("core.sharedRepository", _SHARED_REPOSITORY),
            ]
            for key, value in config:
                done = subprocess.run(
                    [self._exe, f"--git-dir={staging}", "config", key, value],
                    capture_output=True,
                    env=self._env,
                    cwd=self._dir,
                    check=False,
                    umask=_PRIVATE_UMASK,
                )
                if done.returncode != 0:
                    shutil.rmtree(staging, ignore_errors=True)
                    raise StorageError(
                        f"`git config {key}` of the shadow repository failed ({done.returncode}): "
                        f"{done.stderr.decode('utf-8', 'replace')[:2000]}"
                    )
            # Store content byte for byte: no end-of-line conversion, filter or encoding that the
            # workspace's .gitattributes asks for (info/attributes wins over them).
            _private_dir(staging / "info")
            _write_private(
                staging / "info" / "attributes", b"* -text !eol -filter -ident !working-tree-encoding\n"
            )
            _write_private(self._dir / "workspace", os.fsencode(str(self._root)) + b"\n")
            _make_private(staging)
            if self._git_dir.exists():  # a half-made directory left by a crash during an earlier init
                shutil.rmtree(self._git_dir)
            os.replace(staging, self._git_dir)
