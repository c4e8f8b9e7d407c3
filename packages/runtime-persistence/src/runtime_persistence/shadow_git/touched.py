"""Snapshots that stage only the paths the workspace tools reported changing.

A full snapshot brings the whole shadow index up to the workspace: git compares every tracked
file's stat data with the index and walks every folder for new files, and the scan of the
workspace checks every folder whose times moved; that cost grows with the workspace. When the
workspace tools tell the shadow repository which paths they changed
(:class:`runtime_core.ChangedPaths`, wired by the facade), a snapshot can stage just those paths
instead, and a snapshot with nothing reported writes nothing at all.

That is only right when nothing else changed the workspace, which Keepup cannot see: an editor, a
build, a ``git checkout``, another process. So reports are **trusted only when the caller says so**
(``ShadowGit(trust_changed_paths=True)``, ``open_runtime(trust_tool_changes=True)``), and even then
a snapshot falls back to the full scan whenever:

* this object has not yet staged the whole workspace itself (the first snapshot, diff or restore
  it makes), or its last staging failed;
* the shadow index changed since this object last wrote it (another process or object staged);
* a tool reported that anything may have changed (``run_command``, before and after it runs), or
  a restore wrote files;
* a reported path is, or is inside, something the full scan decides about: an ignore or attributes
  file, a ``.git`` folder, a secret file (:data:`SECRET_EXCLUDES`, templates included), a file over
  the size cap or one that was, a nested repository (a folder holding ``.git``), an unreadable
  folder; or a path is not a plain relative path;
* more than :data:`MAX_TOUCHED_PATHS` paths were reported, or staging them fails in any way.

A hinted snapshot holds exactly what a full one would have: the same ``git add -A`` with the same
ignore rules, limited to the reported paths, none of which a secret pattern matches (checked with
the scan's own test before git runs; a test compares both trees).
"""

from __future__ import annotations

import builtins
import os
import stat
import threading
from collections.abc import Iterable

from runtime_core import StorageError

from runtime_persistence.shadow_git.excludes import _Excludes, _matches_secret_pattern

__all__ = ["MAX_TOUCHED_PATHS"]

MAX_TOUCHED_PATHS = 2000
"""More reported paths than this between two snapshots: the full scan runs instead (it is then
about as cheap, and the pathspec list stays small)."""

_Stamp = tuple[int, int, int, int, bytes]
_IGNORED_NOTICE = b"The following paths are ignored"
_SPECIAL_NAMES = frozenset({".gitignore", ".gitattributes", ".git"})


def _plain_relative(path: object) -> str | None:
    """``path`` as a plain ``/``-separated path relative to the workspace, or None when it is not
    one (absolute, empty, ``.``/``..`` parts, NUL)."""
    if not isinstance(path, str) or not path or "\x00" in path or path.startswith("/"):
        return None
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    return path


def _literal(path: str) -> str:
    return f":(literal){path}"


