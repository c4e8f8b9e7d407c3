"""Attacks on the workspace tools from a hostile workspace (issue 11): a folder swapped for a
symlink between the confinement check and the change, a secret in the environment, FIFOs,
hard links, odd paths. Each test reproduces the attack; see docs/security.md."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from runtime_core import UnsafeWorkspaceError, ValidationError
from runtime_tools import MINIMAL_ENV_NAMES, ToolError, WorkspaceTools, minimal_environment, run_process


def _tree(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root`` (links by target, files by content), to prove nothing changed."""
    out: dict[str, bytes | str] = {}
    for current, dirs, files in os.walk(root, followlinks=False):
        for name in [*dirs, *files]:
            p = Path(current) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_file():
                out[rel] = p.read_bytes()
            else:
                out[rel] = "dir"
    return out


@pytest.fixture
def race(tmp_path: Path) -> tuple[Path, Path]:
    ws = tmp_path / "ws"
    outside = tmp_path / "outside"
    (ws / "sub").mkdir(parents=True)
    outside.mkdir()
    (ws / "sub" / "f.txt").write_text("victim")
    (outside / "f.txt").write_text("victim")
    return ws, outside


class SwapDirForLink:
    """A before-change hook that plays the attacker: between the confinement check and the
    change it moves ``ws/<name>`` away and puts a symlink to the outside folder in its place."""

    def __init__(self, ws: Path, outside: Path, name: str = "sub") -> None:
        self.ws, self.outside, self.name = ws, outside, name
        self.calls = 0

    def __call__(self, tool: str, paths: Sequence[str]) -> None:
        self.calls += 1
        target = self.ws / self.name
        if target.exists() and not target.is_symlink():
            os.rename(target, self.ws / f"{self.name}-moved")
        os.symlink(self.outside, target)


# hole 5: a folder swapped for a symlink after the check


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda t: t.write_file("sub/f.txt", "pwned"), id="write-existing"),
        pytest.param(lambda t: t.write_file("sub/new.txt", "pwned"), id="write-new"),
        pytest.param(lambda t: t.write_file("sub/deeper/new.txt", "pwned"), id="write-create-dirs"),
        pytest.param(lambda t: t.edit_file("sub/f.txt", "victim", "pwned"), id="edit"),
        pytest.param(lambda t: t.delete_file("sub/f.txt"), id="delete"),
    ],
)
def test_a_folder_swapped_for_a_symlink_after_the_check_is_not_followed(
    race: tuple[Path, Path], change: Callable[[WorkspaceTools], object]
) -> None:
    ws, outside = race
    hook = SwapDirForLink(ws, outside)
    before = _tree(outside)
    with pytest.raises(UnsafeWorkspaceError, match="symlink"):
        change(WorkspaceTools(ws, before_change=hook))
    assert hook.calls == 1  # the swap did happen between the check and the change
    assert _tree(outside) == before


def test_a_missing_folder_planted_as_a_symlink_after_the_check_is_not_followed(tmp_path: Path) -> None:
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    ws.mkdir()
    outside.mkdir()
    hook = SwapDirForLink(ws, outside, name="new")
    with pytest.raises(UnsafeWorkspaceError, match="symlink"):
        WorkspaceTools(ws, before_change=hook).write_file("new/dir/f.txt", "pwned")
    assert _tree(outside) == {}


def test_a_file_swapped_for_a_symlink_after_the_check_is_replaced_not_followed(
    race: tuple[Path, Path],
) -> None:
    ws, outside = race

    def swap_file(tool: str, paths: Sequence[str]) -> None:
        (ws / "sub" / "f.txt").unlink()
        os.symlink(outside / "f.txt", ws / "sub" / "f.txt")

    with pytest.raises(UnsafeWorkspaceError, match="symlink"):
        WorkspaceTools(ws, before_change=swap_file).write_file("sub/f.txt", "pwned")
    assert (outside / "f.txt").read_text() == "victim"


