"""The small rough edges of issue 18 item 10, each as a newcomer met it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from keepup._cli.exit_codes import ExitCode
from keepup.cli import app
from keepup.demo import run_demo
from keepup.runtime import open_runtime
from typer.testing import CliRunner, Result


def invoke(home: Path, *args: str) -> Result:
    env = {"KEEPUP_HOME": str(home), "KEEPUP_STORE_URL": None, "KEEPUP_DEBUG": None, "HOME": str(home.parent)}
    return CliRunner().invoke(app, list(args), env=env)


def ok(home: Path, *args: str) -> str:
    result = invoke(home, *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def data(home: Path, *args: str) -> Any:
    return json.loads(ok(home, *args, "--json"))


def test_renaming_a_thread_to_a_blank_name_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with open_runtime(home=home) as runtime:
        thread = runtime.checkpoints.create_thread("kept")
    for blank in ("", "   "):
        result = invoke(home, "thread", "rename", thread.id, blank)
        assert result.exit_code == ExitCode.INVALID, result.stderr
    assert data(home, "thread", "show", thread.id)["thread"]["name"] == "kept"


def test_a_fork_without_a_name_is_named_after_its_origin(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with open_runtime(home=home) as runtime:
        report = run_demo(runtime)
        step = runtime.checkpoints.get(report.last_good).step
    forked = data(home, "checkpoint", "fork", report.last_good)["thread"]
    assert forked["name"] == f"fork of keepup demo at step {step}"
    named = data(home, "checkpoint", "fork", report.last_good, "--name", "mine")["thread"]
    assert named["name"] == "mine"


def test_an_unregistered_artifact_type_is_refused_unless_allowed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    body = tmp_path / "body.json"
    body.write_text('{"a": 1}')
    result = invoke(home, "artifact", "put", "s", "k.json", str(body), "--type", "nosuch@1")
    assert result.exit_code == ExitCode.INVALID, result.stderr
    assert "--allow-unregistered" in result.stderr
    assert data(home, "artifact", "list", "s")["artifacts"] == []
    stored = data(
        home, "artifact", "put", "s", "k.json", str(body), "--type", "nosuch@1", "--allow-unregistered"
    )
    assert stored["artifact"]["quarantined"] is True


def test_thread_show_prints_metadata_as_json(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with open_runtime(home=home) as runtime:
        thread = runtime.checkpoints.create_thread("meta", metadata={"team": "ops", "n": 2})
    lines = dict(line.split("\t", 1) for line in ok(home, "thread", "show", thread.id).splitlines())
    assert json.loads(lines["metadata"]) == {"n": 2, "team": "ops"}


def test_export_and_import_report_the_same_bytes_and_count_in_good_english(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with open_runtime(home=home) as runtime:
        run_demo(runtime)
    file = tmp_path / "x.keepup"
    exported = data(home, "checkpoint", "export", str(file))
    imported = data(tmp_path / "other", "checkpoint", "import", str(file))
    assert exported["bytes"] == imported["bytes"] == file.stat().st_size
    text = ok(home, "checkpoint", "export", str(tmp_path / "y.keepup"))
    assert text.startswith("exported 1 thread (") and "1 threads" not in text
    text = ok(tmp_path / "third", "checkpoint", "import", str(file))
    assert text.startswith("imported 1 thread (") and f"{file.stat().st_size} bytes" in text


def test_listing_the_snapshots_of_a_home_folder_is_an_empty_list(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fake_home = tmp_path
    result = invoke(home, "snapshot", "list", str(fake_home))
    assert result.exit_code == 0, result.stderr
    assert "refusing" not in result.stdout + result.stderr
    assert "never snapshots" in result.stdout
    assert data(home, "snapshot", "list", str(fake_home))["snapshots"] == []


def test_store_info_says_what_the_store_holds(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with open_runtime(home=home) as runtime:
        report = run_demo(runtime)
        n_checkpoints = len(runtime.checkpoints.list(report.thread_id, limit=1000))
        n_versions = len(runtime.artifacts.versions(report.thread_id, "reports/tests.json"))
    holds = data(home, "store", "info")["holds"]
    assert holds["threads"]["count"] == 1 and holds["threads"]["bytes"] > 0
    assert holds["checkpoints"]["count"] == n_checkpoints and holds["checkpoints"]["bytes"] > 0
    assert holds["runs"]["count"] == 1
    assert holds["artifact versions"]["count"] >= n_versions
    assert holds["snapshot repositories"]["count"] == 1 and holds["snapshot repositories"]["bytes"] > 0
    assert {"blobs", "sessions", "tasks", "events"} <= set(holds)
    lines = dict(line.split("\t", 1) for line in ok(home, "store", "info").splitlines() if "\t" in line)
    assert lines["threads"].startswith("1\t")
