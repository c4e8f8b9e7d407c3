"""The workspace tools: confinement to the root, the before-change hook, and each tool's behaviour."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from runtime_core import BeforeChangeHook, ToolCall, UnsafeWorkspaceError, ValidationError
from runtime_tools import WORKSPACE_TOOL_NAMES, ToolError, ToolRegistry, WorkspaceRoot, WorkspaceTools


class RecordingHook:
    """Our test double of core's BeforeChangeHook: records each call and the workspace as it was
    at that moment, so a test can prove the hook ran before the change."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[tuple[str, list[str]]] = []
        self.seen: list[dict[str, bytes | None]] = []

    def __call__(self, tool: str, paths: Sequence[str]) -> None:
        self.calls.append((tool, list(paths)))
        state: dict[str, bytes | None] = {}
        for p in paths:
            target = self.root / p
            state[p] = target.read_bytes() if target.is_file() else None
        self.seen.append(state)


class RefusingHook:
    def __call__(self, tool: str, paths: Sequence[str]) -> None:
        raise RuntimeError("snapshot failed")


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    ws = tmp_path / "ws"
    outside = tmp_path / "outside"
    ws.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (ws / "inner").mkdir()
    (ws / "inner" / "deep").mkdir()
    (ws / "hello.txt").write_text("hello\n")
    # symlink tricks
    os.symlink(outside, ws / "link_out")  # dir symlink to outside (absolute)
    os.symlink(outside / "secret.txt", ws / "link_file_out")  # file symlink to outside
    os.symlink("..", ws / "inner" / "link_up")  # ws/inner/link_up -> ws (inside: allowed)
    os.symlink("../..", ws / "inner" / "link_up2")  # -> tmp_path (outside)
    os.symlink("../outside", ws / "link_rel_out")  # relative dir symlink to outside
    os.symlink(outside / "nothing-yet.txt", ws / "dangling_out")  # dangling link leading outside
    os.symlink("chain_b", ws / "chain_a")  # a chain that ends outside
    os.symlink(str(outside), ws / "chain_b")
    os.symlink("/", ws / "link_root")
    os.symlink(tmp_path, ws / "inner" / "deep" / "link_tmp")
    os.symlink("hello.txt", ws / "link_in")  # stays inside: allowed
    return {"ws": ws, "outside": outside, "tmp": tmp_path}


ESCAPING_PATHS = [
    "..",
    "../",
    "../x",
    "../../etc/passwd",
    "a/../../x",
    "a/b/../../../x",
    "./../x",
    "a/./../../x",
    "inner/../../outside/secret.txt",
    "../ws/hello.txt",  # leaves and comes back: '..' is refused outright
    "../" * 20 + "etc/passwd",
    "/etc/passwd",
    "/",
    "//etc/passwd",
    "/tmp",
    "~",
    "~/x",
    "~root/.ssh/id_rsa",
    "~/.ssh/id_rsa",
    "a\x00b",
    "\x00",
    "hello.txt\x00.png",
    "link_out",
    "link_out/secret.txt",
    "link_out/new.txt",
    "link_file_out",
    "inner/link_up2",
    "inner/link_up2/outside/secret.txt",
    "link_rel_out/secret.txt",
    "dangling_out",
    "chain_a",
    "chain_a/secret.txt",
    "link_root/etc/passwd",
    "link_root",
    "inner/deep/link_tmp/outside/secret.txt",
    "inner/link_up/link_out/secret.txt",
    "inner/link_up/../hello.txt",
]


def test_there_are_at_least_thirty_escaping_paths() -> None:
    assert len(set(ESCAPING_PATHS)) >= 30


@pytest.mark.parametrize("path", ESCAPING_PATHS)
def test_escaping_path_is_refused_by_the_root(layout: dict[str, Path], path: str) -> None:
    with pytest.raises(UnsafeWorkspaceError):
        WorkspaceRoot(layout["ws"]).resolve(path)


@pytest.mark.parametrize("path", ESCAPING_PATHS)
def test_escaping_path_is_refused_by_every_tool_and_changes_nothing(
    layout: dict[str, Path], path: str
) -> None:
    hook = RecordingHook(layout["ws"])
    tools = WorkspaceTools(layout["ws"], before_change=hook)
    before = _tree(layout["tmp"])
    calls: list[Callable[[], object]] = [
        lambda: tools.read_file(path),
        lambda: tools.write_file(path, "pwned"),
        lambda: tools.edit_file(path, "secret", "pwned"),
        lambda: tools.list_dir(path),
        lambda: tools.delete_file(path),
        lambda: tools.run_command(["true"], cwd=path),
    ]
    for call in calls:
        with pytest.raises(UnsafeWorkspaceError):
            call()
    assert hook.calls == []
    assert _tree(layout["tmp"]) == before
    assert (layout["outside"] / "secret.txt").read_text() == "secret"


