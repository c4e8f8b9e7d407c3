"""Workspace tools wired to shadow git: every change is preceded by a snapshot, and restoring
that snapshot brings the file back exactly as it was (real git, real files)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from runtime_core import ToolCall, UnsafeWorkspaceError
from runtime_persistence.shadow_git.repository import ShadowGit
from runtime_tools import ToolRegistry, WorkspaceTools


class SnapshotBeforeChange:
    """The BeforeChangeHook the facade wires: a shadow-git snapshot before each change."""

    def __init__(self, shadow: ShadowGit) -> None:
        self.shadow = shadow
        self.commits: list[str] = []

    def __call__(self, tool: str, paths: Sequence[str]) -> None:
        self.shadow.snapshot(f"before {tool}: {', '.join(paths)}")
        latest = self.shadow.list(1)
        assert latest, "a snapshot exists after the hook"
        self.commits.append(latest[0].commit)


@pytest.fixture
def wired(tmp_path: Path) -> tuple[Path, ShadowGit, SnapshotBeforeChange, WorkspaceTools]:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("version 0\n")
    (ws / "keep.txt").write_text("untouched\n")
    shadow = ShadowGit(ws, state_dir=tmp_path / "state")
    hook = SnapshotBeforeChange(shadow)
    return ws, shadow, hook, WorkspaceTools(ws, before_change=hook)


def _content(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def test_every_change_is_preceded_by_a_snapshot_that_restores_the_file(
    wired: tuple[Path, ShadowGit, SnapshotBeforeChange, WorkspaceTools],
) -> None:
    ws, shadow, hook, tools = wired
    script = "open('a.txt', 'w').write('by a command\\n'); open('made.txt', 'w').write('made\\n')"
    changes: list[tuple[str, Callable[[], object]]] = [
        ("a.txt", lambda: tools.write_file("a.txt", "version 1\n")),
        ("a.txt", lambda: tools.edit_file("a.txt", "version 1", "version 2")),
        ("new/b.txt", lambda: tools.write_file("new/b.txt", "bee\n")),
        ("a.txt", lambda: tools.delete_file("a.txt")),
        ("a.txt", lambda: tools.run_command([sys.executable, "-c", script])),
    ]
    for path, change in changes:
        before = _content(ws / path)
        before_keep = _content(ws / "keep.txt")
        calls = len(hook.commits)
        change()
        assert len(hook.commits) == calls + 1, "the hook ran for this change"
        assert _content(ws / path) != before, "the change happened"
        # the snapshot taken just before the change brings the file back as it was
        shadow.restore(hook.commits[-1], [path] if before is not None else None)
        assert _content(ws / path) == before
        assert _content(ws / "keep.txt") == before_keep
        # ... and redo the change so the next one starts from it
        if before is not None:
            change()


def test_a_run_command_snapshot_restores_the_whole_workspace(
    wired: tuple[Path, ShadowGit, SnapshotBeforeChange, WorkspaceTools],
) -> None:
    ws, shadow, hook, tools = wired
    tools.run_command([sys.executable, "-c", "import os; os.remove('a.txt'); open('x.txt','w').write('x')"])
    assert not (ws / "a.txt").exists() and (ws / "x.txt").exists()
    shadow.restore(hook.commits[-1])
    assert (ws / "a.txt").read_text() == "version 0\n"
    assert not (ws / "x.txt").exists()


def test_tool_calls_through_the_registry_snapshot_before_changing(
    wired: tuple[Path, ShadowGit, SnapshotBeforeChange, WorkspaceTools],
) -> None:
    ws, shadow, hook, tools = wired
    registry = ToolRegistry()
    tools.register(registry)
    result = registry.invoke(ToolCall("c1", "write_file", {"path": "a.txt", "content": "changed\n"}))
    assert result.success
    changes = shadow.diff(hook.commits[-1])
    assert [(c.path, c.status.value) for c in changes] == [("a.txt", "modified")]
    refused = registry.invoke(ToolCall("c2", "write_file", {"path": "../escape.txt", "content": "x"}))
    assert not refused.success and UnsafeWorkspaceError.__name__ in (refused.error or "")
    assert len(hook.commits) == 1  # a refused call takes no snapshot and changes nothing
    assert not (ws.parent / "escape.txt").exists()
