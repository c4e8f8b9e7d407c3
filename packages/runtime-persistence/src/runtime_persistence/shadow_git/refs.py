"""Retention: keep refs that hold a snapshot while a checkpoint names it, releasing them, pruning
old snapshot refs, and ``git gc`` to free what no ref reaches.

A snapshot is alive while ``refs/keepup/snapshots/<time>-<commit>``, a keep ref
``refs/keepup/keep/<checkpoint id>`` or ``refs/heads/main`` (the newest) points at it."""

from __future__ import annotations

import builtins
import re
import time
from datetime import timedelta

from runtime_core import ValidationError

from runtime_persistence.shadow_git._git import _BRANCH, _KEEP_REFS, _SNAPSHOT_REFS
from runtime_persistence.shadow_git.sharing import SHARED_REFS
from runtime_persistence.shadow_git.snapshot import _Snapshots

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def _check_ref_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name or name.endswith((".lock", ".")):
        raise ValidationError(
            f"a keep name is 1-200 characters of A-Z a-z 0-9 . _ - (like a checkpoint id), got {name!r:.80}"
        )
    return name


class _Refs(_Snapshots):
    """``keep``, ``release``, ``kept``, ``prune`` and ``gc``."""

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
                deletes.append(f"delete {SHARED_REFS}{commit}\n")  # a copy stays in the store
            if deletes and not dry_run:
                self._git(["update-ref", "--stdin"], stdin="".join(deletes).encode())
            return dropped

    def gc(self) -> None:
        """Delete every object no ref reaches (released and pruned snapshots) and pack the rest.
        Holds the lock, so no snapshot is being written meanwhile."""
        with self._locked(self._deadline()):
            self._git(["gc", "--quiet", "--prune=now"], deadline=self._deadline())

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
                SHARED_REFS,
                _BRANCH,
            ]
        ).stdout.decode()
        refs = out.splitlines()
        if any(ref == _BRANCH or ref.startswith(_KEEP_REFS) for ref in refs):
            return
        # the shared ref goes too: the store keeps its copy while a checkpoint names it
        deletes = "".join(
            f"delete {ref} {commit}\n" for ref in refs if ref.startswith((_SNAPSHOT_REFS, SHARED_REFS))
        )
        if deletes:
            self._git(["update-ref", "--stdin"], stdin=deletes.encode())
