"""What snapshots leave out, and the step that stages the workspace honouring it.

Left out: secret files (:data:`SECRET_EXCLUDES`, refused by path before git reads them, which
no rule of the workspace can undo, unless ``allow_secrets`` names them), the workspace's
``.gitignore`` rules (git reads them from the work tree), built-in patterns
(:data:`DEFAULT_EXCLUDES`: virtualenvs, ``node_modules``, build output, caches, secrets),
extra patterns given by the caller, the workspace's ``.git/info/exclude``, Git LFS patterns
(``filter=lfs`` in ``.gitattributes``), files over the size cap, nested repositories (a folder
holding ``.git``) and unreadable folders. A scan of the workspace (never following symlinks, never
entering pruned folders or nested repositories, listing again only folders whose times moved) and
the sizes of the files git lists as new or changed find the last four; they are written into the
shadow repository's ``info/exclude`` on every snapshot."""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import fnmatch
import hashlib
import os
import re
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import PurePosixPath

from runtime_core import BudgetExceededError, StorageError

from runtime_persistence.shadow_git._git import _GitRunner, _now, _private_dir, _write_private

DEFAULT_MAX_FILE_SIZE = 25 * 1024 * 1024
"""Files larger than this (bytes) are left out of snapshots unless the cap is changed."""

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

SECRET_EXCLUDES: tuple[str, ...] = (
    # environment files (``.env.example``, ``.env.sample`` and ``.env.template`` are kept)
    ".env",
    ".env.*",
    # private keys and key stores
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.ppk",
    "*.kdbx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    # credentials of tools
    ".git-credentials",
    ".netrc",
    "_netrc",
    ".npmrc",
    ".pypirc",
    ".pgpass",
    ".my.cnf",
    ".htpasswd",
    ".dockercfg",
    ".docker/config.json",
    ".terraformrc",
    "terraform.rc",
    ".vault-token",
    ".boto",
    ".s3cfg",
    ".secrets",
    "secrets.*",
    "credentials.json",
    "client_secret*.json",
    "application_default_credentials.json",
    ".config/gh/hosts.yml",
    # infrastructure state and variables (they hold passwords and keys)
    "*.tfstate",
    "*.tfstate.*",
    "*.tfvars",
    # credential folders: everything inside
    ".ssh/",
    ".aws/",
    ".gnupg/",
    ".kube/",
    ".azure/",
    ".config/gcloud/",
)
"""Secret files every snapshot leaves out, whatever the workspace's own rules say.

A pattern without ``/`` is a file name (``fnmatch`` wildcards) in any folder; one ending in ``/``
is a folder (by name, or by its last folders when it holds a ``/``) anywhere, with everything
inside; any other is a path suffix (``.docker/config.json``). Matched case-insensitively.
Applied as git *exclude pathspecs* on every ``git add`` and as a filter of the staged paths, after
the workspace's ``.gitignore`` and ``.git/info/exclude``, so no ``!`` rule there brings one back.
``ShadowGit(allow_secrets=[...])`` lets named paths in."""

SECRET_KEPT_NAMES: frozenset[str] = frozenset({".env.example", ".env.sample", ".env.template"})
"""File names a secret pattern matches that are templates, not secrets: snapshotted."""


def _secret_gitignore_line(pattern: str) -> str:
    if pattern.endswith("/"):
        return f"**/{pattern}**"
    return f"**/{pattern}" if "/" in pattern else pattern


def _secret_pathspec_glob(pattern: str) -> str:
    return f"**/{pattern}**" if pattern.endswith("/") else f"**/{pattern}"


# Exclude pathspecs: git honours them after every ignore rule, and no ignore rule can undo them.
_SECRET_PATHSPECS: tuple[str, ...] = tuple(
    f":(exclude,glob,icase){_secret_pathspec_glob(p)}" for p in SECRET_EXCLUDES
)
_SECRET_NAMES = tuple(p for p in SECRET_EXCLUDES if "/" not in p)
_SECRET_FOLDERS = tuple(tuple(p.rstrip("/").split("/")) for p in SECRET_EXCLUDES if p.endswith("/"))
_SECRET_SUFFIXES = tuple(tuple(p.split("/")) for p in SECRET_EXCLUDES if "/" in p and not p.endswith("/"))


