"""Bringing the workspace (or some paths) back to a snapshot.

A restore first takes a rescue snapshot of the current state, then plans: it sorts what differs
into files it changes, creates and removes, and files it skips because the rescue snapshot could
not bring them back (excluded, inside a nested repository, something untracked in the way). Only
then does it delete and write, relative to directory descriptors opened with ``O_NOFOLLOW`` from
the workspace root (:mod:`._dirfd`; blobs stream from ``git cat-file --batch``), never through a
path resolved again after the plan, so never following a symlink out of the workspace. A dry run plans against the working tree as a snapshot
would see it and changes nothing."""

from __future__ import annotations

import builtins
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from runtime_core import (
    BudgetExceededError,
    FileStatus,
    RestoreReport,
    StorageError,
    UnsafeWorkspaceError,
    ValidationError,
)

from runtime_persistence.shadow_git._dirfd import Removal, remove_empty_tree, remove_file, write_entry
from runtime_persistence.shadow_git._git import _now
from runtime_persistence.shadow_git.diff import _parse_diff
from runtime_persistence.shadow_git.excludes import _PRUNED_DIRS
from runtime_persistence.shadow_git.snapshot import _Snapshots

_TEMPORARY = re.compile(r"^\.keepup-restore\.[0-9a-f]{16}$")  # see _dirfd.write_entry


@dataclass(slots=True)
class _Plan:
    changed: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


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


class _Blob:
    """One blob of ``git cat-file --batch`` output: its bytes in chunks, then the newline."""

    def __init__(self, stream: IO[bytes], size: int) -> None:
        self._stream = stream
        self._left = size

    def __iter__(self) -> Iterator[bytes]:
        while self._left:
            chunk = self._stream.read(min(self._left, 1 << 20))
            if not chunk:
                raise StorageError("`git cat-file` stopped in the middle of a blob")
            self._left -= len(chunk)
            yield chunk

    def drain(self) -> None:
        """Read what was not consumed, and the newline after the blob."""
        for _ in self:
            pass
        self._stream.read(1)


class _Restore(_Snapshots):
    """``restore``: rescue snapshot, plan, dry run, deletes and writes."""

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

    def _restore_locked(
        self, target: str, selected: builtins.list[str] | None, dry_run: bool, deadline: float | None
    ) -> RestoreReport:
        rescue: str | None = None
        created_rescue = False
        if dry_run:  # the working tree as a snapshot would see it (a tree; the rescue is a commit)
            current = self._index_tree(deadline)
        else:
            self._remove_stale_temporaries()
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
        if (plan.changed or plan.created or plan.removed) and hasattr(os, "sync"):  # POSIX
            # a power loss must not keep the deletes and writes below and lose the rescue
            # snapshot: git does not fsync loose objects by default, so make everything durable
            # before the first change (docs/security.md, "Power loss (shadow-git restore)")
            os.sync()
        try:
            try:
                self._apply(plan, target, deadline)
            except OSError as exc:  # the file system refused a delete or a write
                raise StorageError(f"restoring {str(self._root)!r} failed: {exc}") from exc
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

    def _remove_stale_temporaries(self) -> None:
        """Remove the temporary files a restore killed half-way through a write left behind
        (``.keepup-restore.<16 hex>``, never in a snapshot). Under the lock no other restore is
        writing, so every one found is stale. Removed through directory descriptors, as every
        other delete."""
        for dirpath, dirnames, filenames in os.walk(self._root, followlinks=False):
            dirnames[:] = [d for d in dirnames if d != ".git" and d not in _PRUNED_DIRS]
            for name in filenames:
                if _TEMPORARY.match(name):
                    rel = os.path.relpath(os.path.join(dirpath, name), self._root).replace(os.sep, "/")
                    remove_file(self._root, rel)

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
        """Delete, then write. Both go through directory descriptors opened without following
        symlinks (:mod:`._dirfd`), never through the path again: a folder swapped for a symlink
        since the plan is not followed, and what lies under it moves to ``skipped``."""
        unsafe: builtins.list[str] = []
        for path in plan.removed:
            if remove_file(self._root, path) is Removal.UNSAFE:
                unsafe.append(path)
        for path in plan.created:
            if not remove_empty_tree(self._root, path):
                unsafe.append(path)
        stopped = set(unsafe)
        writes = [p for p in plan.changed + plan.created if p not in stopped]
        if writes:
            unsafe += self._write(target, writes, deadline)
        if unsafe:
            gone = set(unsafe)
            for done in (plan.removed, plan.created, plan.changed):
                done[:] = [p for p in done if p not in gone]
            plan.skipped[:] = sorted({*plan.skipped, *gone})

    def _write(self, target: str, writes: builtins.list[str], deadline: float | None) -> builtins.list[str]:
        """Write ``writes`` as ``target`` holds them, each through its folder's descriptor
        (:func:`._dirfd.write_entry`): blobs stream from one ``git cat-file --batch``. Returns the
        paths not written because a folder on the way stopped being a real folder (or a folder
        is where the file goes)."""
        wanted = set(writes)
        entries: dict[str, tuple[int, bytes]] = {}
        listing = self._git(["ls-tree", "-r", "-z", "--full-tree", target], deadline=deadline).stdout
        for record in listing.split(b"\x00"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            path = os.fsdecode(raw_path)
            if path in wanted:
                mode, _kind, sha = meta.split(b" ")
                entries[path] = (int(mode, 8), sha)
        unsafe: builtins.list[str] = []
        proc = self._spawn(["cat-file", "--batch"], stdin=True, deadline=deadline)
        assert proc.stdin is not None and proc.stdout is not None
        stdin, stdout = proc.stdin, proc.stdout
        try:
            for path in writes:
                entry = entries.get(path)
                if entry is None or entry[0] not in (0o100644, 0o100755, 0o120000):
                    unsafe.append(path)  # not a file or link of the snapshot: never written
                    continue
                if deadline is not None and _now() > deadline:
                    raise BudgetExceededError(
                        f"restoring {str(self._root)!r} took longer than the {self._budget}s budget"
                    )
                stdin.write(entry[1] + b"\n")
                stdin.flush()
                header = stdout.readline().split()
                if len(header) != 3 or header[1] != b"blob":
                    raise StorageError(f"the shadow repository has no blob {entry[1].decode()} for {path!r}")
                blob = _Blob(stdout, int(header[2]))
                if not write_entry(self._root, path, entry[0], iter(blob)):
                    unsafe.append(path)
                blob.drain()
            stdin.close()
            if proc.wait() != 0:
                raise StorageError(f"`git cat-file` failed in the shadow repository ({proc.returncode})")
        finally:
            if proc.poll() is None:
                self._kill(proc)
        return unsafe

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
