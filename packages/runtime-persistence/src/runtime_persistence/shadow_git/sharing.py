"""The git half of shared snapshots: packing what a snapshot added, and bringing in a pack that came
from the store.

With a shared store (DESIGN §5), every snapshot's new objects go to the store's blob area as a git
pack (:class:`runtime_persistence.shadow_git.packs.SnapshotPacks` does the store half), so another
host can diff and restore it. A pack holds the objects reachable from its snapshot and not from its
*prerequisite*, an earlier snapshot already in the store; the local ref
``refs/keepup/shared/<commit>`` marks each snapshot known to be in the store (published here or
fetched), and the newest one is the next pack's prerequisite.

A pack from the store is untrusted input. Before a fetched snapshot is used: the blob's SHA-256 is
checked as it is read (the driver), ``git index-pack --strict`` checks every object's hash and
shape (fsck) with an input-size cap, and ``git rev-list --objects`` proves the snapshot complete;
only then is its shared ref written. A pack that fails any of this is refused with
CorruptionError and its objects are never named by a ref (the next ``gc`` drops them)."""

from __future__ import annotations

import builtins
import contextlib
import os
import re
import secrets
import subprocess
from pathlib import Path
from typing import IO, Protocol

from runtime_core import BudgetExceededError, CorruptionError, StorageError

from runtime_persistence.shadow_git._git import _PRIVATE_UMASK, _GitRunner, _now

__all__ = ["SHARED_REFS", "SharedSnapshots"]

SHARED_REFS = "refs/keepup/shared/"
MAX_PACK_SIZE = 4 << 30
"""The largest pack ``index-pack`` accepts from the store (bytes)."""
_FULL_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


class SharedSnapshots(Protocol):
    """Where a :class:`ShadowGit` publishes its snapshots and fetches those it lacks (the sync
    :class:`runtime_persistence.SnapshotPacks` over a store)."""

    publishing: bool
    """False: snapshots are only fetched from the store, never published to it."""

    def publish(self, shadow: _Sharing, commit: str) -> object:
        """Make ``commit`` (a snapshot of ``shadow``) available to every host sharing the store."""
        ...

    def fetch(self, shadow: _Sharing, commit: str) -> str:
        """Bring snapshot ``commit`` (a full id or a prefix) into ``shadow`` from the store and return
        its full id; NotFoundError when the store does not hold it either."""
        ...


def is_full_commit(commit: str) -> bool:
    return isinstance(commit, str) and bool(_FULL_RE.match(commit))


class _Sharing(_GitRunner):
    """The git side of publishing and fetching snapshots (used by ``SnapshotPacks``)."""

    def _local_commit(self, commit: str) -> str:
        """The full id of snapshot ``commit`` in this repository, never fetched (NotFoundError)."""
        return _GitRunner._resolve(self, commit)

    def _has_commit(self, commit: str) -> bool:
        """Whether the full commit id ``commit`` and everything it reaches are here."""
        if not is_full_commit(commit):
            return False
        out = self._git(["cat-file", "-t", commit], ok=(0, 1, 128))
        if out.returncode != 0 or out.stdout.strip() != b"commit":
            return False
        check = self._git(["rev-list", "--objects", "--quiet", commit], ok=(0, 1, 128))
        return check.returncode == 0

    def _is_shared(self, commit: str) -> bool:
        """Whether this repository knows ``commit`` to be in the store (its shared ref exists)."""
        if not is_full_commit(commit):
            return False
        out = self._git(["rev-parse", "-q", "--verify", f"{SHARED_REFS}{commit}"], ok=(0, 1))
        return out.returncode == 0

    def _shared_commits(self) -> builtins.list[str]:
        """Snapshots known to be in the store, newest commit first."""
        out = self._git(
            ["for-each-ref", "--sort=-committerdate", "--format=%(objectname)", SHARED_REFS]
        ).stdout.decode()
        return [line for line in out.splitlines() if line]

    def _mark_shared(self, commit: str) -> None:
        """Record that ``commit`` is in the store (and keep it alive here)."""
        self._git(["update-ref", "--no-deref", f"{SHARED_REFS}{commit}", commit])

    def _unmark_shared(self, commit: str) -> None:
        """Forget that ``commit`` is in the store (its record went away)."""
        self._git(["update-ref", "--no-deref", "-d", f"{SHARED_REFS}{commit}"], ok=(0, 1))

    def _pack_file(self, commits: str | builtins.list[str], prerequisites: builtins.list[str]) -> Path:
        """Write a pack of the objects ``commits`` reach and none of ``prerequisites`` reach to a
        private temporary file in the shadow directory and return its path (the caller removes
        it). Streams: memory stays bounded whatever the workspace's size."""
        path = self._dir / f"pack-out-{secrets.token_hex(8)}.pack"
        # the tree too: snapshots are parentless, so only an uninteresting tree excludes its objects
        wanted = [commits] if isinstance(commits, str) else commits
        revs = "".join(
            [*(f"{c}\n" for c in wanted), *(f"^{p}\n^{p}^{{tree}}\n" for p in prerequisites)]
        ).encode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                self._run_with_files(["pack-objects", "--revs", "--stdout", "-q"], revs, out, None)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            raise
        return path

    def _new_pack_path(self) -> Path:
        """A fresh private path in the shadow directory for a pack read from the store."""
        return self._dir / f"pack-in-{secrets.token_hex(8)}.pack"

    def _apply_pack(self, path: Path, commit: str | None) -> None:
        """Verify the pack at ``path`` (every object hashed and checked with ``index-pack
        --strict``, size capped) and add its objects here; with ``commit``, also prove that the
        snapshot is now complete and mark it shared. CorruptionError when any check fails."""
        with open(path, "rb") as src:
            try:
                self._run_with_files(
                    ["index-pack", "--stdin", "--strict", f"--max-input-size={MAX_PACK_SIZE}"],
                    src,
                    None,
                    None,
                )
            except StorageError as exc:
                raise CorruptionError(f"a snapshot pack from the store failed git's checks: {exc}") from exc
        if commit is not None:
            if not self._has_commit(commit):
                raise CorruptionError(
                    f"the pack the store holds for snapshot {commit} does not bring that snapshot in full"
                )
            self._mark_shared(commit)

    def _run_with_files(
        self,
        args: builtins.list[str],
        stdin: bytes | IO[bytes],
        stdout: IO[bytes] | None,
        deadline: float | None,
    ) -> None:
        """Run git with a file (or bytes) as stdin and a file as stdout, killed at the deadline."""
        if deadline is None:
            deadline = self._deadline()
        timeout = None if deadline is None else max(0.0, deadline - _now())
        feed = stdin if isinstance(stdin, bytes) else None
        proc = subprocess.Popen(
            self._command(args),
            stdin=subprocess.PIPE if isinstance(stdin, bytes) else stdin,
            stdout=stdout if stdout is not None else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=self._env,
            cwd=self._dir,
            start_new_session=True,
            umask=_PRIVATE_UMASK,
        )
        try:
            _, err = proc.communicate(feed, timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            raise BudgetExceededError(
                f"`git {args[0]}` took longer than the {self._budget}s budget and was stopped"
            ) from None
        except BaseException:
            self._kill(proc)
            raise
        if proc.returncode != 0:
            text = err.decode("utf-8", "replace").strip()
            raise StorageError(
                f"`git {args[0]}` failed in the shadow repository ({proc.returncode}): {text[:2000]}"
            )