@pytest.mark.parametrize("path", ESCAPING_PATHS[:8])
def test_escaping_path_through_the_registry_is_a_failed_result(layout: dict[str, Path], path: str) -> None:
    reg = ToolRegistry()
    WorkspaceTools(layout["ws"]).register(reg)
    result = reg.invoke(ToolCall("c1", "write_file", {"path": path, "content": "x"}))
    assert not result.success and (result.error or "").startswith("UnsafeWorkspaceError")


def test_symlinks_that_stay_inside_are_allowed(layout: dict[str, Path]) -> None:
    tools = WorkspaceTools(layout["ws"])
    assert tools.read_file("link_in") == "hello\n"
    assert tools.read_file("inner/link_up/hello.txt") == "hello\n"


@pytest.mark.parametrize("root", ["/", "/etc", "/usr"])
def test_protected_folders_are_refused_as_roots(root: str) -> None:
    with pytest.raises(UnsafeWorkspaceError):
        WorkspaceRoot(root)


def test_home_is_refused_as_a_root() -> None:
    with pytest.raises(UnsafeWorkspaceError):
        WorkspaceRoot(Path.home())


def test_empty_and_non_string_paths_are_invalid(layout: dict[str, Path]) -> None:
    root = WorkspaceRoot(layout["ws"])
    with pytest.raises(ValidationError):
        root.resolve("")
    with pytest.raises(ValidationError):
        root.resolve(3)  # type: ignore[arg-type]


# the hook


def _hooked(tmp_path: Path) -> tuple[WorkspaceTools, RecordingHook, Path]:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("one two two\n")
    hook = RecordingHook(ws)
    return WorkspaceTools(ws, before_change=hook), hook, ws


def test_the_hook_is_a_before_change_hook(tmp_path: Path) -> None:
    assert isinstance(RecordingHook(tmp_path), BeforeChangeHook)


def test_write_calls_the_hook_before_changing_the_file(tmp_path: Path) -> None:
    tools, hook, ws = _hooked(tmp_path)
    tools.write_file("a.txt", "new")
    assert hook.calls == [("write_file", ["a.txt"])]
    assert hook.seen == [{"a.txt": b"one two two\n"}]
    assert (ws / "a.txt").read_text() == "new"


def test_write_of_a_new_file_calls_the_hook_before_it_exists(tmp_path: Path) -> None:
    tools, hook, _ws = _hooked(tmp_path)
    out = tools.write_file("sub/dir/b.txt", "b")
    assert out == {"path": "sub/dir/b.txt", "bytes": 1, "created": True}
    assert hook.calls == [("write_file", ["sub/dir/b.txt"])]
    assert hook.seen == [{"sub/dir/b.txt": None}]


def test_edit_calls_the_hook_before_changing_the_file(tmp_path: Path) -> None:
    tools, hook, ws = _hooked(tmp_path)
    tools.edit_file("a.txt", "one", "ONE")
    assert hook.calls == [("edit_file", ["a.txt"])]
    assert hook.seen == [{"a.txt": b"one two two\n"}]
    assert (ws / "a.txt").read_text() == "ONE two two\n"


def test_delete_calls_the_hook_before_removing_the_file(tmp_path: Path) -> None:
    tools, hook, ws = _hooked(tmp_path)
    tools.delete_file("a.txt")
    assert hook.calls == [("delete_file", ["a.txt"])]
    assert hook.seen == [{"a.txt": b"one two two\n"}]
    assert not (ws / "a.txt").exists()


def test_run_command_calls_the_hook_before_running(tmp_path: Path) -> None:
    tools, hook, ws = _hooked(tmp_path)
    tools.run_command([sys.executable, "-c", "open('a.txt','w').write('changed')"])
    assert hook.calls == [("run_command", ["."])]
    assert (ws / "a.txt").read_text() == "changed"


def test_reads_and_lists_never_call_the_hook(tmp_path: Path) -> None:
    tools, hook, _ = _hooked(tmp_path)
    tools.read_file("a.txt")
    tools.list_dir(".")
    assert hook.calls == []


