"""Shadow-git restore killed (SIGKILL of the process and its git children) at every step: before
each delete and each write, half-way through each file's bytes, and at times spread over the
rescue snapshot. After each kill: the shadow repository opens, the rescue snapshot holds the
workspace exactly as it was (including an edit no snapshot had), every file left in the
workspace is the old or the new version, never torn, and restoring the rescue then the target
gives each state exactly. Nothing is lost (issue 11, crash harness for restore)."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from runtime_persistence.shadow_git.repository import ShadowGit

TEMPORARY = re.compile(r"^\.keepup-restore\.[0-9a-f]{16}$")
pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL of a process group is POSIX")

_CHILD = textwrap.dedent(
    """
    import sys
    from runtime_persistence.shadow_git import restore as restore_module
    from runtime_persistence.shadow_git.repository import ShadowGit
    from runtime_persistence.testing.crash import kill_at_call

    ws, state, target, k, mid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1"
    if k >= 0:
        kill_at_call(restore_module, ("remove_file", "remove_empty_tree", "write_entry"), k, mid_stream=mid)
    ShadowGit(ws, state_dir=state).restore(target)
    """
)


def _files(root: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            path = Path(dirpath) / name
            out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


def _write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@pytest.fixture(scope="module")
def prepared(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, str, dict[str, bytes], dict[str, bytes]]:
    """A workspace and its shadow state: snapshot ``a`` (the target), then changes, a snapshot,
    and an edit no snapshot holds. Returns (base folder, a, files of a, files now)."""
    base = tmp_path_factory.mktemp("restore-kills") / "live"  # the shadow repository is per path:
    ws, state = base / "ws", base / "state"  # every kill point runs at this same path
    ws.mkdir(parents=True)
    old = {f"src/m{i}.py": f"old {i}\n".encode() * 50 for i in range(6)}
    old |= {"README.md": b"read me\n", "gone/deep/x.txt": b"x" * 70_000, "keep.txt": b"same"}
    _write(ws, old)
    sg = ShadowGit(ws, state_dir=state)
    a = sg.snapshot("a")
    assert a is not None
    for i in range(0, 6, 2):
        (ws / f"src/m{i}.py").write_bytes(f"new {i}\n".encode() * 80)
    shutil.rmtree(ws / "gone")
    _write(ws, {"added/one.txt": b"1" * 90_000, "added/two/three.txt": b"3", "README.md": b"changed\n"})
    assert sg.snapshot("b") is not None
    (ws / "src/m1.py").write_bytes(b"an edit no snapshot holds\n")  # only the rescue will hold it
    pristine = base.parent / "pristine"
    shutil.copytree(base, pristine, symlinks=True)
    return base, a, old, _files(ws)


def _run(base: Path, a: str, k: int, mid: bool, delay: float | None = None) -> int:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(base / "ws"), str(base / "state"), a, str(k), "1" if mid else "0"],
        start_new_session=True,
    )
    if delay is not None:
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait(timeout=120)


def _check(base: Path, a: str, old: dict[str, bytes], now: dict[str, bytes]) -> str:
    """Check one killed restore; returns how the workspace was left."""
    ws, state = base / "ws", base / "state"
    left = _files(ws)
    # a temporary file of the write that was killed may stay until the next restore removes it
    left = {rel: data for rel, data in left.items() if not TEMPORARY.match(rel.rsplit("/", 1)[-1])}
    for rel, data in left.items():  # every file is the old or the new version, never torn
        assert data in (old.get(rel), now.get(rel)), f"{rel} is neither version ({len(data)} bytes)"
    sg = ShadowGit(ws, state_dir=state)  # opens after the kill (the file lock died with it)
    if left == now:
        kind = "before"
    elif left == old:
        kind = "after"
    else:
        kind = "mixed"
    newest = sg.list(limit=1)[0]
    if kind != "before":
        assert newest.message.startswith("keepup: rescue"), "a changed workspace needs its rescue snapshot"
    if newest.message.startswith("keepup: rescue"):
        sg.restore(newest.commit)
        assert _files(ws) == now, (
            "the rescue snapshot does not hold the workspace as it was (or a temporary stayed)"
        )
    sg.restore(a)
    assert _files(ws) == old
    return kind


def _points(wide: bool) -> list[tuple[int, bool, float | None]]:
    """(step, half-way through its file, or None) kill points, and kills at times (seeded)."""
    steps = range(14) if wide else range(0, 14, 2)
    points: list[tuple[int, bool, float | None]] = [(k, mid, None) for k in steps for mid in (False, True)]
    rng = random.Random(11)
    points += [(-1, False, rng.uniform(0.05, 1.5)) for _ in range(6 if wide else 2)]
    return points


@pytest.mark.parametrize(
    "wide", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["every-other-step", "every-step"]
)
def test_a_restore_killed_at_any_step_loses_nothing(
    prepared: tuple[Path, str, dict[str, bytes], dict[str, bytes]], wide: bool
) -> None:
    base, a, old, now = prepared
    pristine = base.parent / "pristine"
    points = _points(wide)
    seen: dict[str, int] = {}
    finished = 0
    for k, mid, delay in points:
        shutil.rmtree(base)
        shutil.copytree(pristine, base, symlinks=True)
        code = _run(base, a, k, mid, delay)
        if code == 0:
            finished += 1  # the kill point lies past the last step: the restore completed
            assert _files(base / "ws") == old
            continue
        assert code == -signal.SIGKILL, f"point {k, mid, delay}: exit {code}"
        kind = _check(base, a, old, now)
        seen[kind] = seen.get(kind, 0) + 1
    print(f"[restore-kills] {len(points)} kill points: {seen}, {finished} finished before their kill")
    assert seen.get("mixed", 0) > 0 and seen.get("before", 0) > 0  # the kills landed inside
