"""What snapshots leave out, and the step that stages the workspace honouring it.

Left out: secret files (:data:`SECRET_EXCLUDES`, as exclude pathspecs of every ``git add``, which
no rule of the workspace can undo, unless ``allow_secrets`` names them), the workspace's
``.gitignore`` rules (git reads them from the work tree), built-in patterns
(:data:`DEFAULT_EXCLUDES`: virtualenvs, ``node_modules``, build output, caches, secrets),
extra patterns given by the caller, the workspace's ``.git/info/exclude``, Git LFS patterns
(``filter=lfs`` in ``.gitattributes``), files over the size cap, nested repositories (a folder
holding ``.git``) and unreadable folders. A scan of the workspace (never following symlinks, never
entering pruned folders or nested repositories) finds the last four; they are written into the
shadow repository's ``info/exclude`` on every snapshot."""

from __future__ import annotations

import builtins
import contextlib
import fnmatch
import hashlib
import os
import re
import subprocess
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

    def _stage(self, *, spawn: bool = False, deadline: float | None) -> subprocess.Popen[bytes] | None:
        """``git add -u``: every tracked file brought up to the working tree (tracked files are
        never secret: staging never adds one, and :meth:`_untrack_excluded` drops any that an
        older Keepup or a withdrawn ``allow_secrets`` left); started and returned with ``spawn``,
        else run to the end. New files are :meth:`_stage_untracked`'s."""
        args = ["add", "-u"]
        if spawn:
            return self._spawn(args, stdin=False, deadline=deadline)
        self._git(args, deadline=deadline)
        return None

    def _stage_untracked(self, deadline: float | None) -> None:
        """Add the new files: those git lists as untracked and not ignored (the workspace's rules
        and the generated excludes), less every secret file, which is refused here by its path
        before git reads it, so no ignore rule of the workspace can bring one back.

        This replaces ``git add -A -- . <secret exclude pathspecs>``, which matched every path of
        the workspace against each secret pattern in git (3 to 6 times the cost of the add)."""
        out = self._git(["ls-files", "-z", "--others", "--exclude-standard"], deadline=deadline).stdout
        allowed = self._allow_secrets
        new: builtins.list[bytes] = []
        for raw in out.split(b"\x00"):
            if not raw:
                continue
            if raw.endswith(b"/"):  # a nested repository, which git lists as a folder
                if os.fsdecode(raw[:-1]) not in self._last_scan.nested_repositories:
                    # made after the scan: the caller scans again, to report and exclude it
                    raise StorageError(f"a nested repository appeared while staging: {raw!r:.200}")
                continue
            path = os.fsdecode(raw)
            if _is_secret(path) and not (allowed and _under(path, allowed)):
                continue
            new.append(raw)
        if new:
            self._git(
                ["update-index", "--add", "--remove", "-z", "--stdin"],
                stdin=b"\x00".join(new) + b"\x00",
                deadline=deadline,
            )

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
            add = self._stage(spawn=True, deadline=deadline)
        try:
            scan, fingerprint = self._scan(deadline)
        except BaseException:
            if add is not None:
                self._kill(add)
            raise
        if previous_scan is not None:
            appeared = sorted(set(scan.nested_repositories) - set(previous_scan.nested_repositories))
            if appeared:  # reported: their files leave later snapshots (the folder is never touched)
                self._telemetry.event(
                    "shadow_git.nested_repositories_appeared", workspace=str(self._root), paths=appeared
                )
        self._last_scan = scan
        self._scanned = True
        text = self._exclude_text(scan)
        marker = self._git_dir / "keepup-excludes.fingerprint"
        # "staging 2": repositories staged by ``add -A`` with secret pathspecs untrack once more
        digest = hashlib.sha256(
            b"staging 2\x00" + text.encode("utf-8", "surrogateescape") + fingerprint
        ).hexdigest()
        try:
            same_digest = marker.read_text() == digest
        except OSError:
            same_digest = False
        if text == previous_text:
            if add is None:
                if not same_digest:  # before ``add -u`` reads a tracked file that is now excluded
                    self._untrack_excluded(deadline)
                self._stage(deadline=deadline)
            else:
                self._wait(add, ["add", "-u"], deadline=deadline)
            self._stage_untracked(deadline)
            self._stage_allowed(deadline)
            if not same_digest:  # an ignore file changed: drop tracked files it now ignores
                self._untrack_excluded(deadline)
                _write_private(marker, digest.encode())
        else:
            if add is not None:
                grew = previous_scan is None or any(
                    not set(new) <= set(old)
                    for new, old in (
                        (scan.oversized, previous_scan.oversized),
                        (scan.lfs_patterns, previous_scan.lfs_patterns),
                        (scan.nested_repositories, previous_scan.nested_repositories),
                        (scan.unreadable, previous_scan.unreadable),
                    )
                )
                if grew:  # it may be hashing (or failing on) something now excluded: stop it
                    self._kill(add)
                else:
                    # its work is reused by the ``git add`` below, which decides; a failure here
                    # (a folder that changed meanwhile) is not the snapshot's failure
                    with contextlib.suppress(StorageError):
                        self._wait(add, ["add", "-u"], deadline=deadline)
            _private_dir(exclude.parent)
            _write_private(exclude, text.encode("utf-8", "surrogateescape"))
            self._untrack_excluded(deadline)
            self._stage(deadline=deadline)
            self._stage_untracked(deadline)
            self._stage_allowed(deadline)
            _write_private(marker, digest.encode())
        return self._write_tree(deadline)

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
        repositories; return what must be excluded and a fingerprint of the ignore files seen."""
        nested: builtins.list[str] = []
        oversized: builtins.list[str] = []
        unreadable: builtins.list[str] = []
        attributes: builtins.list[str] = []
        secrets: builtins.list[str] = []
        reinclude: set[str] = set()
        allowed = self._allow_secrets
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
            folder_parts = rel.lower().split("/") if rel else []
            secret_folder = _in_secret_folder(folder_parts)  # once per folder, not per file
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
                    if secret_folder or _secret_name(name.lower(), folder_parts):
                        if allowed and _under(path, allowed):
                            reinclude.update(a for a in allowed if path == a or path.startswith(a + "/"))
                        elif name.lower() in SECRET_KEPT_NAMES:
                            reinclude.add(path)
                        else:
                            secrets.append(path)
                            continue
                    if cap and entry.stat(follow_symlinks=False).st_size > cap:
                        oversized.append(path)
                except OSError:
                    continue
        lfs = self._lfs_patterns(attributes)
        nested.sort()
        oversized.sort()
        unreadable.sort()
        secrets.sort()
        self._reinclude = sorted(reinclude)
        return WorkspaceScan(
            tuple(nested), tuple(oversized), tuple(lfs), tuple(unreadable), files, tuple(secrets)
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