# One regular expression for every file-name pattern (what ``fnmatch.fnmatchcase`` compiles each
# to), and the folder names that start a folder or end a suffix pattern: the scan checks every file
# of the workspace, so this runs once per file.
_SECRET_NAME_RE = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in _SECRET_NAMES))
_SECRET_FOLDER_HEADS = frozenset(folder[0] for folder in _SECRET_FOLDERS)
_SECRET_SUFFIX_TAILS = frozenset(suffix[-1] for suffix in _SECRET_SUFFIXES)


def _in_secret_folder(folder_parts: builtins.list[str]) -> bool:
    """Whether a folder pattern of ``SECRET_EXCLUDES`` matches the folder whose lowercased path
    parts are ``folder_parts`` or one above it (everything inside is secret)."""
    if _SECRET_FOLDER_HEADS.isdisjoint(folder_parts):
        return False
    m = len(folder_parts)
    for folder in _SECRET_FOLDERS:
        k = len(folder)
        if any(tuple(folder_parts[i : i + k]) == folder for i in range(m - k + 1)):
            return True
    return False


def _secret_name(name: str, folder_parts: builtins.list[str]) -> bool:
    """Whether a file-name or path-suffix pattern matches the file ``name`` (lowercased) in the
    folder whose lowercased parts are ``folder_parts``."""
    if _SECRET_NAME_RE.match(name):
        return True
    if name not in _SECRET_SUFFIX_TAILS:
        return False
    parts = [*folder_parts, name]
    return any(
        len(parts) >= len(suffix) and tuple(parts[-len(suffix) :]) == suffix for suffix in _SECRET_SUFFIXES
    )


def _matches_secret_pattern(path: str) -> bool:
    """Whether a ``SECRET_EXCLUDES`` pattern matches ``path`` (``/``-separated, relative to the
    workspace), as the exclude pathspecs do: case-insensitive, ``*`` within one name."""
    parts = path.lower().split("/")
    return _in_secret_folder(parts[:-1]) or _secret_name(parts[-1], parts[:-1])


def _is_secret(path: str) -> bool:
    """Whether ``path`` is a secret file snapshots leave out (templates such as ``.env.example``
    are not)."""
    return _matches_secret_pattern(path) and path.rsplit("/", 1)[-1].lower() not in SECRET_KEPT_NAMES


def _under(path: str, folders: tuple[str, ...]) -> bool:
    return any(path == f or path.startswith(f + "/") for f in folders)


DEFAULT_EXCLUDES: tuple[str, ...] = (
    # virtualenvs, package managers, caches, build output
    *sorted(f"{name}/" for name in _PRUNED_DIRS),
    "*.egg-info/",
    "*.py[cod]",
    ".coverage",
    ".coverage.*",
    ".DS_Store",
    "Thumbs.db",
    ".keepup-restore.*",  # a restore's temporary file, left by a crash
    # secrets (also enforced after the workspace's rules: see SECRET_EXCLUDES)
    *(_secret_gitignore_line(p) for p in SECRET_EXCLUDES),
    *sorted(f"!{name}" for name in SECRET_KEPT_NAMES),
)
"""Patterns every snapshot leaves out (gitignore syntax), before the workspace's own rules. The
secret ones among them are enforced after the workspace's rules too (:data:`SECRET_EXCLUDES`)."""


@dataclass(frozen=True, slots=True)
class WorkspaceScan:
    """What the last scan of the workspace left out of snapshots, besides ignore rules.

    Paths are relative to the workspace, with ``/`` separators."""

    nested_repositories: tuple[str, ...] = ()
    oversized: tuple[str, ...] = ()
    lfs_patterns: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()
    files: int = 0
    secrets: tuple[str, ...] = ()
    """Secret files (:data:`SECRET_EXCLUDES`) left out, whatever the workspace's rules say; paths
    let in by ``allow_secrets`` are not listed."""


_Stamp = tuple[int, int, int, int]

# What every staging asks git: tracked files changed or deleted (-m lists both), new files not
# ignored. ``--exclude-standard``: the workspace's .gitignore files and the generated excludes.
# ``-t`` tags each path: ``C`` tracked and changed, ``?`` new.
_CHANGED_LISTING = ("ls-files", "-z", "-t", "--modified", "--others", "--exclude-standard")

