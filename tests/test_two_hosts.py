"""Two hosts on one PostgreSQL store: two Keepup homes in separate processes, sharing nothing but
the store. Host A runs an agent that snapshots its workspace with every checkpoint; host B, whose
home has never seen that workspace, restores the files and the conversation from the store alone,
and is refused while host A's run holds the thread's lease."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from runtime_persistence.testing import open_test_store

HOST_A = """
import json, pathlib, sys, time
from keepup.runtime import open_runtime
from runtime_execution import ScriptedAgent

url, ws, gate = sys.argv[1:4]

def wait_for_gate() -> str:
    \"\"\"Block until the test opens the gate.\"\"\"
    pathlib.Path(gate + ".waiting").write_text("1")
    while not pathlib.Path(gate).exists():
        time.sleep(0.05)
    return "opened"

agent = ScriptedAgent(
    [
        ("write_file", {"path": "notes.md", "content": "written on host A\\n"}),
        ("wait_for_gate", {}),
        ("write_file", {"path": "later.md", "content": "after the gate\\n"}),
    ],
    final_message="done",
)
with open_runtime(url) as rt:
    run = rt.runner(tools=[wait_for_gate], workspace=ws).start(agent)
    print(json.dumps({"thread": run.thread_id, "status": run.status.value}))
"""

HOST_B = """
import json, sys
from keepup.runtime import open_runtime
from runtime_core import RuntimeBusyError

url, = sys.argv[1:2]
with open_runtime(url) as rt:
    (thread,) = rt.checkpoints.list_threads()
    head = rt.checkpoints.get(thread.head)
    try:
        restored, files = rt.restore(head.id, workspace=True)
    except RuntimeBusyError as exc:
        print(json.dumps({"refused": str(exc)}))
        raise SystemExit(0)
    print(json.dumps({
        "from": head.id,
        "head": restored.id,
        "same_state": restored.state == head.state,
        "messages": len(restored.state["messages"]),
        "created": sorted(files.created),
        "changed": sorted(files.changed),
        "shared": rt.snapshots(head.workspace.workspace)._shared_commits(),
        "commit": head.workspace.commit,
    }))
"""


def _host(script: str, home: Path, *args: str, **popen: Any) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPUP_")}
    env["KEEPUP_HOME"] = str(home)
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    parsed: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return parsed


def test_host_b_restores_host_a_files_and_conversation_and_waits_for_its_lease(tmp_path: Path) -> None:
    with open_test_store("postgres", tmp_path) as pg:
        assert pg.url is not None
        ws = tmp_path / "ws"
        ws.mkdir()
        (ws / "README.md").write_text("the project\n")
        gate = tmp_path / "gate"
        host_a = _host(HOST_A, tmp_path / "home-a", pg.url, str(ws), str(gate))
        try:
            deadline = time.monotonic() + 90
            while not Path(f"{gate}.waiting").exists():
                assert host_a.poll() is None, host_a.communicate()[1]
                assert time.monotonic() < deadline, "host A never reached the gate"
                time.sleep(0.05)
            busy = _result(_host(HOST_B, tmp_path / "home-b", pg.url))
            assert "held by run" in busy["refused"]
            assert (ws / "notes.md").read_text() == "written on host A\n"  # B touched nothing
        finally:
            gate.write_text("open")
        done = _result(host_a)
        assert done["status"] == "completed"

        # host B's machine: its copy of the workspace is stale, and its home never snapshotted it
        for name in ("notes.md", "later.md"):
            (ws / name).unlink()
        (ws / "README.md").write_text("edited on host B\n")
        assert not (tmp_path / "home-b" / "shadow").exists() or not any(
            (tmp_path / "home-b" / "shadow").iterdir()
        )
        restored = _result(_host(HOST_B, tmp_path / "home-b", pg.url))
        assert restored["same_state"] and restored["messages"] > 3
        assert restored["created"] == ["later.md", "notes.md"] and restored["changed"] == ["README.md"]
        assert restored["commit"] in restored["shared"]
        assert (ws / "notes.md").read_text() == "written on host A\n"
        assert (ws / "later.md").read_text() == "after the gate\n"
        assert (ws / "README.md").read_text() == "the project\n"
