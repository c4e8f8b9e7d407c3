"""Comparing snapshots (or a snapshot and the working tree): ``git diff-tree`` and its parser."""

from __future__ import annotations

import builtins
import os
import re

from runtime_core import FileChange, FileStatus

from runtime_persistence.shadow_git.excludes import _Excludes

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


class _Diff(_Excludes):
    """``diff``: reads only, commits nothing."""

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
