"""Snapshots that stage only the paths the workspace tools reported (issue 12): with reports
trusted, a snapshot holds exactly the tree a full scan would, and the full scan still runs whenever
something outside the tools may have changed the workspace (real git, real files)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from keepup import open_runtime
from runtime_core import ToolCall
from runtime_persistence.shadow_git.repository import ShadowGit
from runtime_telemetry import StructuredTelemetry
from runtime_tools import WorkspaceTools


def tree_of(shadow: ShadowGit, commit: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={shadow.git_dir}", "rev-parse", f"{commit}^{{tree}}"],
        capture_output=True,
        check=True,
        text=True,
        env={
            "PATH": os.environ["PATH"],
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(Path(shadow.git_dir).parent),
        },
    ).stdout.strip()


def files_of(shadow: ShadowGit, commit: str) -> set[str]:
    out = subprocess.run(
        ["git", f"--git-dir={shadow.git_dir}", "ls-tree", "-r", "-z", "--name-only", commit],
        capture_output=True,
        check=True,
        env={
            "PATH": os.environ["PATH"],
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(Path(shadow.git_dir).parent),
        },
    ).stdout
    return {os.fsdecode(p) for p in out.split(b"\x00") if p}


class Wired:
    """A workspace, its shadow repository trusting the tools' reports, the tools reporting to it,
    and the telemetry that says how much each snapshot staged."""

    def __init__(self, tmp_path: Path, *, trust: bool = True) -> None:
        self.tmp = tmp_path
        self.ws = tmp_path / "ws"
        self.ws.mkdir()
        for i in range(30):
            path = self.ws / f"pkg{i % 3}" / f"mod{i % 2}" / f"f{i}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"value = {i}\n")
        (self.ws / ".gitignore").write_text("*.log\n")
        self.telemetry = StructuredTelemetry()
        self.shadow = ShadowGit(
            self.ws,
            state_dir=tmp_path / "state",
            telemetry=self.telemetry,
            trust_changed_paths=trust,
            max_file_size=4096,
        )
        self.tools = WorkspaceTools(self.ws, changes=self.shadow)

    def snapshot(self, message: str = "") -> tuple[str | None, object]:
        """The new commit (or None) and what the snapshot staged (a count, or "all")."""
        commit = self.shadow.snapshot(message)
        return commit, self.telemetry.recent_events("shadow_git.snapshot")[-1].fields["staged"]

    def full_scan_tree(self) -> str:
        """The tree a fresh shadow repository makes of the workspace now (a full scan)."""
        fresh = ShadowGit(self.ws, state_dir=self.tmp / f"fresh-{random.random()}", max_file_size=4096)
        commit = fresh.snapshot("full")
        assert commit is not None
        return tree_of(fresh, commit)


@pytest.fixture
def wired(tmp_path: Path) -> Wired:
    return Wired(tmp_path)


def test_a_hinted_snapshot_holds_the_same_tree_as_a_full_scan(wired: Wired) -> None:
    rng = random.Random(12)
    assert wired.snapshot("base")[1] == "all"  # the first snapshot always scans
    existing = sorted(p.relative_to(wired.ws).as_posix() for p in wired.ws.rglob("*.py"))
    for round_ in range(6):
        for step in range(8):
            kind = rng.choice(["new", "new-dir", "edit", "delete", "ignored", "pruned"])
            if kind == "new":
                path = f"pkg{rng.randrange(3)}/n{round_}_{step}.py"
                wired.tools.write_file(path, f"new {round_} {step}\n")
                existing.append(path)
            elif kind == "new-dir":
                path = f"made{round_}/deep{step}/x.txt"
                wired.tools.write_file(path, "deep\n")
                existing.append(path)
            elif kind == "edit" and existing:
                path = rng.choice(existing)
                wired.tools.write_file(path, f"edited {round_} {step}\n")
            elif kind == "delete" and existing:
                path = existing.pop(rng.randrange(len(existing)))
                wired.tools.delete_file(path)
            elif kind == "ignored":  # left out by the workspace's .gitignore, hinted or not
                wired.tools.write_file(f"pkg0/run{round_}_{step}.log", "log\n")
            elif kind == "pruned":  # left out by the built-in excludes
                wired.tools.write_file(f"node_modules/m{step}.js", "js\n")
        commit, staged = wired.snapshot(f"round {round_}")
        assert commit is not None
        assert isinstance(staged, int) and 0 < staged <= 8, f"round {round_} staged {staged!r}"
        assert tree_of(wired.shadow, commit) == wired.full_scan_tree()
    assert not any(
        p.endswith(".log") or p.startswith("node_modules/") for p in files_of(wired.shadow, commit)
    )


def test_a_snapshot_with_nothing_reported_returns_nothing_without_staging(wired: Wired) -> None:
    wired.snapshot("base")
    assert wired.snapshot("again") == (None, 0)
    wired.tools.write_file("pkg0/mod0/f0.py", "value = 0\n")  # reported, but the same bytes
    assert wired.snapshot("same") == (None, 1)


def test_an_out_of_band_change_is_captured_once_a_command_ran(wired: Wired) -> None:
    base, _ = wired.snapshot("base")
    assert base is not None
    (wired.ws / "pkg1" / "outside.py").write_text("written by an editor\n")  # not through the tools
    wired.tools.run_command([sys.executable, "-c", "pass"])  # anything may have changed
    commit, staged = wired.snapshot("after a command")
    assert staged == "all"
    assert commit is not None and "pkg1/outside.py" in files_of(wired.shadow, commit)
    assert tree_of(wired.shadow, commit) == wired.full_scan_tree()


def test_a_snapshot_taken_while_a_command_runs_scans_everything(wired: Wired) -> None:
    wired.snapshot("base")
    go = wired.tmp / "go"
    script = (
        "import os, time\n"
        "open('pkg2/half.py', 'w').write('half done')\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
    )
    worker = threading.Thread(target=wired.tools.run_command, args=([sys.executable, "-c", script],))
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not (wired.ws / "pkg2" / "half.py").exists():
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.01)
        commit, staged = wired.snapshot("a checkpoint while the command runs")
    finally:
        go.touch()
        worker.join()
    assert staged == "all"
    assert commit is not None and "pkg2/half.py" in files_of(wired.shadow, commit)
    assert wired.snapshot("after the command")[1] == "all"


def test_without_trust_every_snapshot_scans_the_whole_workspace(tmp_path: Path) -> None:
    untrusting = Wired(tmp_path, trust=False)
    untrusting.snapshot("base")
    untrusting.tools.write_file("pkg0/by_tool.py", "tool\n")
    (untrusting.ws / "pkg0" / "outside.py").write_text("editor\n")
    commit, staged = untrusting.snapshot("next")
    assert staged == "all"
    assert commit is not None and {"pkg0/by_tool.py", "pkg0/outside.py"} <= files_of(
        untrusting.shadow, commit
    )


def test_another_writer_of_the_shadow_index_forces_a_full_scan(wired: Wired) -> None:
    wired.snapshot("base")
    (wired.ws / "pkg0" / "first.py").write_text("1\n")
    other = ShadowGit(wired.ws, state_dir=wired.tmp / "state")  # another process, same repository
    assert other.snapshot("theirs") is not None
    (wired.ws / "pkg0" / "second.py").write_text("2\n")  # nobody reports this one
    wired.tools.write_file("pkg0/mine.py", "mine\n")
    commit, staged = wired.snapshot("ours")
    assert staged == "all"
    assert commit is not None
    assert {"pkg0/first.py", "pkg0/second.py", "pkg0/mine.py"} <= files_of(wired.shadow, commit)


def test_a_restore_makes_the_next_snapshot_scan_everything(wired: Wired) -> None:
    base, _ = wired.snapshot("base")
    assert base is not None
    wired.tools.write_file("pkg0/later.py", "later\n")
    assert isinstance(wired.snapshot("later")[1], int)
    wired.shadow.restore(base)
    assert not (wired.ws / "pkg0" / "later.py").exists()
    commit, staged = wired.snapshot("after restore")
    assert staged == "all"
    assert commit is None or tree_of(wired.shadow, commit) == tree_of(wired.shadow, base)


@pytest.mark.parametrize(
    ("path", "content", "kept"),
    [
        (".env", "TOKEN=secret\n", False),  # a secret: the full scan decides, and leaves it out
        (".env.example", "TOKEN=\n", True),  # a template: kept, by the full scan
        ("pkg0/.gitignore", "*.py\n", True),  # an ignore file: the rules change
        ("big.bin", "x" * 5000, False),  # over the 4096-byte cap
    ],
)
def test_a_reported_path_the_scan_must_decide_about_falls_back_to_it(
    wired: Wired, path: str, content: str, kept: bool
) -> None:
    wired.snapshot("base")
    wired.tools.write_file(path, content)
    commit, staged = wired.snapshot("decided by the scan")
    assert staged == "all"
    commit = commit or wired.shadow.head()  # None: nothing the snapshot holds changed
    assert commit is not None
    assert (path in files_of(wired.shadow, commit)) is kept
    assert tree_of(wired.shadow, commit) == wired.full_scan_tree()


def test_a_file_in_a_nested_repository_is_left_to_the_scan(wired: Wired) -> None:
    nested = wired.ws / "vendor" / "lib"
    nested.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(nested)], check=True, capture_output=True)
    wired.snapshot("base")
    wired.tools.write_file("vendor/lib/code.py", "theirs\n")
    commit, staged = wired.snapshot("nested")
    assert staged == "all"
    assert commit is None or "vendor/lib/code.py" not in files_of(wired.shadow, commit)


def test_the_runtime_wires_its_workspace_tools_to_the_snapshots(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("a\n")
    telemetry = StructuredTelemetry()
    with open_runtime(home=tmp_path / "home", telemetry=telemetry, trust_tool_changes=True) as rt:
        shadow = rt.snapshots(ws)
        assert shadow.trust_changed_paths
        registry = rt.tools(workspace=ws)
        result = registry.invoke(ToolCall("c1", "write_file", {"path": "b.txt", "content": "b\n"}))
        assert result.success  # the snapshot before it scanned everything
        assert shadow.snapshot("after") is not None
        staged = [e.fields["staged"] for e in telemetry.recent_events("shadow_git.snapshot")]
        assert staged == ["all", 1]
    with open_runtime(home=tmp_path / "home2", telemetry=telemetry) as rt:
        assert not rt.snapshots(ws).trust_changed_paths  # off unless declared
