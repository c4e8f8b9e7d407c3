"""The demo: what it leaves behind (checkpoints, snapshots, typed test reports, a failure) and
the commands it prints."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from keepup.cli import app
from keepup.demo import DEMO_AGENT_NAME, REPORT_KEY, DemoReport, next_commands, run_demo
from keepup.demo import tests_passed as passed
from keepup.runtime import open_runtime
from runtime_core import RunState, RunStatus
from typer.testing import CliRunner


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> DemoReport:
    home = tmp_path_factory.mktemp("demo")
    with open_runtime(home=home) as runtime:
        return run_demo(runtime, home / "my-workspace")


def test_the_run_fails_for_good_after_four_steps_that_edit_files(report: DemoReport) -> None:
    assert report.status is RunStatus.FAILED
    assert report.error is not None and "broke" in report.error
    final = RunState.from_channels(report.checkpoints[-1].state)
    assert final.error is not None and final.error.recoverable is False
    edits = [c for c in final.completed_tool_calls if c.name in ("write_file", "edit_file")]
    assert len(edits) >= 4 and all(c.success for c in edits)


def test_every_checkpoint_has_a_workspace_snapshot(report: DemoReport) -> None:
    assert len(report.checkpoints) >= 5
    assert all(cp.workspace is not None for cp in report.checkpoints)
    assert all(cp.workspace.workspace == report.workspace for cp in report.checkpoints if cp.workspace)
    commits = [cp.workspace.commit for cp in report.checkpoints[1:] if cp.workspace]
    assert len(set(commits)) >= 5  # the files changed from step to step


def test_each_step_stored_a_typed_test_report(report: DemoReport) -> None:
    assert [v.version for v in report.reports] == [0, 1, 2, 3]
    assert all(v.artifact_type == "test_report@1" and not v.quarantined for v in report.reports)
    with open_runtime(home=Path(report.workspace).parent) as runtime:
        summaries = [
            runtime.artifacts.get_typed(report.thread_id, REPORT_KEY, v.version)[1].body["summary"]
            for v in report.reports
        ]
    assert [(s["total"], s["passed"], s["failed"]) for s in summaries] == [
        (1, 1, 0),
        (2, 2, 0),
        (3, 3, 0),
        (3, 2, 1),
    ]


def test_last_good_is_the_newest_checkpoint_whose_passed(report: DemoReport) -> None:
    ids = [cp.id for cp in report.checkpoints]
    good = ids.index(report.last_good)
    assert passed(report.checkpoints[good]) is True
    assert all(passed(cp) is not True for cp in report.checkpoints[good + 1 :])
    assert report.failed == ids[-1]


def test_the_workspace_is_the_one_asked_for(report: DemoReport) -> None:
    assert Path(report.workspace).name == "my-workspace"
    assert "sum((a, b), 1)" in (Path(report.workspace) / "calc.py").read_text()


def test_next_commands_quote_the_store_url() -> None:
    fake = DemoReport(
        thread_id="t",
        run_id="r",
        status=RunStatus.FAILED,
        error="x",
        workspace="/w",
        store_url="u",
        checkpoints=(),
        reports=(),
        last_good="g",
        failed="f",
    )
    url = "postgresql://me@host/db?prefix=a_&application_name=my app"  # a password would be masked
    for suggestion in next_commands(fake, url):
        assert shlex.split(suggestion.command)[:3] == ["keepup", "--store", url]
    assert [shlex.split(c.command)[1:3] for c in next_commands(fake)] == [
        ["checkpoint", "list"],
        ["checkpoint", "diff"],
        ["artifact", "versions"],
        ["checkpoint", "restore"],
        ["checkpoint", "fork"],
        ["run", "start"],
    ]


def test_keepup_demo_prints_the_thread_and_the_next_commands(tmp_path: Path) -> None:
    env = {"KEEPUP_HOME": str(tmp_path), "KEEPUP_STORE_URL": None, "UV_RUN_RECURSION_DEPTH": None}
    result = CliRunner().invoke(app, ["demo"], env=env)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    threads = CliRunner().invoke(
        app, ["thread", "list", "--json"], env={"KEEPUP_HOME": str(tmp_path), "KEEPUP_STORE_URL": None}
    )
    (thread,) = json.loads(threads.stdout)["threads"]
    assert thread["metadata"] == {"agent": DEMO_AGENT_NAME}
    assert thread["id"] in out and "← last good" in out and "← failed" in out
    printed = [
        line.strip()
        for line in out.split("Next, try:", 1)[1].splitlines()
        if line.strip().startswith("keepup ")
    ]
    assert len(printed) == 6
    assert printed[0] == f"keepup checkpoint list {thread['id']}"


def test_under_uv_run_the_printed_commands_use_uv_run(tmp_path: Path) -> None:
    env = {"KEEPUP_HOME": str(tmp_path), "KEEPUP_STORE_URL": None, "UV_RUN_RECURSION_DEPTH": "1"}
    result = CliRunner().invoke(app, ["demo", "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    commands = [n["command"] for n in json.loads(result.stdout)["next"]]
    assert commands and all(c.startswith("uv run keepup ") for c in commands)