def test_refused_changes_never_reach_the_hook(tmp_path: Path) -> None:
    tools, hook, _ = _hooked(tmp_path)
    with pytest.raises(ToolError):
        tools.edit_file("a.txt", "absent", "x")
    with pytest.raises(ToolError):
        tools.edit_file("a.txt", "two", "x")  # two matches
    with pytest.raises(ToolError):
        tools.delete_file("missing.txt")
    with pytest.raises(ToolError):
        tools.write_file(".", "x")
    assert hook.calls == []


def test_a_failing_hook_stops_the_change(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("keep")
    tools = WorkspaceTools(ws, before_change=RefusingHook())
    changes: list[Callable[[], object]] = [
        lambda: tools.write_file("a.txt", "x"),
        lambda: tools.edit_file("a.txt", "keep", "x"),
        lambda: tools.delete_file("a.txt"),
        lambda: tools.run_command([sys.executable, "-c", "open('a.txt','w').write('x')"]),
    ]
    for call in changes:
        with pytest.raises(RuntimeError, match="snapshot failed"):
            call()
    assert (ws / "a.txt").read_text() == "keep"


def test_every_changing_tool_through_the_registry_calls_the_hook_first(tmp_path: Path) -> None:
    tools, hook, _ws = _hooked(tmp_path)
    reg = ToolRegistry()
    specs = tools.register(reg)
    assert [s.name for s in specs] == list(WORKSPACE_TOOL_NAMES)
    assert {s.name for s in specs if s.changes_workspace} == {
        "write_file",
        "edit_file",
        "delete_file",
        "run_command",
    }
    calls = [
        ToolCall("1", "write_file", {"path": "b.txt", "content": "b"}),
        ToolCall("2", "edit_file", {"path": "b.txt", "old": "b", "new": "c"}),
        ToolCall("3", "read_file", {"path": "b.txt"}),
        ToolCall("4", "delete_file", {"path": "b.txt"}),
        ToolCall("5", "run_command", {"command": ["true"]}),
        ToolCall("6", "list_dir", {}),
    ]
    results = [reg.invoke(c) for c in calls]
    assert all(r.success for r in results), [r.error for r in results]
    assert [c[0] for c in hook.calls] == ["write_file", "edit_file", "delete_file", "run_command"]
    assert hook.seen[0] == {"b.txt": None}
    assert hook.seen[1] == {"b.txt": b"b"}
    assert hook.seen[2] == {"b.txt": b"c"}


# each tool


def test_read_file_returns_text_and_line_ranges(tmp_path: Path) -> None:
    ws = tmp_path
    (ws / "f.txt").write_text("1\n2\n3\n4\n")
    tools = WorkspaceTools(ws)
    assert tools.read_file("f.txt") == "1\n2\n3\n4\n"
    assert tools.read_file("f.txt", start_line=2, max_lines=2) == "2\n3\n"
    with pytest.raises(ToolError, match="does not exist"):
        tools.read_file("nope.txt")
    (ws / "bin").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ToolError, match="UTF-8"):
        tools.read_file("bin")


def test_read_file_refuses_files_over_the_limit(tmp_path: Path) -> None:
    (tmp_path / "big").write_text("x" * 100)
    with pytest.raises(ToolError, match="limit"):
        WorkspaceTools(tmp_path, max_read_bytes=10).read_file("big")


