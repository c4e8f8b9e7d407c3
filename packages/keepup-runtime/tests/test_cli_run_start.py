"""``keepup run start``: run an agent again after a restore or a fork; agents come from the
``keepup.agents`` entry-point group (the demo's are built in); Ctrl-C names the run to resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from keepup._cli.exit_codes import ExitCode
from keepup.cli import app
from keepup.demo import DemoReport, run_demo
from keepup.demo import tests_passed as passed_tests
from keepup.runtime import open_runtime
from typer.testing import CliRunner, Result

AGENTS_MODULE = """
import time
from runtime_execution import ScriptedAgent


def quick():
    return ScriptedAgent(["Hello from an entry point."], name="quick-agent", final_message="done")


class Sleepy(ScriptedAgent):
    def step(self, state, context):
        time.sleep(60)
        return super().step(state, context)


def sleepy():
    return Sleepy(["never reached"], name="sleepy-agent")
"""


def invoke(home: Path, *args: str) -> Result:
    env = {"KEEPUP_HOME": str(home), "KEEPUP_STORE_URL": None, "KEEPUP_DEBUG": None}
    return CliRunner().invoke(app, list(args), env=env)


def data(home: Path, *args: str) -> Any:
    result = invoke(home, *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, DemoReport]:
    home = tmp_path / "home"
    with open_runtime(home=home) as runtime:
        report = run_demo(runtime)
    return home, report


@pytest.fixture
def agents_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding a distribution that registers two agents in ``keepup.agents``."""
    folder = tmp_path / "site"
    (folder / "demo_agents_dist-1.0.dist-info").mkdir(parents=True)
    (folder / "demo_agents_dist-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: demo-agents-dist\nVersion: 1.0\n"
    )
    (folder / "demo_agents_dist-1.0.dist-info" / "entry_points.txt").write_text(
        "[keepup.agents]\nquick-agent = my_agents:quick\nsleepy-agent = my_agents:sleepy\n"
    )
    (folder / "my_agents.py").write_text(AGENTS_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    return folder


def _head_passed(home: Path, thread_id: str) -> bool | None:
    with open_runtime(home=home) as runtime:
        head = runtime.checkpoints.latest(thread_id)
        assert head is not None
        return passed_tests(head)


def test_the_demo_reruns_from_its_last_good_checkpoint_to_a_passing_run(
    demo: tuple[Path, DemoReport],
) -> None:
    home, report = demo
    done = data(home, "run", "start", "--from", report.last_good[:13].upper(), "--agent", "keepup-demo-fixed")
    run = done["run"]
    assert run["status"] == "completed" and run["agent"] == "keepup-demo-fixed"
    assert run["thread_id"] != report.thread_id
    assert _head_passed(home, run["thread_id"]) is True
    calc = (Path(report.workspace) / "calc.py").read_text()
    assert "sum((a, b))  # refactored" in calc and "sum((a, b), 1)" not in calc
    thread = data(home, "thread", "show", run["thread_id"])["thread"]
    assert thread["name"].startswith("fork of keepup demo at step ")


def test_after_a_restore_the_agent_runs_again_on_the_thread(demo: tuple[Path, DemoReport]) -> None:
    home, report = demo
    assert invoke(home, "checkpoint", "restore", report.last_good, "--workspace", "--yes").exit_code == 0
    run = data(home, "run", "start", "--thread", report.thread_id, "--agent", "keepup-demo-fixed")["run"]
    assert run["status"] == "completed" and run["thread_id"] == report.thread_id
    assert _head_passed(home, report.thread_id) is True


def test_an_agent_registered_by_entry_point_runs(tmp_path: Path, agents_on_path: Path) -> None:
    home = tmp_path / "home"
    with open_runtime(home=home) as runtime:
        thread = runtime.checkpoints.create_thread("mine")
    run = data(home, "run", "start", "--thread", thread.id, "--agent", "quick-agent", "--input", "hi")["run"]
    assert run["status"] == "completed" and run["agent"] == "quick-agent"
    result = invoke(home, "run", "start", "--thread", thread.id, "--agent", "nosuch")
    assert result.exit_code == ExitCode.NOT_FOUND and "keepup.agents" in result.stderr


def test_run_start_needs_exactly_one_of_thread_and_from(demo: tuple[Path, DemoReport]) -> None:
    home, report = demo
    for args in ((), ("--thread", report.thread_id, "--from", report.last_good)):
        result = invoke(home, "run", "start", "--agent", "keepup-demo-fixed", *args)
        assert result.exit_code == ExitCode.USAGE, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_ctrl_c_names_the_run_and_the_command_that_resumes_it(tmp_path: Path, agents_on_path: Path) -> None:
    home = tmp_path / "home"
    with open_runtime(home=home) as runtime:
        thread = runtime.checkpoints.create_thread("sleepy")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPUP_")}
    env.update(KEEPUP_HOME=str(home), PYTHONPATH=str(agents_on_path))
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "keepup"),
            "run",
            "start",
            "--thread",
            thread.id,
            "--agent",
            "sleepy-agent",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open_runtime(home=home) as runtime:
            if runtime.runs.list(thread_id=thread.id):
                break
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.INTERRUPTED, (out, err)
    with open_runtime(home=home) as runtime:
        (run,) = runtime.runs.list(thread_id=thread.id)
    assert f"keepup run resume {run.id}" in err, err
    assert "Traceback" not in err
    assert "interrupted_at" in run.metadata and not run.status.finished
    listed = invoke(home, "run", "list").stdout.splitlines()
    assert listed[0].split("\t")[3] == "running (interrupted)", listed
