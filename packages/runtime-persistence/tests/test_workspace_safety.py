"""Safety of shadow-git snapshots, with real git in temporary directories: the user's repository
is never touched, restores never delete what they cannot bring back, nested repositories and
symlinks are left alone, odd paths work, the caller's git environment changes nothing, and
protected folders are refused."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from runtime_core import StorageError, UnsafeWorkspaceError
from runtime_persistence.shadow_git.repository import ShadowGit, check_workspace


def _clean_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "User",
        "GIT_AUTHOR_EMAIL": "user@example.com",
        "GIT_COMMITTER_NAME": "User",
        "GIT_COMMITTER_EMAIL": "user@example.com",
    }


def user_git(repo: Path, *args: str) -> str:
    """The user's own git, run the way a person would (isolated from this machine's config)."""
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, check=True, text=True, env=_clean_env(repo.parent)
    ).stdout


def write(root: Path, rel: str, text: str = "x\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def fingerprint(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file, folder and link under ``folder``: mode and content hash (or link target)."""
    result: dict[str, tuple[int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(folder))
            st = path.lstat()
            if path.is_symlink():
                result[rel] = (st.st_mode, "link:" + os.readlink(path))
            elif path.is_file():
                result[rel] = (st.st_mode, hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                result[rel] = (st.st_mode, "dir")
    return result


def snapshot_paths(sg: ShadowGit, commit: str) -> set[str]:
    out = subprocess.run(
        ["git", f"--git-dir={sg.git_dir}", "ls-tree", "-r", "-z", "--name-only", commit],
        capture_output=True,
        check=True,
        env=_clean_env(Path(sg.git_dir).parent),
    ).stdout
    return {os.fsdecode(p) for p in out.split(b"\x00") if p}


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "keepup-state"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A workspace that is the user's own git repository, with a commit, a hook and config."""
    path = tmp_path / "project"
    path.mkdir()
    user_git(path, "init", "-q", "-b", "main")
    write(path, "README.md", "# project\n")
    write(path, "src/app.py", "print('hi')\n")
    write(path, ".gitignore", "*.log\n")
    user_git(path, "add", "-A")
    user_git(path, "commit", "-q", "-m", "initial")
    write(path, ".git/hooks/pre-commit", "#!/bin/sh\nexit 1\n").chmod(0o755)
    return path


@pytest.mark.slow
def test_the_users_git_dir_is_byte_identical_after_100_snapshots_and_restores(
    repo: Path, state: Path
) -> None:
    before = fingerprint(repo / ".git")
    sg = ShadowGit(repo, state_dir=state)
    commits: list[str] = []
    for i in range(100):
        write(repo, "src/app.py", f"print({i})\n")
        write(repo, f"notes/n{i % 7}.md", f"note {i}\n")
        if i % 10 == 9:
            report = sg.restore(commits[i // 2])
            assert report.rescue_commit is not None
        commit = sg.snapshot(f"step {i}")
        assert commit is not None
        commits.append(commit)
    assert fingerprint(repo / ".git") == before
    assert ".git/HEAD" not in snapshot_paths(sg, commits[-1])
    assert not any(p.startswith(".git/") for p in snapshot_paths(sg, commits[-1]))
    # and the user's repository still works as before
    assert user_git(repo, "log", "--format=%s") == "initial\n"


def test_ignored_files_are_never_deleted_by_a_restore(repo: Path, state: Path) -> None:
    sg = ShadowGit(repo, state_dir=state)
    checkpoint = sg.snapshot("checkpoint")
    assert checkpoint is not None
    write(repo, "debug.log", "ignored by .gitignore\n")
    write(repo, ".env", "SECRET=1\n")
    write(repo, "node_modules/lib/index.js", "built-in exclude\n")
    write(repo, "later.txt", "tracked, created after the checkpoint\n")
    dry = sg.restore(checkpoint, dry_run=True)
    assert dry.removed == ("later.txt",)
    report = sg.restore(checkpoint)
    assert report.removed == ("later.txt",)
    assert (repo / "debug.log").read_text() == "ignored by .gitignore\n"
    assert (repo / ".env").read_text() == "SECRET=1\n"
    assert (repo / "node_modules/lib/index.js").exists()


def test_a_file_tracked_then_ignored_is_skipped_not_overwritten(repo: Path, state: Path) -> None:
    sg = ShadowGit(repo, state_dir=state)
    write(repo, "data.csv", "old tracked content\n")
    checkpoint = sg.snapshot()
    assert checkpoint is not None
    write(repo, ".gitignore", "*.log\ndata.csv\n")
    write(repo, "data.csv", "precious new content the snapshots no longer hold\n")
    report = sg.restore(checkpoint)
    assert "data.csv" in report.skipped
    assert (repo / "data.csv").read_text() == "precious new content the snapshots no longer hold\n"
    assert (repo / ".gitignore").read_text() == "*.log\n"


def test_a_file_created_after_a_checkpoint_is_removed_and_can_be_brought_back(
    repo: Path, state: Path
) -> None:
    sg = ShadowGit(repo, state_dir=state)
    checkpoint = sg.snapshot("checkpoint")
    assert checkpoint is not None
    write(repo, "src/new_module.py", "important work\n")
    report = sg.restore(checkpoint)
    assert not (repo / "src/new_module.py").exists()
    assert report.rescue_commit is not None
    back = sg.restore(report.rescue_commit, paths=["src/new_module.py"])
    assert back.created == ("src/new_module.py",)
    assert (repo / "src/new_module.py").read_text() == "important work\n"


def test_nested_repositories_of_both_forms_are_excluded_reported_and_untouched(
    repo: Path, state: Path, tmp_path: Path
) -> None:
    inner = repo / "vendor" / "lib"
    inner.mkdir(parents=True)
    user_git(inner, "init", "-q")
    write(inner, "lib.py", "inner repo file\n")
    user_git(inner, "add", "-A")
    user_git(inner, "commit", "-q", "-m", "inner")
    worktree = repo / "wt"
    write(worktree, "feature.py", "a linked worktree's file\n")
    write(worktree, ".git", f"gitdir: {tmp_path / 'elsewhere' / '.git' / 'worktrees' / 'wt'}\n")
    inner_before = fingerprint(inner / ".git")
    sg = ShadowGit(repo, state_dir=state)
    first = sg.snapshot()
    assert first is not None
    paths = snapshot_paths(sg, first)
    assert not any(p.startswith(("vendor/lib", "wt")) for p in paths)
    assert sg.last_scan.nested_repositories == ("vendor/lib", "wt")
    # the nested repositories survive a restore to before they had more files, untouched
    write(inner, "more.py", "more\n")
    write(worktree, "more.py", "more\n")
    sg.restore(first)
    assert (inner / "more.py").exists() and (worktree / "more.py").exists()
    assert (worktree / ".git").read_text().startswith("gitdir: ")
    assert fingerprint(inner / ".git") == inner_before


def test_a_folder_that_becomes_a_repository_is_dropped_from_later_snapshots(repo: Path, state: Path) -> None:
    sg = ShadowGit(repo, state_dir=state)
    write(repo, "plugin/code.py", "tracked while a plain folder\n")
    before = sg.snapshot()
    assert before is not None and "plugin/code.py" in snapshot_paths(sg, before)
    user_git(repo / "plugin", "init", "-q")
    after = sg.snapshot()
    assert after is not None
    assert not any(p.startswith("plugin") for p in snapshot_paths(sg, after))
    assert (repo / "plugin/code.py").exists()


def test_symlinks_are_stored_as_links_and_never_followed_out(repo: Path, state: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside, "secret.txt", "outside the workspace\n")
    outside_before = fingerprint(outside)
    (repo / "to-outside").symlink_to(outside)
    (repo / "to-file").symlink_to(outside / "secret.txt")
    sg = ShadowGit(repo, state_dir=state)
    write(repo, "d/f.txt", "in a real folder\n")
    a = sg.snapshot()
    assert a is not None
    paths = snapshot_paths(sg, a)
    assert {"to-outside", "to-file"} <= paths
    assert not any(p.startswith("to-outside/") for p in paths)
    # replace a real folder by a link that points outside; restoring the folder must not write there
    (repo / "d" / "f.txt").unlink()
    (repo / "d").rmdir()
    (repo / "d").symlink_to(outside)
    write(repo, "to-file-target-changed.txt", "x")
    sg.restore(a)
    assert (repo / "d").is_dir() and not (repo / "d").is_symlink()
    assert (repo / "d" / "f.txt").read_text() == "in a real folder\n"
    assert fingerprint(outside) == outside_before
    assert os.readlink(repo / "to-outside") == str(outside)


def test_an_untracked_link_in_the_way_is_skipped_not_followed(
    repo: Path, state: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside2"
    outside.mkdir()
    sg = ShadowGit(repo, state_dir=state)
    write(repo, "cache/data.txt", "tracked\n")
    a = sg.snapshot()
    assert a is not None
    (repo / "cache" / "data.txt").unlink()
    (repo / "cache").rmdir()
    write(repo, ".gitignore", "*.log\ncache\n")
    (repo / "cache").symlink_to(outside)
    report = sg.restore(a, paths=["cache"])
    assert report.skipped == ("cache/data.txt",)
    assert list(outside.iterdir()) == []
    assert (repo / "cache").is_symlink()


@pytest.mark.parametrize(
    "name",
    [
        "with space.txt",
        "naïve 文件.md",
        "quote\"and'apostrophe.txt",
        "-rf",
        "--force",
        "tab\there.txt",
        "star*[x]?.txt",
    ],
)
def test_paths_with_spaces_unicode_and_odd_characters(repo: Path, state: Path, name: str) -> None:
    sg = ShadowGit(repo, state_dir=state, max_file_size=100)
    rel = f"dir with space/{name}"
    write(repo, rel, "v1\n")
    a = sg.snapshot()
    assert a is not None and rel in snapshot_paths(sg, a)
    write(repo, rel, "v2\n")
    assert [c.path for c in sg.diff(a)] == [rel]
    sg.restore(a, paths=[rel])
    assert (repo / rel).read_text() == "v1\n"
    write(repo, rel, "x" * 500)  # now over the size cap: excluded by an escaped pattern
    b = sg.snapshot()
    assert b is not None and rel not in snapshot_paths(sg, b)
    assert sg.last_scan.oversized == (rel,)


def test_the_callers_git_environment_changes_nothing(
    repo: Path, state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = fingerprint(repo / ".git")
    other = tmp_path / "other-work-tree"
    other.mkdir()
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    monkeypatch.setenv("GIT_INDEX_FILE", str(repo / ".git" / "index"))
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(repo / ".git" / "objects"))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'core.hooksPath'='/nonexistent'")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Intruder")
    sg = ShadowGit(repo, state_dir=state)
    write(repo, "src/app.py", "changed\n")
    commit = sg.snapshot("with a hostile environment")
    assert commit is not None
    assert "src/app.py" in snapshot_paths(sg, commit)
    write(repo, "src/app.py", "changed again\n")
    sg.restore(commit)
    assert (repo / "src/app.py").read_text() == "changed\n"
    assert list(other.iterdir()) == []
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_WORK_TREE")
    monkeypatch.delenv("GIT_INDEX_FILE")
    monkeypatch.delenv("GIT_OBJECT_DIRECTORY")
    assert fingerprint(repo / ".git") == before
    author = subprocess.run(
        ["git", f"--git-dir={sg.git_dir}", "log", "-1", "--format=%an", commit],
        capture_output=True,
        text=True,
        check=True,
        env=_clean_env(tmp_path),
    ).stdout.strip()
    assert author == "Keepup"


def test_the_home_directory_and_system_folders_are_refused(
    tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_home = tmp_path / "home" / "someone"
    fake_home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(fake_home))
    for refused in (fake_home, tmp_path / "home", Path("/"), Path("/etc"), Path("/usr/lib"), Path("/tmp")):
        with pytest.raises(UnsafeWorkspaceError):
            ShadowGit(refused, state_dir=state)
    real_home = Path(os.path.expanduser("~" + os.environ.get("USER", ""))) if os.environ.get("USER") else None
    if real_home is not None and real_home.is_dir():
        with pytest.raises(UnsafeWorkspaceError):
            check_workspace(real_home)
    project = fake_home / "project"
    project.mkdir()
    assert check_workspace(project) == project.resolve()


def test_a_symlink_to_the_home_directory_is_refused(
    tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_home = tmp_path / "h"
    fake_home.mkdir()
    monkeypatch.setenv("HOME", str(fake_home))
    (tmp_path / "innocent-name").symlink_to(fake_home)
    with pytest.raises(UnsafeWorkspaceError):
        ShadowGit(tmp_path / "innocent-name", state_dir=state)


@pytest.mark.parametrize("where", ["new-empty-folder", "existing-folder", "gitdir-file"])
def test_a_repository_appearing_between_snapshots_is_excluded_reported_and_snapshots_go_on(
    repo: Path, state: Path, tmp_path: Path, where: str
) -> None:
    """Issue 11, hole 9: one ``git init`` in a subfolder between two snapshots made every later
    snapshot of the process fail (``git add`` refuses a repository without a commit). It must be
    left out, reported in ``last_scan``, and snapshots (and restores) must keep working."""
    sg = ShadowGit(repo, state_dir=state)
    write(repo, "plugin/code.py", "tracked while a plain folder\n")
    first = sg.snapshot()
    assert first is not None
    if where == "new-empty-folder":
        (repo / "fresh").mkdir()
        user_git(repo / "fresh", "init", "-q")
        nested = "fresh"
    elif where == "existing-folder":
        user_git(repo / "plugin", "init", "-q")
        nested = "plugin"
    else:  # a linked worktree or submodule: ``.git`` is a file holding a gitdir pointer
        write(repo, "linked/feature.py", "a worktree's file\n")
        write(repo, "linked/.git", f"gitdir: {tmp_path / 'elsewhere' / '.git' / 'worktrees' / 'linked'}\n")
        nested = "linked"
    for i in range(3):
        write(repo, f"work/step{i}.txt", f"{i}\n")
        commit = sg.snapshot(f"step {i}")
        assert commit is not None
        assert f"work/step{i}.txt" in snapshot_paths(sg, commit)
        assert not any(p == nested or p.startswith(nested + "/") for p in snapshot_paths(sg, commit))
        assert nested in sg.last_scan.nested_repositories
    report = sg.restore(first)
    assert report.rescue_commit is not None
    assert not (repo / "work").exists()
    assert (repo / nested).is_dir()


@pytest.mark.parametrize("depth", ["folder", "subfolder"])
def test_a_folder_swapped_for_a_symlink_between_plan_and_delete_is_not_followed(
    repo: Path, state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, depth: str
) -> None:
    """Issue 11, hole 4: restore plans (checking that every folder is real), then deletes. A folder
    swapped for a symlink to an outside folder in between must not lead the delete (or the pruning
    of emptied folders) outside: the outside folder stays byte for byte the same."""
    sg = ShadowGit(repo, state_dir=state)
    write(repo, "d/keep.txt", "v1\n")
    target = sg.snapshot("checkpoint")
    assert target is not None
    write(repo, "d/keep.txt", "v2\n")
    write(repo, "d/e/new.txt", "made after the checkpoint\n")
    write(repo, "d/e/f/deeper.txt", "made after the checkpoint\n")
    outside = tmp_path / "outside"
    write(outside, "keep.txt", "outside\n")
    write(outside, "e/new.txt", "outside, must survive\n")
    write(outside, "e/f/deeper.txt", "outside, must survive\n")
    (outside / "e" / "f" / "empty").mkdir()
    swapped = repo / ("d" if depth == "folder" else "d/e")
    link_to = outside if depth == "folder" else outside / "e"
    before = fingerprint(outside)
    plan = sg._plan

    def plan_then_swap(*args: object, **kwargs: object) -> object:
        result = plan(*args, **kwargs)  # type: ignore[arg-type]
        swapped.rename(swapped.with_name(swapped.name + "-moved"))
        swapped.symlink_to(link_to)
        return result

    monkeypatch.setattr(sg, "_plan", plan_then_swap)
    report = sg.restore(target)
    assert fingerprint(outside) == before
    assert "d/e/new.txt" not in report.removed and "d/e/new.txt" in report.skipped
    assert report.rescue_commit is not None
    if depth == "folder":  # the write step does not follow (nor replace) the link either
        assert "d/keep.txt" in report.skipped and "d/keep.txt" not in report.changed
        assert (repo / "d").is_symlink()


def _readable_by_others(folder: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            st = path.lstat()
            if not path.is_symlink() and st.st_mode & 0o077:
                found.append(f"{path.relative_to(folder)} {oct(st.st_mode & 0o777)}")
    if Path(folder).stat().st_mode & 0o077:
        found.append(f". {oct(folder.stat().st_mode & 0o777)}")
    return found


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_the_shadow_repository_is_private(repo: Path, state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11, hole 7 (shadow part): objects were 0444 even when the workspace file was 0600,
    and the shadow directory was readable by other users. Whatever the umask, nothing under the
    shadow directory may be group- or other-accessible after snapshots, a restore and gc."""
    old = os.umask(0o022)
    try:
        write(repo, "secret-notes.txt", "private\n").chmod(0o600)
        sg = ShadowGit(repo, state_dir=state)
        first = sg.snapshot()
        assert first is not None
        write(repo, "secret-notes.txt", "private, v2\n")
        assert sg.snapshot() is not None
        sg.restore(first)
        sg.gc()
        shadow = Path(sg.git_dir).parent
        assert _readable_by_others(shadow) == []
        assert _readable_by_others(state / "shadow") == []
    finally:
        os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_an_existing_shadow_repository_is_made_private_at_set_up(repo: Path, state: Path) -> None:
    old = os.umask(0o022)
    try:
        sg = ShadowGit(repo, state_dir=state)
        assert sg.snapshot() is not None
        shadow = Path(sg.git_dir).parent
        for dirpath, dirnames, filenames in os.walk(shadow):  # as an older Keepup left it
            for name in dirnames:
                (Path(dirpath) / name).chmod(0o755)
            for name in filenames:
                (Path(dirpath) / name).chmod(0o644)
        shadow.chmod(0o755)
        again = ShadowGit(repo, state_dir=state)
        write(repo, "more.txt", "more\n")
        assert again.snapshot() is not None
        assert _readable_by_others(shadow) == []
    finally:
        os.umask(old)


CREDENTIAL_FILES = (
    ".env",
    ".env.local",
    ".env.production",
    "app/.env",
    "app/.ENV.development",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    ".pgpass",
    ".my.cnf",
    ".netrc",
    "_netrc",
    ".htpasswd",
    ".kube/config",
    "ops/.kube/prod.yaml",
    ".docker/config.json",
    ".dockercfg",
    ".aws/credentials",
    ".aws/config",
    ".ssh/id_rsa",
    ".ssh/config",
    "keys/id_rsa",
    "keys/id_ed25519",
    "keys/id_ecdsa.pub",
    ".gnupg/secring.gpg",
    ".azure/accessTokens.json",
    ".config/gcloud/application_default_credentials.json",
    "gcp/application_default_credentials.json",
    ".config/gcloud/credentials.db",
    ".config/gh/hosts.yml",
    "credentials.json",
    "client_secret_1234.apps.googleusercontent.com.json",
    "infra/terraform.tfstate",
    "infra/terraform.tfstate.backup",
    "infra/prod.tfvars",
    ".terraformrc",
    ".vault-token",
    ".boto",
    ".s3cfg",
    "tls/server.pem",
    "tls/server.key",
    "tls/client.p12",
    "tls/client.pfx",
    "android/release.jks",
    "android/release.keystore",
    "putty/me.ppk",
    "vault.kdbx",
    "secrets.yaml",
    "config/secrets.json",
    ".secrets",
)


def _negate_everything(repo: Path) -> None:
    """Workspace rules that try to bring every secret back, in both places a workspace controls."""
    rules = ["*.log", "!*", "!**/*", "!.*", "!**/.*", "!.env", "!.ssh/", "!.aws/", "!*.pem"]
    rules += ["!/" + p for p in CREDENTIAL_FILES]
    write(repo, ".gitignore", "\n".join(rules) + "\n")
    write(repo, ".git/info/exclude", "!.env\n!.env.*\n!*.key\n!.kube/\n")


def test_credential_files_stay_out_of_snapshots_whatever_the_workspace_rules_say(
    repo: Path, state: Path
) -> None:
    """Issue 11, hole 8: a ``!.env`` line in the workspace's .gitignore or .git/info/exclude
    brought secrets back, and most common credential files passed the defaults. Built-in secret
    excludes are applied after the workspace's rules: no rule of the workspace can negate them."""
    for rel in CREDENTIAL_FILES:
        write(repo, rel, f"secret in {rel}\n")
    write(repo, ".env.example", "TOKEN=\n")
    write(repo, "src/keys.py", "not a key file\n")
    _negate_everything(repo)
    sg = ShadowGit(repo, state_dir=state)
    commit = sg.snapshot()
    assert commit is not None
    paths = snapshot_paths(sg, commit)
    leaked = sorted(set(CREDENTIAL_FILES) & paths)
    assert leaked == [], f"{len(leaked)} of {len(CREDENTIAL_FILES)} credential files leaked: {leaked}"
    assert {".env.example", "src/keys.py", "src/app.py", ".gitignore"} <= paths
    assert set(sg.last_scan.secrets) == set(CREDENTIAL_FILES)
    # a later snapshot (the early ``git add`` path) and a working-tree diff leave them out too
    write(repo, ".env", "changed secret\n")
    write(repo, "src/app.py", "print('changed')\n")
    later = sg.snapshot()
    assert later is not None
    assert not set(CREDENTIAL_FILES) & snapshot_paths(sg, later)
    assert not {c.path for c in sg.diff(later)} & set(CREDENTIAL_FILES)


def test_snapshotting_a_secret_path_needs_an_explicit_opt_in(repo: Path, state: Path) -> None:
    write(repo, "config/.env", "DEBUG=1\n")
    write(repo, ".env", "TOKEN=secret\n")
    write(repo, "deploy/.ssh/known_hosts", "host key\n")
    _negate_everything(repo)
    allowed = ShadowGit(repo, state_dir=state, allow_secrets=["config/.env", "deploy/.ssh"])
    commit = allowed.snapshot()
    assert commit is not None
    paths = snapshot_paths(allowed, commit)
    assert {"config/.env", "deploy/.ssh/known_hosts"} <= paths
    assert ".env" not in paths
    assert allowed.last_scan.secrets == (".env",)
    # without the opt-in, the next snapshot drops them again
    plain = ShadowGit(repo, state_dir=state)
    write(repo, "src/app.py", "print('changed')\n")
    later = plain.snapshot()
    assert later is not None
    assert not {"config/.env", "deploy/.ssh/known_hosts", ".env"} & snapshot_paths(plain, later)
    with pytest.raises(UnsafeWorkspaceError):
        ShadowGit(repo, state_dir=state, allow_secrets=["../outside/.env"])


@pytest.mark.parametrize("first", [True, False], ids=["first-snapshot", "later-snapshot"])
def test_a_repository_made_between_the_scan_and_git_add_is_excluded_on_a_second_pass(
    repo: Path, state: Path, monkeypatch: pytest.MonkeyPatch, first: bool
) -> None:
    """Hole 9, the race: ``git init`` right after the scan (so the excludes miss it) makes
    ``git add`` fail; the snapshot scans again and succeeds without the new repository."""
    sg = ShadowGit(repo, state_dir=state)
    if not first:
        assert sg.snapshot() is not None
    write(repo, "fresh/readme.txt", "soon a nested repository\n")
    scan = sg._scan
    calls = 0

    def scan_then_init(deadline: float | None) -> object:
        nonlocal calls
        calls += 1
        result = scan(deadline)
        if calls == 1:
            user_git(repo / "fresh", "init", "-q")
        return result

    monkeypatch.setattr(sg, "_scan", scan_then_init)
    commit = sg.snapshot()
    assert commit is not None or not first  # later: nothing else changed, and fresh/ is left out
    # the folder was a repository when the new files were listed: it is left out at once
    assert not any(p.startswith("fresh") for p in snapshot_paths(sg, commit or sg.head() or ""))
    assert sg.last_scan.nested_repositories == ("fresh",)
    write(repo, "src/app.py", "print('next')\n")
    after = sg.snapshot()
    assert after is not None
    assert not any(p.startswith("fresh") for p in snapshot_paths(sg, after))
    assert sg.last_scan.nested_repositories == ("fresh",)


def test_a_write_the_file_system_refuses_is_a_storage_error_naming_the_rescue(
    repo: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The descriptor-relative writes report a refused write like git's did: StorageError,
    with the rescue snapshot that holds the workspace as it was (an OSError is injected: the
    tests run as root, where modes refuse nothing)."""
    from runtime_persistence.shadow_git import restore as restore_module

    sg = ShadowGit(repo, state_dir=state)
    write(repo, "locked/file.txt", "v1\n")
    target = sg.snapshot()
    assert target is not None
    write(repo, "locked/file.txt", "v2\n")

    def refuse(*args: object, **kwargs: object) -> bool:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(restore_module, "write_entry", refuse)
    with pytest.raises(StorageError, match="partly restored"):
        sg.restore(target)