_FOLDER_MARGIN_NS = 2_000_000_000
"""A folder whose modification or change time is this close to a scan's start (nanoseconds) is
listed again by the next scan even if its times did not move (a change within one clock tick of
the file system, or on a coarse-grained one, can leave them as they were)."""


@dataclass(frozen=True, slots=True)
class _Folder:
    """What the scan took from one folder's entries, and the folder's stat data then (None: too
    recent to trust, list it again next time)."""

    stamp: _Stamp | None
    nested: bool = False
    folders: tuple[str, ...] = ()
    files: int = 0
    ignore_files: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    reinclude: tuple[str, ...] = ()


def _escape_pattern(path: str) -> str:
    """``path`` as a gitignore pattern that matches exactly that path from the workspace root."""
    out = re.sub(r"([\\*?\[\]])", r"\\\1", path)
    if out.endswith(" "):
        out = out[:-1] + "\\ "
    return "/" + out


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


class _Excludes(_GitRunner):
    """Scans the workspace, writes the excludes and stages the workspace into the shadow index."""

    _max_file_size: int
    _extra_excludes: tuple[str, ...]
    _allow_secrets: tuple[str, ...]
    _last_scan: WorkspaceScan
    _scanned: bool
    _reinclude: builtins.list[str]
    _folders: dict[str, _Folder]  # the last scan's folders, by path relative to the workspace
    _folder_margin_ns: int

    def _changed_listing(self, *, spawn: bool, deadline: float | None) -> subprocess.Popen[bytes] | bytes:
        """``git ls-files -m -o``: every tracked file whose stat data (or, when that cannot tell,
        its content: git's racy-entry check) no longer matches the index, deleted ones included,
        and every new file not ignored. One process that reads the index and writes nothing;
        started and returned with ``spawn``, else run to the end and its output returned."""
        if spawn:
            return self._spawn(_CHANGED_LISTING, stdin=False, deadline=deadline)
        return self._git(_CHANGED_LISTING, deadline=deadline).stdout

    def _changed_paths(
        self, listing: bytes, scan: WorkspaceScan
    ) -> tuple[builtins.list[bytes], builtins.list[bytes], builtins.list[str]]:
        """From a :meth:`_changed_listing`: the paths to stage, the tracked paths now beyond a
        symlink (to remove from the index), and the files over the size cap (left out, to be
        excluded).

        Every secret file is refused here by its path, before git reads it, so no ignore rule of
        the workspace can bring one back (tracked files are never secret: staging never adds one,
        and :meth:`_untrack_excluded` drops any that an older Keepup or a withdrawn
        ``allow_secrets`` left). A path inside a folder that holds ``.git`` but is not one of the
        scan's nested repositories (made after the scan, or while the listing ran beside it)
        raises StorageError: the caller scans again, to report and exclude it."""
        allowed = self._allow_secrets
        cap = self._max_file_size
        folders: dict[str, str] = {}
        stage: builtins.list[bytes] = []
        beyond_link: builtins.list[bytes] = []
        oversized: builtins.list[str] = []
        for item in listing.split(b"\x00"):
            tag, raw = item[:2], item[2:]
            if not raw:
                continue
            if raw.endswith(b"/"):  # a nested repository, which git lists as a folder
                if os.fsdecode(raw[:-1]) not in scan.nested_repositories:
                    raise StorageError(f"a nested repository appeared while staging: {raw!r:.200}")
                continue
            path = os.fsdecode(raw)
            if _is_secret(path) and not (allowed and _under(path, allowed)):
                continue
            above = self._folder_kind(path, folders)
            if above == "repository":
                raise StorageError(f"a nested repository appeared while staging: {raw!r:.200}")
            if above == "link":
                if tag == b"C ":  # tracked, and its folder is now a symlink (or a file)
                    beyond_link.append(raw)
                continue
            if cap:
                try:
                    st = os.lstat(os.path.join(self._root, path))
                except OSError:
                    pass  # deleted (staged as a removal), or git reports what it cannot read
                else:
                    if stat.S_ISREG(st.st_mode) and st.st_size > cap:
                        oversized.append(path)
                        continue
            stage.append(raw)
        return stage, beyond_link, oversized

    def _folder_kind(self, path: str, memo: dict[str, str]) -> str:
        """What the folders above ``path`` are: ``"link"`` when one is a symlink or not a folder,
        ``"repository"`` when one holds ``.git``, else ``""`` (answers kept in ``memo``)."""
        parts = path.split("/")[:-1]
        prefix = ""
        for part in parts:
            prefix = f"{prefix}/{part}" if prefix else part
            kind = memo.get(prefix)
            if kind is None:
                folder = os.path.join(self._root, prefix)
                try:
                    st = os.lstat(folder)
                except OSError:
                    kind = "link"  # gone: whatever was in it is removed
                else:
                    if not stat.S_ISDIR(st.st_mode):
                        kind = "link"
                    elif os.path.lexists(os.path.join(folder, ".git")):
                        kind = "repository"
                    else:
                        kind = ""
                memo[prefix] = kind
            if kind:
                return kind
        return ""

    def _stage_allowed(self, deadline: float | None) -> None:
        """Stage what the secret pathspecs left out but must be in: templates such as
        ``.env.example`` and the paths of ``allow_secrets`` (the workspace's ignore rules still
        apply to them: git exits 1 when one is ignored, which is fine)."""
        if self._reinclude:
            self._git(
                ["--literal-pathspecs", "add", "-A", "--", *self._reinclude], ok=(0, 1), deadline=deadline
            )
        present = set(self._reinclude)
        gone = [a for a in self._allow_secrets if a not in present]
        if gone:  # nothing of it on disk: drop what an earlier snapshot staged of it
            self._git(
                ["--literal-pathspecs", "rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *gone],
                deadline=deadline,
            )

    def _index_tree(self, deadline: float | None) -> str:
        """Bring the shadow index up to the working tree (honouring every exclude) and return its
        tree id. Writes objects to the shadow store only; moves no ref.

        A nested repository made between the scan and ``git add`` (which refuses a repository
        without a commit) fails the staging once: the workspace is then scanned again and, when
        that finds new nested repositories, staged again with them excluded."""
        try:
            return self._index_tree_once(deadline)
        except BudgetExceededError:
            raise
        except StorageError:
            known = set(self._last_scan.nested_repositories)
            scan, _ = self._scan(deadline)
            if set(scan.nested_repositories) <= known:
                raise
            return self._index_tree_once(deadline)

    def _index_tree_once(self, deadline: float | None) -> str:
        """One pass of :meth:`_index_tree`.

        ``git ls-files -m -o`` lists what changed (git compares every tracked file's stat data
        with the index and walks the folders for new files) while the scan of the workspace runs;
        only the listed paths are staged, through one ``git update-index``, so nothing changed
        means no index write at all. When the scan finds the exclusions changed (or an ignore file
        changed), the excludes are rewritten and newly excluded files untracked first, and the
        listing is taken again. Files the listing shows over the size cap are excluded, and
        untracked if they were tracked, instead of staged."""
        exclude = self._git_dir / "info" / "exclude"
        try:
            previous_text = exclude.read_text("utf-8", "surrogateescape")
        except OSError:
            previous_text = None
        previous_scan = self._last_scan if self._scanned else None
        early: subprocess.Popen[bytes] | None = None
        if previous_text is not None and previous_scan is not None:
            spawned = self._changed_listing(spawn=True, deadline=deadline)
            assert isinstance(spawned, subprocess.Popen)
            early = spawned
        try:
            scan, fingerprint = self._scan(deadline)
        except BaseException:
            if early is not None:
                self._kill(early)
            raise
        if previous_scan is not None:
            appeared = sorted(set(scan.nested_repositories) - set(previous_scan.nested_repositories))
            if appeared:  # reported: their files leave later snapshots (the folder is never touched)
                self._telemetry.event(
                    "shadow_git.nested_repositories_appeared", workspace=str(self._root), paths=appeared
                )
        marker = self._git_dir / "keepup-excludes.fingerprint"
        try:
            marked = marker.read_text()
        except OSError:
            marked = ""
        text = self._exclude_text(scan)
        if early is not None and text == previous_text and marked == self._marker_digest(text, fingerprint):
            listing = self._wait(early, _CHANGED_LISTING, deadline=deadline).stdout
        else:
            if early is not None:  # taken under the old excludes: take it again
                self._kill(early)
            if text != previous_text:
                _private_dir(exclude.parent)
                _write_private(exclude, text.encode("utf-8", "surrogateescape"))
            self._untrack_excluded(deadline)  # before the listing, which would stage them again
            _write_private(marker, self._marker_digest(text, fingerprint).encode())
            out = self._changed_listing(spawn=False, deadline=deadline)
            assert isinstance(out, bytes)
            listing = out
        stage, beyond_link, grown = self._changed_paths(listing, scan)
        if grown:  # over the size cap: excluded from now on, and untracked if they were tracked
            scan = dataclasses.replace(scan, oversized=tuple(sorted({*scan.oversized, *grown})))
            text = self._exclude_text(scan)
            _write_private(exclude, text.encode("utf-8", "surrogateescape"))
            self._untrack_excluded(deadline)
            _write_private(marker, self._marker_digest(text, fingerprint).encode())
        self._last_scan = scan
        self._scanned = True
        if beyond_link:  # ``--remove`` refuses them
            self._git(
                ["update-index", "--force-remove", "-z", "--stdin"],
                stdin=b"\x00".join(beyond_link) + b"\x00",
                deadline=deadline,
            )
        if stage:
            self._git(
                ["update-index", "--add", "--remove", "--replace", "-z", "--stdin"],
                stdin=b"\x00".join(stage) + b"\x00",
                deadline=deadline,
            )
        self._stage_allowed(deadline)
        return self._write_tree(deadline)

    @staticmethod
    def _marker_digest(text: str, fingerprint: bytes) -> str:
        """What the marker file holds once :meth:`_untrack_excluded` has run for these excludes
        and these ignore files ("staging 2": repositories staged by ``add -A`` with secret
        pathspecs untrack once more)."""
        return hashlib.sha256(
            b"staging 2\x00" + text.encode("utf-8", "surrogateescape") + fingerprint
        ).hexdigest()

    def _write_tree(self, deadline: float | None) -> str:
        """The tree id of the shadow index (written to the object store)."""
        return self._git(["write-tree"], deadline=deadline).stdout.decode().strip()

    def _exclude_text(self, scan: WorkspaceScan) -> str:
        """The shadow repository's ``info/exclude`` for this scan."""
        lines = ["# Keepup shadow-git excludes: generated on every snapshot, do not edit", *DEFAULT_EXCLUDES]
        if self._extra_excludes:
            lines += ["# extra excludes", *self._extra_excludes]
        if self._allow_secrets:
            lines += ["# secret paths let in by allow_secrets"]
            for path in self._allow_secrets:
                lines += ["!" + _escape_pattern(path), "!" + _escape_pattern(path) + "/**"]
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
        # secret files staged by an older Keepup, or let in by an allow_secrets since removed
        secret_globs = [f":(glob,icase){_secret_pathspec_glob(p)}" for p in SECRET_EXCLUDES]
        tracked = self._git(["ls-files", "-z", "--cached", "--", *secret_globs], deadline=deadline).stdout
        for raw in tracked.split(b"\x00"):
            path = os.fsdecode(raw)
            if raw and _is_secret(path) and not _under(path, self._allow_secrets):
                out += raw + b"\x00"
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
        repositories; return what must be excluded and a fingerprint of the ignore files seen.

        A folder is listed again only when its stat data (device, inode, modification and change
        times) differs from when it was last listed: adding, removing or renaming an entry, or a
        change of its permissions, moves them. Its entries' names are all the scan decides on
        (nested repositories, secrets, pruned folders, ignore and attributes files), so an
        unchanged folder's earlier listing holds. A folder changed less than
        ``_folder_margin_ns`` before the scan started is not reused next time (a change within
        the same clock tick would leave its times as they were). File contents are not the
        scan's: git's listing compares every tracked file's stat data; the scan re-reads the
        ignore and attributes files' stat data, and sizes only the files that were over the cap
        and the secret paths let in (the listing's new and changed files are sized by
        :meth:`_changed_paths`)."""
        nested: builtins.list[str] = []
        unreadable: builtins.list[str] = []
        attributes: builtins.list[str] = []
        secrets: builtins.list[str] = []
        reinclude: set[str] = set()
        fingerprint = hashlib.sha256()
        files = 0
        root = str(self._root)
        limit = time.time_ns() - self._folder_margin_ns
        known = self._folders
        folders: dict[str, _Folder] = {}
        stack: builtins.list[str] = [""]
        while stack:
            rel = stack.pop()
            folder = os.path.join(root, rel) if rel else root
            if deadline is not None and _now() > deadline:
                raise BudgetExceededError(
                    f"scanning the workspace {root!r} took longer than the {self._budget}s budget"
                )
            try:
                st = os.stat(folder, follow_symlinks=False)
            except OSError:
                if rel:
                    unreadable.append(rel)
                continue
            stamp = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
            entry = known.get(rel)
            if entry is None or entry.stamp != stamp:
                entry = self._list_folder(rel, folder, stamp)
                if entry is None:
                    if rel:
                        unreadable.append(rel)
                    continue
                if st.st_mtime_ns >= limit or st.st_ctime_ns >= limit:
                    entry = dataclasses.replace(entry, stamp=None)  # too recent to trust next time
            folders[rel] = entry
            if entry.nested:
                nested.append(rel)
                continue
            files += entry.files
            stack.extend(entry.folders)
            secrets.extend(entry.secrets)
            reinclude.update(entry.reinclude)
            attributes.extend(entry.attributes)
            for path in entry.ignore_files:
                try:
                    fst = os.stat(os.path.join(root, path), follow_symlinks=False)
                except OSError:
                    continue
                fingerprint.update(
                    f"{path}\x00{fst.st_size}\x00{fst.st_mtime_ns}\x00{fst.st_ctime_ns}\x00".encode(
                        "utf-8", "surrogateescape"
                    )
                )
        self._folders = folders
        cap = self._max_file_size
        oversized: set[str] = set()
        if cap:
            previous = self._last_scan.oversized if self._scanned else ()
            for path in (*previous, *reinclude):
                try:
                    fst = os.stat(os.path.join(root, path), follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(fst.st_mode) and fst.st_size > cap:
                    oversized.add(path)
        lfs = self._lfs_patterns(attributes)
        nested.sort()
        unreadable.sort()
        secrets.sort()
        self._reinclude = sorted(reinclude)
        return WorkspaceScan(
            tuple(nested), tuple(sorted(oversized)), tuple(lfs), tuple(unreadable), files, tuple(secrets)
        ), fingerprint.digest()

    def _list_folder(self, rel: str, folder: str, stamp: _Stamp) -> _Folder | None:
        """What the scan takes from one folder's entries (None: it cannot be listed)."""
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:
            return None
        if rel and any(e.name == ".git" for e in entries):
            return _Folder(stamp, nested=True)
        allowed = self._allow_secrets
        folder_parts = rel.lower().split("/") if rel else []
        secret_folder = _in_secret_folder(folder_parts)  # once per folder, not per file
        subfolders: builtins.list[str] = []
        ignore_files: builtins.list[str] = []
        attributes: builtins.list[str] = []
        secrets: builtins.list[str] = []
        reinclude: set[str] = set()
        files = 0
        for entry in entries:
            name = entry.name
            if name == ".git":
                continue
            path = f"{rel}/{name}" if rel else name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if name not in _PRUNED_DIRS:
                        subfolders.append(path)
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue
            except OSError:
                continue
            files += 1
            if name in (".gitignore", ".gitattributes"):
                ignore_files.append(path)
                if name == ".gitattributes":
                    attributes.append(path)
                continue
            if secret_folder or _secret_name(name.lower(), folder_parts):
                if allowed and _under(path, allowed):
                    reinclude.update(a for a in allowed if path == a or path.startswith(a + "/"))
                elif name.lower() in SECRET_KEPT_NAMES:
                    reinclude.add(path)
                else:
                    secrets.append(path)
        return _Folder(
            stamp,
            folders=tuple(subfolders),
            files=files,
            ignore_files=tuple(ignore_files),
            attributes=tuple(attributes),
            secrets=tuple(secrets),
            reinclude=tuple(sorted(reinclude)),
        )

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