class _Touched(_Excludes):
    """Collects the reported paths and stages only them when that is safe (see the module)."""

    _trust_changes: bool
    _touched_lock: threading.Lock
    _touched: set[str]
    _touched_unknown: bool
    _index_stamp: _Stamp | None
    _index_tree_id: str | None
    _commit_trees: dict[str, str]  # commit -> its tree, for commits this object has seen

    def _init_touched(self, trust: bool) -> None:
        self._trust_changes = trust
        self._touched_lock = threading.Lock()
        self._touched = set()
        self._touched_unknown = True  # nothing is known until this object stages the workspace
        self._index_stamp = None
        self._index_tree_id = None
        self._commit_trees = {}

    # -------------------------------------------------------------- ChangedPaths (runtime_core)
    def paths_changed(self, paths: Iterable[str]) -> None:
        """Told (by a workspace tool, after the change) that ``paths`` (relative to the workspace)
        were written or deleted. The next snapshot stages them, when reports are trusted."""
        with self._touched_lock:
            if self._touched_unknown:
                return  # the next staging scans everything anyway
            for raw in paths:
                path = _plain_relative(raw)
                if path is None:
                    self._forget_touched()
                    return
                self._touched.add(path)
            if len(self._touched) > MAX_TOUCHED_PATHS:
                self._forget_touched()

    def tree_changed(self) -> None:
        """Told that anything in the workspace may have changed (a command ran, files were
        restored): the next snapshot scans the whole workspace."""
        with self._touched_lock:
            self._forget_touched()

    def _forget_touched(self) -> None:
        self._touched_unknown = True
        self._touched.clear()

    # ------------------------------------------------------------------------------ staging
    def _index_stamp_now(self) -> _Stamp | None:
        """What identifies the shadow index file as written: inode, size, times and its trailing
        checksum (git's hash of the whole content, so a rewrite within a coarse clock tick that
        reuses the inode and size still differs)."""
        try:
            with open(self._git_dir / "index", "rb") as fh:
                st = os.fstat(fh.fileno())
                fh.seek(max(0, st.st_size - 32))
                tail = fh.read(32)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, tail)

    def _index_tree(self, deadline: float | None) -> str:
        """The full staging (every caller: snapshot, diff, dry-run restore): reports made from
        now on are what the next snapshot may stage instead."""
        with self._touched_lock:
            self._touched_unknown = False
            self._touched.clear()
        try:
            tree = super()._index_tree(deadline)
        except BaseException:
            self.tree_changed()
            raise
        self._index_stamp = self._index_stamp_now()
        self._index_tree_id = tree
        return tree

    def _write_tree(self, deadline: float | None) -> str:
        """The index's tree: the one this object last wrote when the index file is still the one
        it wrote then (git replaces the file on every change, so its inode and times move), else
        ``git write-tree``."""
        stamp = self._index_stamp_now()
        if stamp is not None and stamp == self._index_stamp and self._index_tree_id is not None:
            return self._index_tree_id
        return super()._write_tree(deadline)

    def _hinted_tree(self, deadline: float | None) -> tuple[str, int] | None:
        """Stage only the reported paths and return the index's tree and how many paths were
        staged, or None when a full staging must run instead (see the module for when)."""
        with self._touched_lock:
            if not self._trust_changes or self._touched_unknown or self._index_stamp is None:
                return None
            paths = sorted(self._touched)
            self._touched.clear()
        stamp = self._index_stamp
        if stamp is None or self._index_stamp_now() != stamp or not self._all_plain(paths):
            return None
        if not paths and self._index_tree_id is not None:
            return self._index_tree_id, 0  # nothing reported, nobody else staged: nothing changed
        present: builtins.list[str] = []
        missing: builtins.list[str] = []
        for path in paths:
            try:
                st = os.lstat(self._root / path)
            except FileNotFoundError:
                missing.append(path)
                continue
            except OSError:
                return None
            if stat.S_ISDIR(st.st_mode):
                return None  # tools report files; a folder may hold anything the scan decides
            if stat.S_ISREG(st.st_mode) and self._max_file_size and st.st_size > self._max_file_size:
                return None
            present.append(path)
        try:
            if missing:
                self._git(
                    ["rm", "-q", "--cached", "--ignore-unmatch", "--", *map(_literal, missing)],
                    deadline=deadline,
                )
            if present:
                # no secret pathspecs: ``_all_plain`` refused every path they could match (with
                # the scan's own check), and git would match each against every index entry
                out = self._git(
                    ["add", "-A", "--", *map(_literal, present)],
                    ok=(0, 1),
                    deadline=deadline,
                )
                # 1: some paths are ignored (left out, as the full staging leaves them); else fail
                if out.returncode == 1 and not out.stderr.startswith(_IGNORED_NOTICE):
                    return None
            tree = self._write_tree(deadline)
        except StorageError:
            return None  # e.g. a path swapped for a symlinked folder meanwhile: scan everything
        self._index_stamp = self._index_stamp_now()
        self._index_tree_id = tree
        return tree, len(paths)

    def _all_plain(self, paths: builtins.list[str]) -> bool:
        """Whether no path is one the full scan must decide about (see the module)."""
        scan = self._last_scan
        decided = (*scan.nested_repositories, *scan.unreadable)
        oversized = set(scan.oversized)
        for path in paths:
            parts = path.split("/")
            if any(part in _SPECIAL_NAMES for part in parts) or _matches_secret_pattern(path):
                return False
            if path in oversized or any(path == d or path.startswith(d + "/") for d in decided):
                return False
            folder = self._root
            for part in parts[:-1]:  # a folder above it that holds .git: a nested repository
                folder = folder / part
                if os.path.lexists(folder / ".git"):
                    return False
        return True