def test_write_keeps_the_mode_and_leaves_no_temp_files(tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text("echo hi")
    os.chmod(tmp_path / "run.sh", 0o755)
    WorkspaceTools(tmp_path).write_file("run.sh", "echo bye")
    assert (tmp_path / "run.sh").stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.sh"]


def test_write_without_create_dirs_needs_the_directory(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="create_dirs"):
        WorkspaceTools(tmp_path).write_file("no/such/dir.txt", "x", create_dirs=False)


def test_write_through_an_inside_symlink_changes_the_target(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("old")
    os.symlink("real.txt", tmp_path / "alias")
    hook = RecordingHook(tmp_path)
    WorkspaceTools(tmp_path, before_change=hook).write_file("alias", "new")
    assert (tmp_path / "real.txt").read_text() == "new"
    assert (tmp_path / "alias").is_symlink()
    assert hook.calls == [("write_file", ["real.txt"])]


def test_edit_replace_all(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("a a a")
    out = WorkspaceTools(tmp_path).edit_file("f", "a", "b", replace_all=True)
    assert out == {"path": "f", "replacements": 3}
    assert (tmp_path / "f").read_text() == "b b b"


def test_list_dir_lists_without_following_symlinks(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.txt").write_text("x")
    (tmp_path / "y.txt").write_text("yy")
    os.symlink("/etc", tmp_path / "etc_link")
    tools = WorkspaceTools(tmp_path)
    flat = tools.list_dir(".")
    assert [(e["path"], e["type"]) for e in flat["entries"]] == [
        ("d", "dir"),
        ("etc_link", "symlink"),
        ("y.txt", "file"),
    ]
    deep = tools.list_dir(".", recursive=True)
    assert [e["path"] for e in deep["entries"]] == ["d", "d/x.txt", "etc_link", "y.txt"]
    assert tools.list_dir(".", max_entries=1)["truncated"] is True


def test_delete_file_removes_a_link_not_its_target(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("t")
    os.symlink("t.txt", tmp_path / "l")
    tools = WorkspaceTools(tmp_path)
    assert tools.delete_file("l") == {"path": "l", "deleted": True}
    assert (tmp_path / "t.txt").exists()
    assert tools.delete_file("l", missing_ok=True) == {"path": "l", "deleted": False}
    (tmp_path / "d").mkdir()
    with pytest.raises(ToolError, match="directory"):
        tools.delete_file("d")


def test_run_command_reports_exit_code_and_output(tmp_path: Path) -> None:
    tools = WorkspaceTools(tmp_path)
    out = tools.run_command(
        [sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"]
    )
    assert out["exit_code"] == 3 and out["stdout"] == "out\n" and out["stderr"] == "err\n"
    assert out["timed_out"] is False
    assert tools.run_command("echo 'a b'")["stdout"] == "a b\n"  # split like a shell, run without one


def test_run_command_runs_in_the_given_cwd_without_a_shell(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    tools = WorkspaceTools(tmp_path)
    assert tools.run_command(["pwd"], cwd="sub")["stdout"].strip() == str((tmp_path / "sub").resolve())
    assert tools.run_command(["echo", "$HOME", ";", "ls"])["stdout"] == "$HOME ; ls\n"
    with pytest.raises(ToolError, match="shell"):
        tools.run_command("echo hi", shell=True)
    assert (
        WorkspaceTools(tmp_path, allow_shell=True).run_command("echo $((1+2))", shell=True)["stdout"] == "3\n"
    )


def test_run_command_caps_output(tmp_path: Path) -> None:
    tools = WorkspaceTools(tmp_path, max_output_bytes=1000)
    out = tools.run_command([sys.executable, "-c", "print('x' * 100000)"])
    assert len(out["stdout"]) == 1000 and out["stdout_truncated"] is True
    assert out["stdout_dropped_bytes"] == 100001 - 1000


def test_run_command_timeout_kills_the_process_group(tmp_path: Path) -> None:
    tools = WorkspaceTools(tmp_path)
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "open('child.pid', 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    with pytest.raises(ToolError, match="timed out") as info:
        tools.run_command([sys.executable, "-c", script], timeout=1.5)
    assert time.monotonic() - started < 20
    assert info.value.output["timed_out"] is True and info.value.output["exit_code"] is None
    child_pid = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child_pid):
        time.sleep(0.05)
    assert not _alive(child_pid)


def test_run_command_returns_when_a_background_child_keeps_the_pipes(tmp_path: Path) -> None:
    tools = WorkspaceTools(tmp_path)
    script = "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\nprint('parent done')\n"
    started = time.monotonic()
    out = tools.run_command([sys.executable, "-c", script], timeout=30)
    assert out["exit_code"] == 0 and out["stdout"] == "parent done\n"
    assert time.monotonic() - started < 20


def test_missing_program_is_a_failed_result(tmp_path: Path) -> None:
    reg = ToolRegistry()
    WorkspaceTools(tmp_path).register(reg)
    result = reg.invoke(ToolCall("c", "run_command", {"command": ["definitely-not-a-program-xyz"]}))
    assert not result.success and "FileNotFoundError" in (result.error or "")


def test_registry_timeout_bounds_run_command(tmp_path: Path) -> None:
    reg = ToolRegistry()
    WorkspaceTools(tmp_path).register(reg)
    started = time.monotonic()
    result = reg.invoke(
        ToolCall("c", "run_command", {"command": [sys.executable, "-c", "import time; time.sleep(30)"]}),
        timeout=1.0,
    )
    assert not result.success and "timed out" in (result.error or "")
    assert time.monotonic() - started < 15


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _tree(root: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for current, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            p = Path(current) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_file():
                out[rel] = p.read_bytes()
            else:
                out[rel] = "dir"
    return out
