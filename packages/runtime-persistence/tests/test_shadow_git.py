"""Shadow-git snapshots with real git in temporary directories: snapshot, list, diff, restore,
excludes, retention refs, telemetry and the time budget. Tests on the ``sg`` fixture run twice: on
``ShadowGit`` and on ``AsyncShadowGit`` (through the blocking test proxy)."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from runtime_core import (
    BudgetExceededError,
    FileStatus,
    NotFoundError,
    StorageError,
    UnsafeWorkspaceError,
    ValidationError,
    WorkspaceSnapshots,
)
from runtime_persistence.shadow_git import AsyncShadowGit
from runtime_persistence.shadow_git.repository import ShadowGit, shadow_git_dir
from runtime_persistence.testing import Portal, blocking
from runtime_telemetry import StructuredTelemetry


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    return path


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture(params=["sync", "async"])
def sg(request: pytest.FixtureRequest, ws: Path, state: Path) -> Iterator[ShadowGit]:
    """A ShadowGit, or (``async``) an AsyncShadowGit behind the blocking test proxy, on a loop in
    debug mode that fails the test when an operation blocks it."""
    if request.param == "sync":
        yield ShadowGit(ws, state_dir=state)
        return
    portal = Portal()
    try:
        yield blocking(portal.call(AsyncShadowGit.open(ws, state_dir=state)), portal)
        if portal.slow_callbacks:
            pytest.fail(f"AsyncShadowGit blocked the event loop: {portal.slow_callbacks[:3]}")
    finally:
        portal.close()


def write(root: Path, rel: str, text: str = "x\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def tree_files(sg: ShadowGit, commit: str) -> dict[str, str]:
    """path -> mode of every entry of a snapshot (read with plain git, outside the class)."""
    out = subprocess.run(
        ["git", f"--git-dir={sg.git_dir}", "ls-tree", "-r", "-z", commit],
        capture_output=True,
        check=True,
        env={"PATH": os.environ["PATH"], "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(Path(sg.git_dir).parent)},
    ).stdout
    result = {}
    for record in out.split(b"\x00"):
        if record:
            meta, _, path = record.partition(b"\t")
            result[os.fsdecode(path)] = meta.split()[0].decode()
    return result


# -- snapshots -------------------------------------------------------------------------------------


def test_shadow_git_implements_the_core_protocol(sg: ShadowGit) -> None:
    assert isinstance(sg, WorkspaceSnapshots)


def test_snapshot_returns_a_commit_then_none_when_nothing_changed(sg: ShadowGit, ws: Path) -> None:
    write(ws, "a.txt", "one\n")
    first = sg.snapshot("first")
    assert first is not None and len(first) == 40
    assert sg.snapshot("again") is None
    write(ws, "a.txt", "two\n")
    second = sg.snapshot("second")
    assert second is not None and second != first
    assert sg.head() == second


def test_list_is_newest_first_with_messages_and_file_counts(sg: ShadowGit, ws: Path) -> None:
    write(ws, "a.txt")
    a = sg.snapshot("one file")
    write(ws, "b.txt")
    b = sg.snapshot("two files\n\nwith a body")
    assert a is not None and b is not None
    infos = sg.list()
    assert [i.commit for i in infos] == [b, a]
    assert infos[0].message == "two files\n\nwith a body"
    assert (infos[0].files, infos[1].files) == (2, 1)
    assert [i.commit for i in sg.list(limit=1)] == [b]
    assert sg.info(a[:10]).message == "one file"


def test_the_git_dir_is_in_the_state_dir_and_shared_by_instances(ws: Path, state: Path) -> None:
    first = ShadowGit(ws, state_dir=state)
    second = ShadowGit(str(ws) + "/", state_dir=state)
    assert first.git_dir == second.git_dir
    assert Path(first.git_dir).is_relative_to(state / "shadow")
    assert Path(first.git_dir).parent == shadow_git_dir(ws, state)
    write(ws, "a.txt")
    commit = first.snapshot("from the first")
    assert [i.commit for i in second.list()] == [commit]
    assert second.snapshot() is None


def test_keepup_home_env_chooses_the_state_dir(
    ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEPUP_HOME", str(tmp_path / "home-env"))
    sg = ShadowGit(ws)
    assert Path(sg.git_dir).is_relative_to(tmp_path / "home-env" / "shadow")


def test_state_dir_inside_the_workspace_is_refused(ws: Path) -> None:
    with pytest.raises(UnsafeWorkspaceError):
        ShadowGit(ws, state_dir=ws / ".keepup")


def test_concurrent_snapshots_from_threads_and_instances_all_succeed(ws: Path, state: Path) -> None:
    instances = [ShadowGit(ws, state_dir=state) for _ in range(3)]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(4):
                write(ws, f"t{i}/f{j}.txt", f"{i}-{j}")
                instances[i].snapshot(f"thread {i} step {j}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    final = instances[0].snapshot("final")
    head = final or instances[0].head()
    assert head is not None
    assert len([p for p in tree_files(instances[0], head) if p.startswith("t")]) == 12


def test_bad_messages_are_refused(sg: ShadowGit) -> None:
    with pytest.raises(ValidationError):
        sg.snapshot("nul\x00inside")
    with pytest.raises(ValidationError):
        sg.snapshot("x" * 20_000)


# -- diff ------------------------------------------------------------------------------------------


def test_diff_between_snapshots_reports_each_status(sg: ShadowGit, ws: Path) -> None:
    write(ws, "keep.txt", "same\n")
    write(ws, "modify.txt", "before\n")
    write(ws, "delete.txt", "gone soon\n")
    write(ws, "rename-me.txt", "a long enough body to be recognised as a rename\n" * 5)
    write(ws, "link-or-file", "a file first\n")
    a = sg.snapshot("a")
    assert a is not None
    write(ws, "modify.txt", "after\n")
    (ws / "delete.txt").unlink()
    (ws / "rename-me.txt").rename(ws / "renamed.txt")
    write(ws, "added.txt", "new\n")
    (ws / "link-or-file").unlink()
    (ws / "link-or-file").symlink_to("keep.txt")
    b = sg.snapshot("b")
    assert b is not None
    changes = {c.path: c for c in sg.diff(a, b)}
    assert changes["modify.txt"].status is FileStatus.MODIFIED
    assert changes["delete.txt"].status is FileStatus.DELETED
    assert changes["added.txt"].status is FileStatus.ADDED
    assert changes["renamed.txt"].status is FileStatus.RENAMED
    assert changes["renamed.txt"].old_path == "rename-me.txt"
    assert changes["link-or-file"].status is FileStatus.TYPE_CHANGED
    assert "keep.txt" not in changes
    assert all(c.patch is None for c in changes.values())


def test_diff_with_content_gives_each_file_its_own_patch(sg: ShadowGit, ws: Path) -> None:
    write(ws, "a.txt", "one\n")
    write(ws, "t", "file\n")
    a = sg.snapshot()
    assert a is not None
    write(ws, "a.txt", "two\n")
    (ws / "t").unlink()
    (ws / "t").symlink_to("a.txt")
    write(ws, "b.txt", "bee\n")
    changes = {c.path: c for c in sg.diff(a, None, content=True)}
    assert set(changes) == {"a.txt", "b.txt", "t"}
    assert "-one" in (changes["a.txt"].patch or "") and "+two" in (changes["a.txt"].patch or "")
    assert "+bee" in (changes["b.txt"].patch or "")
    assert "b.txt" not in (changes["a.txt"].patch or "")
    assert (changes["t"].patch or "").count("diff --git") == 2


def test_diff_against_the_working_tree_commits_nothing(sg: ShadowGit, ws: Path) -> None:
    write(ws, "a.txt", "one\n")
    a = sg.snapshot()
    assert a is not None
    write(ws, "a.txt", "two\n")
    write(ws, "node_modules/pkg/index.js", "ignored by the built-in patterns")
    changes = sg.diff(a)
    assert [(c.path, c.status) for c in changes] == [("a.txt", FileStatus.MODIFIED)]
    assert sg.head() == a
    assert len(sg.list()) == 1


def test_unknown_or_malformed_commits_are_refused(sg: ShadowGit, ws: Path) -> None:
    write(ws, "a.txt")
    sg.snapshot()
    with pytest.raises(NotFoundError):
        sg.diff("0123456789abcdef0123456789abcdef01234567")
    with pytest.raises(ValidationError):
        sg.diff("--output=/tmp/pwned")
    with pytest.raises(ValidationError):
        sg.restore("HEAD~1")


# -- restore ---------------------------------------------------------------------------------------


def test_restore_brings_back_content_removes_later_files_and_reports(sg: ShadowGit, ws: Path) -> None:
    write(ws, "a.txt", "original\n")
    write(ws, "dir/b.txt", "bee\n")
    a = sg.snapshot("a")
    assert a is not None
    write(ws, "a.txt", "edited\n")
    (ws / "dir" / "b.txt").unlink()
    (ws / "dir").rmdir()
    write(ws, "new/c.txt", "created later\n")
    report = sg.restore(a)
    assert (ws / "a.txt").read_text() == "original\n"
    assert (ws / "dir" / "b.txt").read_text() == "bee\n"
    assert not (ws / "new").exists()
    assert report.changed == ("a.txt",)
    assert report.created == ("dir/b.txt",)
    assert report.removed == ("new/c.txt",)
    assert report.rescue_commit is not None and report.rescue_commit != a
    assert report.skipped == ()


def test_restore_dry_run_lists_everything_and_changes_nothing(sg: ShadowGit, ws: Path) -> None:
    write(ws, "a.txt", "original\n")
    write(ws, "gone.txt", "will be deleted\n")
    a = sg.snapshot()
    assert a is not None
    write(ws, "a.txt", "edited\n")
    (ws / "gone.txt").unlink()
    write(ws, "later.txt", "later\n")
    snapshots_before = sg.list()
    report = sg.restore(a, dry_run=True)
    assert report.dry_run
    assert report.rescue_commit is None
    assert (report.changed, report.created, report.removed) == (("a.txt",), ("gone.txt",), ("later.txt",))
    assert (ws / "a.txt").read_text() == "edited\n"
    assert (ws / "later.txt").exists() and not (ws / "gone.txt").exists()
    assert sg.list() == snapshots_before


def test_restore_of_selected_paths_leaves_the_rest(sg: ShadowGit, ws: Path) -> None:
    write(ws, "src/a.py", "a1\n")
    write(ws, "src/b.py", "b1\n")
    write(ws, "docs/x.md", "x1\n")
    a = sg.snapshot()
    assert a is not None
    for rel in ("src/a.py", "src/b.py", "docs/x.md"):
        write(ws, rel, "changed\n")
    report = sg.restore(a, paths=["src/a.py", str(ws / "docs")])
    assert (ws / "src/a.py").read_text() == "a1\n"
    assert (ws / "docs/x.md").read_text() == "x1\n"
    assert (ws / "src/b.py").read_text() == "changed\n"
    assert set(report.changed) == {"src/a.py", "docs/x.md"}
    with pytest.raises(UnsafeWorkspaceError):
        sg.restore(a, paths=["../outside.txt"])
    with pytest.raises(UnsafeWorkspaceError):
        sg.restore(a, paths=["/etc/passwd"])


def test_restore_keeps_modes_and_symlinks(sg: ShadowGit, ws: Path) -> None:
    script = write(ws, "run.sh", "#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    (ws / "link").symlink_to("run.sh")
    a = sg.snapshot()
    assert a is not None
    script.chmod(0o644)
    (ws / "link").unlink()
    write(ws, "link", "now a file")
    sg.restore(a)
    assert os.access(ws / "run.sh", os.X_OK)
    assert (ws / "link").is_symlink() and os.readlink(ws / "link") == "run.sh"


def test_restore_when_nothing_differs_changes_nothing(sg: ShadowGit, ws: Path) -> None:
    write(ws, "a.txt")
    a = sg.snapshot()
    assert a is not None
    report = sg.restore(a)
    assert (report.changed, report.created, report.removed, report.rescue_commit) == ((), (), (), None)


# -- excludes --------------------------------------------------------------------------------------


def test_builtin_excludes_gitignore_and_extra_patterns(ws: Path, state: Path) -> None:
    sg = ShadowGit(ws, state_dir=state, extra_excludes=["*.tmp"])
    write(ws, "src/main.py")
    write(ws, ".gitignore", "logs/\n")
    write(ws, "logs/run.log")
    for rel in (
        "node_modules/x/index.js",
        ".venv/bin/python",
        "src/__pycache__/main.cpython-311.pyc",
        ".env",
        ".env.local",
        "secrets/server.pem",
        "build/out.o",
        ".pytest_cache/v/cache",
        "scratch.tmp",
    ):
        write(ws, rel)
    write(ws, ".env.example", "FOO=")
    commit = sg.snapshot()
    assert commit is not None
    assert set(tree_files(sg, commit)) == {"src/main.py", ".gitignore", ".env.example"}


def test_lfs_patterns_are_excluded(sg: ShadowGit, ws: Path) -> None:
    write(ws, ".gitattributes", "*.psd filter=lfs diff=lfs merge=lfs -text\n*.txt text\n")
    write(ws, "assets/.gitattributes", "models/*.bin filter=lfs -text\n")
    write(ws, "design.psd", "pretend LFS content")
    write(ws, "assets/models/weights.bin", "pretend LFS content")
    write(ws, "assets/other.bin", "kept")
    write(ws, "notes.txt", "kept")
    commit = sg.snapshot()
    assert commit is not None
    files = set(tree_files(sg, commit))
    assert files == {".gitattributes", "assets/.gitattributes", "assets/other.bin", "notes.txt"}
    assert "*.psd" in sg.last_scan.lfs_patterns


def test_files_over_the_size_cap_are_excluded_and_untracked_when_they_grow(ws: Path, state: Path) -> None:
    sg = ShadowGit(ws, state_dir=state, max_file_size=1000)
    write(ws, "small.txt", "s" * 10)
    write(ws, "grows.txt", "g" * 10)
    write(ws, "big.bin", "b" * 5000)
    first = sg.snapshot()
    assert first is not None
    assert set(tree_files(sg, first)) == {"small.txt", "grows.txt"}
    assert sg.last_scan.oversized == ("big.bin",)
    write(ws, "grows.txt", "g" * 5000)
    second = sg.snapshot()
    assert second is not None
    assert set(tree_files(sg, second)) == {"small.txt"}
    assert (ws / "grows.txt").stat().st_size == 5000


def test_git_lfs_and_attribute_conversions_do_not_change_bytes(sg: ShadowGit, ws: Path) -> None:
    write(ws, ".gitattributes", "* text=auto eol=crlf\n")
    (ws / "unix.txt").write_bytes(b"line one\nline two\n")
    a = sg.snapshot()
    assert a is not None
    (ws / "unix.txt").write_bytes(b"changed\n")
    sg.restore(a)
    assert (ws / "unix.txt").read_bytes() == b"line one\nline two\n"


# -- retention -------------------------------------------------------------------------------------


def test_keep_release_prune_and_gc(sg: ShadowGit, ws: Path) -> None:
    commits = []
    for i in range(4):
        write(ws, "a.txt", f"v{i}\n")
        commit = sg.snapshot(f"v{i}")
        assert commit is not None
        commits.append(commit)
    sg.keep(commits[0], "checkpoint-0")
    sg.keep(commits[1], "checkpoint-1")
    assert sg.kept() == {"checkpoint-0": commits[0], "checkpoint-1": commits[1]}

    dropped = sg.prune(keep_last=0, dry_run=True)
    assert dropped == [commits[2]]  # not the kept ones, not the newest
    assert sg.prune(keep_last=0) == [commits[2]]
    sg.release("checkpoint-1")
    sg.release("never-kept")  # nothing to do
    sg.gc()

    assert sg.info(commits[0]).message == "v0"  # still kept
    assert sg.info(commits[3]).message == "v3"  # the newest
    for gone in (commits[1], commits[2]):
        with pytest.raises(NotFoundError):
            sg.info(gone)
    assert [i.commit for i in sg.list()] == [commits[3], commits[0]]


def test_release_keeps_a_snapshot_another_checkpoint_names(sg: ShadowGit, ws: Path) -> None:
    write(ws, "a.txt")
    a = sg.snapshot()
    write(ws, "a.txt", "newer")
    sg.snapshot()
    assert a is not None
    sg.keep(a, "cp-1")
    sg.keep(a, "cp-2")
    sg.release("cp-1")
    sg.gc()
    assert sg.info(a).commit == a


def test_release_never_drops_the_newest_snapshot(sg: ShadowGit, ws: Path) -> None:
    write(ws, "a.txt")
    a = sg.snapshot()
    write(ws, "a.txt", "newer")
    b = sg.snapshot()
    assert a is not None and b is not None
    sg.keep(a, "cp-a")
    sg.keep(b, "cp-b")
    sg.release("cp-a")
    sg.release("cp-b")
    sg.gc()
    assert [i.commit for i in sg.list()] == [b]
    with pytest.raises(NotFoundError):
        sg.info(a)


def test_prune_by_age_keeps_young_snapshots(sg: ShadowGit, ws: Path) -> None:
    write(ws, "a.txt")
    sg.snapshot()
    write(ws, "a.txt", "2")
    sg.snapshot()
    assert sg.prune(older_than=timedelta(hours=1)) == []


def test_keep_names_are_validated(sg: ShadowGit, ws: Path) -> None:
    write(ws, "a.txt")
    a = sg.snapshot()
    assert a is not None
    for bad in ("", "../x", "a b", "-rf", "x.lock", "a/b"):
        with pytest.raises(ValidationError):
            sg.keep(a, bad)
    with pytest.raises(NotFoundError):
        sg.keep("ab" * 20, "cp")


# -- telemetry and budget --------------------------------------------------------------------------


def test_snapshot_diff_and_restore_emit_timed_events(ws: Path, state: Path) -> None:
    telemetry = StructuredTelemetry()
    sg = ShadowGit(ws, state_dir=state, telemetry=telemetry)
    write(ws, "a.txt")
    a = sg.snapshot()
    assert a is not None
    write(ws, "a.txt", "2")
    sg.diff(a)
    sg.restore(a)
    for name in ("shadow_git.snapshot", "shadow_git.diff", "shadow_git.restore"):
        events = telemetry.recent_events(name)
        assert events, name
        assert events[-1].fields["duration_ms"] >= 0 and events[-1].fields["ok"] is True
    restore = telemetry.recent_events("shadow_git.restore")[-1]
    assert restore.fields["changed"] == 1


def test_time_budget_stops_a_slow_snapshot_cleanly(ws: Path, state: Path) -> None:
    huge = ws / "huge.bin"
    with open(huge, "wb") as fh:  # sparse: costs no disk, but git must hash every byte
        fh.truncate(400 << 20)
    write(ws, "a.txt")
    slow = ShadowGit(ws, state_dir=state, time_budget=0.2, max_file_size=1 << 30)
    with pytest.raises(BudgetExceededError):
        slow.snapshot("too slow")
    assert slow.head() is None
    assert not (Path(slow.git_dir) / "index.lock").exists()
    huge.unlink()
    fine = ShadowGit(ws, state_dir=state)
    commit = fine.snapshot("after the budget")
    assert commit is not None
    assert set(tree_files(fine, commit)) == {"a.txt"}


def test_invalid_options_are_refused(ws: Path, state: Path) -> None:
    with pytest.raises(ValidationError):
        ShadowGit(ws, state_dir=state, max_file_size=-1)
    with pytest.raises(ValidationError):
        ShadowGit(ws, state_dir=state, time_budget=0)
    with pytest.raises(ValidationError):
        ShadowGit(ws, state_dir=state, extra_excludes=["two\nlines"])
    with pytest.raises(ValidationError):
        ShadowGit(ws / "missing", state_dir=state)


def test_a_failing_git_config_at_set_up_is_a_storage_error(ws: Path, state: Path, tmp_path: Path) -> None:
    import shutil

    real = shutil.which("git")
    assert real is not None
    broken = tmp_path / "broken-git"  # real git, except that `git config` fails
    broken.write_text(
        f'#!/bin/sh\nfor arg in "$@"; do [ "$arg" = config ] && {{ echo "config is locked" >&2; exit 255; }}; done\n'
        f'exec {real} "$@"\n'
    )
    broken.chmod(0o755)
    with pytest.raises(StorageError, match="config is locked"):
        ShadowGit(ws, state_dir=state, git=str(broken))
    shadow = shadow_git_dir(ws, state)
    assert not (shadow / "git").exists()  # no half-made repository, no staging folder left behind
    assert not list(shadow.glob("git-init-*"))
    write(ws, "a.txt")
    assert ShadowGit(ws, state_dir=state).snapshot() is not None  # a later set-up starts clean


def test_a_workspace_reached_through_a_symlink_is_the_same_workspace(
    ws: Path, state: Path, tmp_path: Path
) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(ws)
    sg = ShadowGit(alias, state_dir=state)
    assert sg.workspace == str(ws.resolve())
    assert sg.git_dir == ShadowGit(ws, state_dir=state).git_dir
    write(ws, "a.txt", "one\n")
    a = sg.snapshot()
    assert a is not None
    write(ws, "a.txt", "two\n")
    report = sg.restore(a, paths=[str(alias / "a.txt")])
    assert report.changed == ("a.txt",)
    assert (ws / "a.txt").read_text() == "one\n"


@pytest.mark.skipif(os.name == "nt", reason="a POSIX shell wrapper around git")
def test_a_read_stopped_by_the_budget_leaves_another_writers_lock_files(
    ws: Path, state: Path, tmp_path: Path
) -> None:
    import fcntl
    import shutil

    real = shutil.which("git")
    assert real is not None
    slow_git = tmp_path / "slow-git"  # real git, but diff-tree starts late
    slow_git.write_text(
        f'#!/bin/sh\nfor arg in "$@"; do [ "$arg" = diff-tree ] && sleep 5; done\nexec {real} "$@"\n'
    )
    slow_git.chmod(0o755)
    write(ws, "a.txt", "one\n")
    sg = ShadowGit(ws, state_dir=state, git=str(slow_git), time_budget=0.5)
    a = sg.snapshot()
    write(ws, "a.txt", "two\n")
    b = sg.snapshot()
    assert a is not None and b is not None
    # another process is in the middle of a snapshot: it holds the repository lock and git's own
    # lock files
    index_lock = Path(sg.git_dir) / "index.lock"
    ref_lock = Path(sg.git_dir) / "refs" / "heads" / "main.lock"
    with open(shadow_git_dir(ws, state) / "lock", "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        index_lock.write_bytes(b"")
        ref_lock.write_bytes(b"")
        with pytest.raises(BudgetExceededError):
            sg.diff(a, b)  # reads only: runs without the repository lock
        assert index_lock.exists() and ref_lock.exists()
