"""Two hosts on one PostgreSQL store: two Keepup homes in separate processes, sharing nothing but
the store. Host A runs an agent that snapshots its workspace with every checkpoint; host B, whose
home has never seen that workspace, restores the files and the conversation from the store alone,
and is refused while host A's run holds the thread's lease."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from runtime_persistence.testing import open_test_store
from runtime_persistence.testing.seaweedfs import start_seaweedfs

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


def _host(script: str, home: Path, *args: str, env_extra: dict[str, str]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEEPUP_", "AWS_"))}
    env.update(env_extra, KEEPUP_HOME=str(home))
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


@pytest.mark.parametrize("blobs", ["postgres", "seaweedfs"])
def test_host_b_restores_host_a_files_and_conversation_and_waits_for_its_lease(
    tmp_path: Path, blobs: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``seaweedfs`` the store's blob area (and so the snapshot packs) is a bucket of a real
    SeaweedFS server on loopback: one PostgreSQL plus one object store, as a team deploys it."""
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(open_test_store("postgres", tmp_path))
        assert pg.url is not None
        url, env = pg.url, {}
        if blobs == "seaweedfs":
            server = stack.enter_context(start_seaweedfs(tmp_path / "seaweedfs"))
            url, env = f"{pg.url}&blobs=s3://keepup-two-hosts/{tmp_path.name}", server.env
        _two_hosts(tmp_path, url, env)
        if blobs == "seaweedfs":
            assert _bucket_holds_packs(url, env, monkeypatch)


def _bucket_holds_packs(url: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> bool:
    from runtime_persistence import open_store
    from runtime_persistence.shadow_git import SnapshotPacks

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    driver = open_store(url)
    try:
        digests = {rec.digest for rec in SnapshotPacks(driver).records()}
        in_bucket = {info.digest for info in driver.list_blobs()}
        in_database = {info.digest for info in driver.records.list_blobs()}  # type: ignore[attr-defined]
        return bool(digests) and digests <= in_bucket and not digests & in_database
    finally:
        driver.close()


def _two_hosts(tmp_path: Path, url: str, env: dict[str, str]) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "README.md").write_text("the project\n")
    gate = tmp_path / "gate"
    host_a = _host(HOST_A, tmp_path / "home-a", url, str(ws), str(gate), env_extra=env)
    try:
        deadline = time.monotonic() + 90
        while not Path(f"{gate}.waiting").exists():
            assert host_a.poll() is None, host_a.communicate()[1]
            assert time.monotonic() < deadline, "host A never reached the gate"
            time.sleep(0.05)
        busy = _result(_host(HOST_B, tmp_path / "home-b", url, env_extra=env))
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
    restored = _result(_host(HOST_B, tmp_path / "home-b", url, env_extra=env))
    assert restored["same_state"] and restored["messages"] > 3
    assert restored["created"] == ["later.md", "notes.md"] and restored["changed"] == ["README.md"]
    assert restored["commit"] in restored["shared"]
    assert (ws / "notes.md").read_text() == "written on host A\n"
    assert (ws / "later.md").read_text() == "after the gate\n"
    assert (ws / "README.md").read_text() == "the project\n"
