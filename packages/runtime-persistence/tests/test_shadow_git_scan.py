"""The full staging's shortcuts stay exact: the scan lists again only folders whose stat data
moved, and git's listing of changed tracked files decides what is staged. A change that leaves a
folder's times alone (a file written in place), or a file's size and modification time alone (a
rewrite with its time put back), is still recorded; an entry added to a folder the scan reused is
still seen."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from runtime_persistence.shadow_git.repository import ShadowGit

OLD_NS = 1_000_000_000 * 1_000_000_000  # 2001-09-09: far older than any scan


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    return path


@pytest.fixture
def sg(ws: Path, tmp_path: Path) -> ShadowGit:
    """A ShadowGit that reuses a folder's listing however recently the folder changed (a test
    cannot wait out the margin), so every test here runs on reused listings."""
    shadow = ShadowGit(ws, state_dir=tmp_path / "state", max_file_size=1000)
    shadow._folder_margin_ns = 0
    return shadow


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def git(sg: ShadowGit, *args: str) -> bytes:
    env = {"PATH": os.environ["PATH"], "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(Path(sg.git_dir).parent)}
    return subprocess.run(
        ["git", f"--git-dir={sg.git_dir}", *args], capture_output=True, check=True, env=env
    ).stdout


def content(sg: ShadowGit, commit: str, rel: str) -> bytes:
    return git(sg, "show", f"{commit}:{rel}")


def paths(sg: ShadowGit, commit: str) -> set[str]:
    return set(
        os.fsdecode(p) for p in git(sg, "ls-tree", "-r", "-z", "--name-only", commit).split(b"\x00") if p
    )


def folder_stamp(path: Path) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def test_a_file_written_in_place_under_an_unchanged_folder_is_recorded(sg: ShadowGit, ws: Path) -> None:
    write(ws, "src/pkg/a.py", "a = 1\n")
    write(ws, "src/pkg/b.py", "b = 1\n")
    first = sg.snapshot()
    assert first is not None
    assert sg._folders["src/pkg"].stamp is not None  # the next scan reuses this folder's listing
    before = folder_stamp(ws / "src" / "pkg")
    with open(ws / "src" / "pkg" / "a.py", "a") as fh:  # in place: the folder's times stay
        fh.write("a = 2\n")
    assert folder_stamp(ws / "src" / "pkg") == before
    second = sg.snapshot()
    assert second is not None
    assert content(sg, second, "src/pkg/a.py") == b"a = 1\na = 2\n"
    assert sg.snapshot() is None  # and nothing more


def test_a_rewrite_with_the_same_size_and_modification_time_is_recorded(sg: ShadowGit, ws: Path) -> None:
    """git's stat check sees the change time move; the scan's reuse of the folder does not hide
    it. (git compares whole seconds of the change time: a rewrite within the second of the last
    one, with the modification time put back, is beyond any stat check, so this one waits for the
    next second.)"""
    path = write(ws, "data/value.txt", "aaaa\n")
    os.utime(path, ns=(OLD_NS, OLD_NS))
    first = sg.snapshot()
    assert first is not None
    before = os.stat(path)
    while True:  # the file system stamps with a coarse clock that may lag time.time(): check the stamp
        while int(time.time()) <= before.st_ctime:
            time.sleep(0.05)
        with open(path, "r+") as fh:  # same size, same inode
            fh.write("bbbb\n")
        os.utime(path, ns=(OLD_NS, OLD_NS))
        after = os.stat(path)
        if int(after.st_ctime) > int(before.st_ctime):
            break
        time.sleep(0.05)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )
    second = sg.snapshot()
    assert second is not None
    assert content(sg, second, "data/value.txt") == b"bbbb\n"


def test_a_rewrite_in_the_same_clock_tick_as_the_index_is_recorded(sg: ShadowGit, ws: Path) -> None:
    """Racy git: the file's times equal the index's, so stat data cannot tell; git compares its
    content."""
    path = write(ws, "racy.txt", "one\n")
    first = sg.snapshot()
    assert first is not None
    index = Path(sg.git_dir) / "index"
    stamp = os.stat(index).st_mtime_ns
    path.write_text("two\n")
    os.utime(path, ns=(stamp, stamp))
    os.utime(index, ns=(stamp, stamp))
    second = sg.snapshot()
    assert second is not None
    assert content(sg, second, "racy.txt") == b"two\n"


def test_entries_added_to_a_reused_folder_are_seen(sg: ShadowGit, ws: Path) -> None:
    write(ws, "lib/one.py", "1\n")
    write(ws, "lib/inner/two.py", "2\n")
    first = sg.snapshot()
    assert first is not None
    assert sg._folders["lib"].stamp is not None and sg._folders["lib/inner"].stamp is not None
    write(ws, "lib/new.py", "new\n")
    write(ws, "lib/.env", "SECRET=1\n")
    subprocess.run(["git", "init", "-q", str(ws / "lib" / "inner")], check=True, capture_output=True)
    second = sg.snapshot()
    assert second is not None
    assert paths(sg, second) == {"lib/one.py", "lib/new.py"}
    assert sg.last_scan.nested_repositories == ("lib/inner",)
    assert sg.last_scan.secrets == ("lib/.env",)


def test_a_file_grown_over_the_cap_in_place_is_excluded_and_back_when_it_shrinks(
    sg: ShadowGit, ws: Path
) -> None:
    path = write(ws, "logs/out.log", "short\n")
    write(ws, "logs/keep.txt", "keep\n")
    first = sg.snapshot()
    assert first is not None
    with open(path, "a") as fh:
        fh.write("x" * 2000)
    second = sg.snapshot()
    assert second is not None
    assert paths(sg, second) == {"logs/keep.txt"}
    assert sg.last_scan.oversized == ("logs/out.log",)
    assert sg.snapshot() is None
    with open(path, "r+") as fh:
        fh.truncate(10)
    third = sg.snapshot()
    assert third is not None
    assert paths(sg, third) == {"logs/keep.txt", "logs/out.log"}
    assert sg.last_scan.oversized == ()


def test_a_folder_swapped_for_a_symlink_drops_its_tracked_files(
    sg: ShadowGit, ws: Path, tmp_path: Path
) -> None:
    write(ws, "d/f.txt", "f\n")
    write(ws, "top.txt", "t\n")
    assert sg.snapshot() is not None
    outside = tmp_path / "outside"
    write(outside, "f.txt", "not ours\n")
    (ws / "d" / "f.txt").unlink()
    (ws / "d").rmdir()
    (ws / "d").symlink_to(outside, target_is_directory=True)
    second = sg.snapshot()
    assert second is not None
    assert paths(sg, second) == {"d", "top.txt"}


def test_the_file_count_is_read_through_the_split_index(sg: ShadowGit, ws: Path) -> None:
    """Index writes keep only the changed entries (git's split index); the snapshot's file count
    adds the shared index's entries, less those deleted, plus those added."""
    for i in range(40):
        write(ws, f"m{i % 4}/f{i:02d}.txt", f"{i}\n")
    first = sg.snapshot()
    assert first is not None
    for i in (3, 7, 11):
        (ws / f"m{i % 4}" / f"f{i:02d}.txt").unlink()
    for i in (1, 2):
        write(ws, f"m{i % 4}/f{i:02d}.txt", "changed\n")
    for i in range(5):
        write(ws, f"new/g{i}.txt", "g\n")
    second = sg.snapshot()
    assert second is not None
    assert list(Path(sg.git_dir).glob("sharedindex.*"))  # the split index is in use
    staged = [p for p in git(sg, "ls-files", "-z").split(b"\x00") if p]
    assert len(staged) == 42
    assert [info.files for info in sg.list()] == [42, 40]
