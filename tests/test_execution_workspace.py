"""The runner wired to real pieces: persistence stores (SQLite, and PostgreSQL when configured),
the tool registry with workspace tools, and shadow git as both the before-change hook and the
runner's workspace snapshots. Replay reproduces files and state on a fork; leases refuse restore
while a run is live and stop refusing once a killed runner's lease expires."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from runtime_core import RunState, RunStatus, RuntimeBusyError
from runtime_execution import Runner, ScriptedAgent, run_id_of_holder
from runtime_persistence import Checkpoints, Leases, RunRecords
from runtime_persistence.shadow_git.repository import ShadowGit
from runtime_persistence.testing import TestStore, store_fixture
from runtime_tools import ToolRegistry, WorkspaceTools

wired_store = store_fixture("sqlite", "postgres")


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.parts
    }


def _comparable(state: RunState) -> dict[str, Any]:
    channels = state.to_channels()
    for r in channels["completed_tool_calls"]:
        r.pop("duration_ms")
    return channels


class _Setup:
    def __init__(self, store: TestStore, tmp_path: Path) -> None:
        self.ws = tmp_path / "ws"
        self.ws.mkdir()
        self.shadow = ShadowGit(self.ws, state_dir=tmp_path / "state")
        self.leases = Leases(store.driver)
        self.checkpoints = Checkpoints(store.driver, leases=self.leases)
        self.runs = RunRecords(store.driver)
        self.registry = ToolRegistry()
        WorkspaceTools(self.ws, before_change=self._before_change).register(self.registry)
        self.runner = Runner(self.checkpoints, self.leases, self.runs, self.registry, workspace=self.shadow)

    def _before_change(self, tool: str, paths: Sequence[str]) -> None:
        self.shadow.snapshot(f"before {tool}")


AGENT_SCRIPT: list[Any] = [
    "Starting.",
    ("write_file", {"path": "src/app.py", "content": "print('v1')\n"}),
    ("edit_file", {"path": "src/app.py", "old": "v1", "new": "v2"}),
    [
        ("write_file", {"path": "README.md", "content": "# app\n"}),
        ("write_file", {"path": "tmp.txt", "content": "t"}),
    ],
    ("delete_file", {"path": "tmp.txt"}),
    ("run_command", {"command": [sys.executable, "-c", "open('out.txt','w').write('ran')"]}),
    ("edit_file", {"path": "README.md", "old": "# app", "new": "# app, reviewed"}),
]


def test_replay_from_a_checkpoint_reproduces_workspace_and_state_on_a_fork(
    wired_store: TestStore, tmp_path: Path
) -> None:
    s = _Setup(wired_store, tmp_path)
    agent = ScriptedAgent(AGENT_SCRIPT, name="builder", final_message="Built.")
    original = s.runner.start(agent, input="build it")
    assert original.status is RunStatus.COMPLETED
    final_files = _files(s.ws)
    assert final_files == {
        "README.md": "# app, reviewed\n",
        "out.txt": "ran",
        "src/app.py": "print('v2')\n",
    }
    history = s.checkpoints.list(original.thread_id)
    original_head = history[0]
    original_state = RunState.from_channels(original_head.state)
    assert all(c.workspace is not None for c in history)  # files travel with every checkpoint

    # a checkpoint's workspace snapshot is the files as they were at that checkpoint
    middle = next(c for c in history if c.state["step"] == 4)  # after the first three tool steps
    assert middle.workspace is not None
    s.shadow.restore(middle.workspace.commit)
    assert _files(s.ws) == {"src/app.py": "print('v2')\n"}  # the step-3 writes are still pending there

    # mess the workspace up: the replay starts from the checkpoint's snapshot anyway
    (s.ws / "src" / "app.py").write_text("garbage\n")
    (s.ws / "junk.txt").write_text("junk\n")
    replayed = s.runner.replay(middle.id)
    assert replayed.status is RunStatus.COMPLETED and replayed.thread_id != original.thread_id
    assert _files(s.ws) == final_files
    assert _comparable(RunState.from_channels(s.checkpoints.latest(replayed.thread_id).state)) == _comparable(  # type: ignore[union-attr]
        original_state
    )
    # the original thread is untouched: same head, same checkpoints
    assert s.checkpoints.latest(original.thread_id) == original_head
    assert [c.id for c in s.checkpoints.list(original.thread_id)] == [c.id for c in history]
    assert s.checkpoints.get_thread(replayed.thread_id).forked_from == middle.id
    assert s.runner.divergence(middle.id, replayed.id) is None  # step by step, the same states


def test_restoring_a_checkpoint_brings_back_its_files(wired_store: TestStore, tmp_path: Path) -> None:
    s = _Setup(wired_store, tmp_path)
    run = s.runner.start(ScriptedAgent(AGENT_SCRIPT[:3], name="builder"))
    first_write = next(c for c in s.checkpoints.list(run.thread_id) if c.state["step"] == 3)
    restored = s.checkpoints.restore(first_write.id)
    assert restored.workspace is not None
    s.shadow.restore(restored.workspace.commit)
    assert _files(s.ws) == {"src/app.py": "print('v1')\n"}


CHILD = r"""
import sys, time
from pathlib import Path
from runtime_core import ToolCall
from runtime_execution import Runner, ScriptedAgent
from runtime_persistence import Checkpoints, Leases, RunRecords
from runtime_persistence.storage.stores import open_store
from runtime_tools import ToolRegistry

url, thread_id, gate = sys.argv[1:4]
registry = ToolRegistry()

@registry.register
def wait_for_gate() -> str:
    '''Block until the gate file exists.'''
    while not Path(gate).exists():
        time.sleep(0.02)
    return "open"

driver = open_store(url)
leases = Leases(driver)
runner = Runner(Checkpoints(driver, leases=leases), leases, RunRecords(driver), registry, lease_ttl=1.5, heartbeat_every=0.3)
runner.start(ScriptedAgent(["hello", ("wait_for_gate", {})], name="waiter"), thread_id)
"""


def test_restore_is_refused_while_a_runner_process_holds_the_lease_and_allowed_after_it_expires(
    wired_store: TestStore, tmp_path: Path
) -> None:
    assert wired_store.url is not None
    leases = Leases(wired_store.driver)
    checkpoints = Checkpoints(wired_store.driver, leases=leases)
    thread_id = checkpoints.create_thread("held").id
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    gate = tmp_path / "gate"
    proc = subprocess.Popen([sys.executable, str(child), wired_store.url, thread_id, str(gate)])
    try:
        deadline = time.monotonic() + 60
        while len(checkpoints.list(thread_id)) < 3:  # input, "hello", the step calling the tool
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        first = checkpoints.list(thread_id)[-1]
        time.sleep(2.0)  # longer than the ttl: only heartbeats keep the lease alive now
        with pytest.raises(RuntimeBusyError) as busy:
            checkpoints.restore(first.id)
        assert busy.value.holder is not None
        run = RunRecords(wired_store.driver).get(run_id_of_holder(busy.value.holder))
        assert run.status is RunStatus.RUNNING and run.thread_id == thread_id
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        # the dead runner's lease still blocks until it expires, then restore is allowed
        with pytest.raises(RuntimeBusyError):
            checkpoints.restore(first.id)
        deadline = time.monotonic() + 10
        while leases.current(thread_id) is not None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        restored = checkpoints.restore(first.id)
        assert restored.metadata["restored_from"] == first.id
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
