"""Taking and reading snapshots.

Every snapshot is a parentless commit of the workspace tree (staged by
:class:`~runtime_persistence.shadow_git.excludes._Excludes`), kept alive by its own ref
``refs/keepup/snapshots/<time>-<commit>``; ``refs/heads/main`` points at the newest. The commit
message ends with a ``Keepup-Files:`` trailer counting the files it holds."""

from __future__ import annotations

import builtins
import contextlib
import re
import time
from datetime import UTC, datetime
from pathlib import Path

from runtime_core import SnapshotInfo, ValidationError

from runtime_persistence.shadow_git._git import _BRANCH, _SNAPSHOT_REFS
from runtime_persistence.shadow_git.touched import _Touched

MAX_MESSAGE_CHARS = 10_000
_KNOWN_TREES = 1024
_FULL_ID = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_TRAILER_FILES = "Keepup-Files:"


def _split_trailer(body: str) -> tuple[str, int]:
    text = body.rstrip("\n")
    files = 0
    lines = text.split("\n")
    if lines and lines[-1].startswith(_TRAILER_FILES):
        with contextlib.suppress(ValueError):
            files = int(lines[-1][len(_TRAILER_FILES) :].strip())
        text = "\n".join(lines[:-1]).rstrip("\n")
    return text, files


_HASH = 20  # SHA-1 repositories (``git init`` without ``--object-format``)


def _index_count(data: bytes) -> int:
    if len(data) < 12 or data[:4] != b"DIRC":
        raise ValueError("not an index file")
    return int.from_bytes(data[8:12], "big")


def _ewah_ones(data: bytes, at: int) -> tuple[int, int]:
    """The number of set bits of the EWAH bitmap serialized at ``data[at:]`` (git's
    ``ewah/ewah_io.c``), and where it ends."""
    words = int.from_bytes(data[at + 4 : at + 8], "big")
    start = at + 8
    ones = i = 0
    while i < words:
        rlw = int.from_bytes(data[start + 8 * i : start + 8 * i + 8], "big")
        literal = rlw >> 33
        if rlw & 1:
            ones += ((rlw >> 1) & 0xFFFFFFFF) * 64
        for k in range(literal):
            word = data[start + 8 * (i + 1 + k) : start + 8 * (i + 2 + k)]
            if len(word) != 8:
                raise ValueError("truncated bitmap")
            ones += int.from_bytes(word, "big").bit_count()
        i += 1 + literal
    return ones, start + 8 * words + 4


def _split_index_entries(data: bytes, git_dir: Path) -> int:
    """The entries of the index whose file holds ``data`` (see :meth:`_Snapshots._index_entries`)."""
    count = _index_count(data)
    version = int.from_bytes(data[4:8], "big")
    if version not in (2, 3):
        raise ValueError(f"index version {version}")
    at = 12
    for _ in range(count):  # v2/v3 entries: 62 bytes (64 extended), the name, NUL padding to 8
        flags = int.from_bytes(data[at + 60 : at + 62], "big")
        head = 64 if (version == 3 and flags & 0x4000) else 62
        length = flags & 0xFFF
        if length == 0xFFF:
            length = data.index(b"\x00", at + head) - at - head
        at += (head + length + 8) & ~7
    end = len(data) - _HASH
    while at + 8 <= end:
        signature = data[at : at + 4]
        size = int.from_bytes(data[at + 4 : at + 8], "big")
        if signature == b"link":
            body = at + 8
            base = data[body : body + _HASH].hex()
            if base.strip("0") == "" or size <= _HASH:
                return count
            deleted, after = _ewah_ones(data, body + _HASH)
            replaced, _ = _ewah_ones(data, after)
            with open(git_dir / f"sharedindex.{base}", "rb") as fh:
                shared = _index_count(fh.read(12))
            return shared - deleted + count - replaced
        at += 8 + size
    return count


class _Snapshots(_Touched):
    """``snapshot``, ``head``, ``list`` and ``info``."""

    def snapshot(self, message: str = "") -> str | None:
        """Record the workspace and return the new commit, or None when nothing changed since the
        newest snapshot. Durable once it returns (git writes the objects before the ref moves).

        With ``trust_changed_paths``, stages only the paths the workspace tools reported since the
        last staging, unless a full scan is needed (:mod:`.touched` lists when).

        Raises BudgetExceededError (the git process is killed, nothing is half-recorded) when it
        takes longer than the time budget."""
        message = self._check_message(message)
        with self._telemetry.span("shadow_git.snapshot", workspace=str(self._root)) as fields:
            deadline = self._deadline()
            with self._locked(deadline):
                commit = self._snapshot_locked(message, deadline, hints=fields)
            fields["commit"] = commit
            fields["changed"] = commit is not None
            fields["nested_repositories"] = len(self._last_scan.nested_repositories)
            fields["oversized"] = len(self._last_scan.oversized)
            fields["secrets"] = len(self._last_scan.secrets)
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

    def _snapshot_locked(
        self, message: str, deadline: float | None, *, hints: dict[str, object] | None = None
    ) -> str | None:
        """Stage and commit. With ``hints`` (the telemetry fields, which get ``staged``: the
        number of reported paths staged, or ``"all"``), the reported paths alone are staged when
        that is safe; without, the whole workspace always is (a restore's rescue snapshot)."""
        hinted = self._hinted_tree(deadline) if hints is not None else None
        if hinted is None:
            tree = self._index_tree(deadline)
        else:
            tree, staged = hinted
        if hints is not None:
            hints["staged"] = "all" if hinted is None else staged
        files = self._index_entries()
        old, old_tree = self._branch_tip(deadline)
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
        self._commit_trees[commit] = tree
        return commit

    def _branch_tip(self, deadline: float | None) -> tuple[str, str]:
        """The newest snapshot's commit and tree ("" before the first). Read from the loose ref
        file when it names a commit whose tree is already known (commits never change); else
        (a packed or missing ref, an unknown commit) with ``git for-each-ref``."""
        try:
            text = (self._git_dir / _BRANCH).read_bytes().decode("ascii").strip()
        except (OSError, UnicodeDecodeError):
            text = ""
        tree = self._commit_trees.get(text) if _FULL_ID.match(text) else None
        if tree is not None:
            return text, tree
        out = self._git(["for-each-ref", "--format=%(objectname) %(tree)", _BRANCH], deadline=deadline)
        old, _, old_tree = out.stdout.decode().strip().partition(" ")
        if old:
            if len(self._commit_trees) >= _KNOWN_TREES:
                self._commit_trees.clear()
            self._commit_trees[old] = old_tree
        return old, old_tree

    def _index_entries(self) -> int:
        """How many files the shadow index holds, read from its file(s): with git's split index
        (``core.splitIndex``), the shared index's count, less the entries the split index deletes,
        plus those it adds (0 when it cannot be read)."""
        try:
            data = (self._git_dir / "index").read_bytes()
        except OSError:
            return 0
        try:
            return _split_index_entries(data, self._git_dir)
        except (OSError, ValueError, IndexError):
            return 0

    def _check_message(self, message: str) -> str:
        if not isinstance(message, str):
            raise ValidationError(f"a snapshot message must be a str, got {type(message).__name__}")
        if "\x00" in message:
            raise ValidationError("a snapshot message must not contain NUL characters")
        if len(message) > MAX_MESSAGE_CHARS:
            raise ValidationError(f"a snapshot message is at most {MAX_MESSAGE_CHARS} characters")
        return message.strip()