def test_writes_still_work_through_inside_links_and_new_folders(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    os.symlink("real", tmp_path / "alias")
    tools = WorkspaceTools(tmp_path)
    assert tools.write_file("alias/a/b/c.txt", "x") == {"path": "real/a/b/c.txt", "bytes": 1, "created": True}
    assert (tmp_path / "real" / "a" / "b" / "c.txt").read_text() == "x"
    assert tools.edit_file("alias/a/b/c.txt", "x", "y") == {"path": "real/a/b/c.txt", "replacements": 1}
    assert tools.delete_file("alias/a/b/c.txt") == {"path": "real/a/b/c.txt", "deleted": True}


# missing test: confinement by string prefix


def test_a_symlink_into_a_sibling_sharing_the_roots_name_prefix_is_refused(tmp_path: Path) -> None:
    """``/ws-secrets`` starts with the string ``/ws``: a confinement check by string prefix would
    let a link into it through."""
    ws, secrets = tmp_path / "ws", tmp_path / "ws-secrets"
    ws.mkdir()
    secrets.mkdir()
    (secrets / "key").write_text("secret")
    os.symlink(secrets, ws / "abs")
    os.symlink("../ws-secrets", ws / "rel")
    os.symlink(secrets / "key", ws / "keylink")
    tools = WorkspaceTools(ws)
    for path in ["abs", "abs/key", "rel/key", "rel/new.txt", "keylink"]:
        with pytest.raises(UnsafeWorkspaceError):
            tools.read_file(path)
        with pytest.raises(UnsafeWorkspaceError):
            tools.write_file(path, "pwned")
        with pytest.raises(UnsafeWorkspaceError):
            tools.delete_file(path)
    with pytest.raises(UnsafeWorkspaceError):
        tools.run_command([sys.executable, "-c", "pass"], cwd="rel")
    assert _tree(secrets) == {"key": b"secret"}


# hole 11: FIFOs, hard links, odd paths, untyped errors


def _unblock_fifo(fifo: Path) -> None:
    """Open the FIFO for writing and close it, so a reader stuck in open() gets EOF."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # no reader waiting
        return
    os.close(fd)


@pytest.mark.parametrize("tool", ["read", "edit"])
def test_reading_a_fifo_is_refused_at_once(tmp_path: Path, tool: str) -> None:
    os.mkfifo(tmp_path / "pipe")
    tools = WorkspaceTools(tmp_path)
    outcome: list[BaseException | None] = []

    def call() -> None:
        try:
            if tool == "read":
                tools.read_file("pipe")
            else:
                tools.edit_file("pipe", "a", "b")
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(10)
    stuck = worker.is_alive()
    _unblock_fifo(tmp_path / "pipe")  # frees a reader stuck in open() on the old code
    worker.join(10)
    assert not stuck, "the tool blocked on the FIFO"
    assert isinstance(outcome[0], ToolError) and "regular file" in str(outcome[0])


def test_a_file_hard_linked_from_outside_is_not_read(tmp_path: Path) -> None:
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    ws.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("secret")
    os.link(outside / "secret", ws / "innocent.txt")
    tools = WorkspaceTools(ws)
    with pytest.raises(ToolError, match="hard link"):
        tools.read_file("innocent.txt")
    with pytest.raises(ToolError, match="hard link"):
        tools.edit_file("innocent.txt", "secret", "x")
    assert (outside / "secret").read_text() == "secret"
    assert WorkspaceTools(ws, allow_hard_links=True).read_file("innocent.txt") == "secret"
    tools.write_file("innocent.txt", "mine")  # a write replaces the name, the outside file stays
    assert (outside / "secret").read_text() == "secret"


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda t: t.read_file("a\ud800"), id="read-path"),
        pytest.param(lambda t: t.write_file("a\ud800", "x"), id="write-path"),
        pytest.param(lambda t: t.write_file("ok.txt", "x\ud800"), id="write-content"),
        pytest.param(lambda t: t.edit_file("f.txt", "hello", "\udcff"), id="edit-new"),
        pytest.param(lambda t: t.delete_file("a\ud800"), id="delete-path"),
        pytest.param(lambda t: t.list_dir("a\ud800"), id="list-path"),
        pytest.param(lambda t: t.run_command(["true"], cwd="a\ud800"), id="cwd"),
        pytest.param(lambda t: t.write_file("n" * 300, "x"), id="name-too-long"),
        pytest.param(lambda t: t.write_file("d/" * 2100 + "f", "x"), id="path-too-long"),
    ],
)
def test_unencodable_or_too_long_paths_are_validation_errors(
    tmp_path: Path, call: Callable[[WorkspaceTools], object]
) -> None:
    (tmp_path / "f.txt").write_text("hello")
    with pytest.raises(ValidationError):
        call(WorkspaceTools(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


@pytest.mark.parametrize(
    "path",
    ["f.txt/x", "f.txt/x/y", "dir/f.txt/x"],
)
def test_writing_under_a_file_is_a_tool_error(tmp_path: Path, path: str) -> None:
    (tmp_path / "f.txt").write_text("hello")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "f.txt").write_text("hello")
    for create_dirs in (True, False):
        with pytest.raises(ToolError, match=r"not a directory|does not exist"):
            WorkspaceTools(tmp_path).write_file(path, "x", create_dirs=create_dirs)
    assert (tmp_path / "f.txt").read_text() == "hello"


# hole 6: run_command gets a minimal environment, not the caller's secrets

_PRINT_ENV = [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"]


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEPUP_STORE_URL", "postgresql://keepup:hunter2@db.internal/keepup")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_0123456789abcdef")
    monkeypatch.setenv("LC_CTYPE", "C.UTF-8")


def test_run_command_does_not_pass_the_callers_secrets(tmp_path: Path, secret_env: None) -> None:
    out = WorkspaceTools(tmp_path).run_command(_PRINT_ENV)
    seen = json.loads(out["stdout"])
    for name in ("KEEPUP_STORE_URL", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN"):
        assert name not in seen
    assert "hunter2" not in out["stdout"]
    assert seen["PATH"] == os.environ["PATH"]
    assert seen["LC_CTYPE"] == "C.UTF-8"
    assert set(seen) <= set(MINIMAL_ENV_NAMES) | {n for n in seen if n.startswith("LC_")}


def test_run_command_passes_what_the_caller_allows(tmp_path: Path, secret_env: None) -> None:
    tools = WorkspaceTools(tmp_path, env={"CI": "1"}, pass_env=["AWS_*"])
    seen = json.loads(tools.run_command(_PRINT_ENV)["stdout"])
    assert seen["CI"] == "1"
    assert seen["AWS_SECRET_ACCESS_KEY"].startswith("wJalr")
    assert "KEEPUP_STORE_URL" not in seen and "GITHUB_TOKEN" not in seen


def test_run_process_without_env_is_minimal_too(tmp_path: Path, secret_env: None) -> None:
    out = run_process(_PRINT_ENV, cwd=str(tmp_path), timeout=30, max_output_bytes=1 << 20)
    seen = json.loads(out.stdout)
    assert "KEEPUP_STORE_URL" not in seen and "PATH" in seen
    assert minimal_environment() == {k: v for k, v in seen.items()}


class SwapAfterCheck:
    """Wraps a root's resolve: the confinement check runs, then the attacker swaps ``ws/sub``
    for a symlink to the outside folder before the tool opens anything (reads have no hook)."""

    def __init__(self, tools: WorkspaceTools, ws: Path, outside: Path) -> None:
        self.resolve = tools.root.resolve
        self.swap = SwapDirForLink(ws, outside)

    def __call__(self, path: str) -> Path:
        real = self.resolve(path)
        if not self.swap.calls:
            self.swap("resolve", [path])
        return real


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda t: t.read_file("sub/f.txt"), id="read"),
        pytest.param(lambda t: t.list_dir("sub"), id="list"),
        pytest.param(lambda t: t.list_dir(".", recursive=True), id="list-recursive"),
    ],
)
def test_reads_do_not_follow_a_folder_swapped_after_the_check(
    race: tuple[Path, Path], read: Callable[[WorkspaceTools], object]
) -> None:
    ws, outside = race
    (outside / "f.txt").write_text("outside secret")
    (outside / "only-outside.txt").write_text("x")
    tools = WorkspaceTools(ws)
    tools.root.resolve = SwapAfterCheck(tools, ws, outside)  # type: ignore[method-assign]
    try:
        out = read(tools)
    except UnsafeWorkspaceError:
        return
    assert "outside secret" not in str(out) and "only-outside" not in str(out)
