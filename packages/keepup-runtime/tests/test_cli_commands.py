"""Every verb of the ``keepup`` command, in process (typer's CliRunner) on a temporary Keepup home.

The end-to-end tests in the repository's ``tests/test_cli_e2e.py`` run the installed command as a
subprocess; these are the fast, detailed ones."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from keepup._cli import options
from keepup._cli.exit_codes import ExitCode
from keepup.cli import app
from keepup.demo import DEMO_AGENT_NAME, REPORT_KEY, DemoReport, demo_agent, run_demo
from keepup.runtime import open_runtime
from runtime_core import new_id
from runtime_execution import ScriptedAgent
from typer.testing import CliRunner, Result


def invoke(home: Path, *args: str, input: str | None = None, store: str | None = None) -> Result:
    env = {"KEEPUP_HOME": str(home), "KEEPUP_STORE_URL": store, "KEEPUP_DEBUG": None}
    return CliRunner().invoke(app, list(args), env=env, input=input)


def ok(home: Path, *args: str) -> str:
    result = invoke(home, *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def data(home: Path, *args: str) -> Any:
    return json.loads(ok(home, *args, "--json"))


def failure(home: Path, *args: str, code: ExitCode, store: str | None = None) -> str:
    """Run a command that must fail with ``code``; return its one stderr line."""
    result = invoke(home, *args, store=store)
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("keepup: ")
    return lines[0]


@dataclass
class Demo:
    home: Path
    report: DemoReport


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """A home in which the demo ran once (for commands that only read)."""
    home = tmp_path_factory.mktemp("demo-home")
    with open_runtime(home=home) as runtime:
        report = run_demo(runtime)
    yield Demo(home, report)


@pytest.fixture
def fresh(tmp_path: Path) -> Demo:
    """A home of its own in which the demo ran (for commands that change things)."""
    home = tmp_path / "home"
    with open_runtime(home=home) as runtime:
        report = run_demo(runtime)
    return Demo(home, report)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "empty-home"


# threads ----------------------------------------------------------------------------------------


def test_thread_list_and_show(demo: Demo) -> None:
    listed = data(demo.home, "thread", "list")
    assert [t["id"] for t in listed["threads"]] == [demo.report.thread_id]
    shown = data(demo.home, "thread", "show", demo.report.thread_id)
    assert shown["thread"]["name"] == "keepup demo"
    assert shown["head"]["id"] == demo.report.failed
    assert shown["lease"] is None
    assert demo.report.thread_id in ok(demo.home, "thread", "list")


def test_thread_rename_copy_delete(fresh: Demo) -> None:
    tid = fresh.report.thread_id
    assert data(fresh.home, "thread", "rename", tid, "renamed")["thread"]["name"] == "renamed"
    copy = data(fresh.home, "thread", "copy", tid, "--name", "copied")["thread"]
    assert copy["name"] == "copied" and copy["id"] != tid
    assert len(data(fresh.home, "checkpoint", "list", copy["id"])["checkpoints"]) == len(
        fresh.report.checkpoints
    )
    assert data(fresh.home, "thread", "delete", copy["id"]) == {"deleted": copy["id"]}
    failure(fresh.home, "thread", "show", copy["id"], code=ExitCode.NOT_FOUND)


# checkpoints ------------------------------------------------------------------------------------


def test_checkpoint_list_is_newest_first_with_snapshots(demo: Demo) -> None:
    listed = data(demo.home, "checkpoint", "list", demo.report.thread_id)
    ids = [c["id"] for c in listed["checkpoints"]]
    assert ids == [c.id for c in reversed(demo.report.checkpoints)]
    assert all(c["workspace"] is not None for c in listed["checkpoints"])
    assert listed["checkpoints"][0]["status"] == "failed"


def test_checkpoint_show_includes_the_conversation(demo: Demo) -> None:
    shown = data(demo.home, "checkpoint", "show", demo.report.failed)
    assert shown["id"] == demo.report.failed
    assert shown["state"]["status"] == "failed"
    assert any(m["role"] == "user" for m in shown["state"]["messages"])
    bare = data(demo.home, "checkpoint", "show", demo.report.failed, "--no-state")
    assert "state" not in bare
    assert "conversation" in ok(demo.home, "checkpoint", "show", demo.report.failed)


def test_checkpoint_diff_shows_state_and_files(demo: Demo) -> None:
    diff = data(demo.home, "checkpoint", "diff", demo.report.last_good, demo.report.failed)
    assert {"path": "status", "kind": "changed", "old": "running", "new": "failed"} in diff["changes"]
    assert [f["path"] for f in diff["files"]] == ["calc.py"]
    patched = data(demo.home, "checkpoint", "diff", demo.report.last_good, demo.report.failed, "--patch")
    assert "sum((a, b), 1)" in patched["files"][0]["patch"]


def test_checkpoint_replay_walks_the_lineage_in_order(demo: Demo) -> None:
    first, last = demo.report.checkpoints[0].id, demo.report.failed
    forward = data(demo.home, "checkpoint", "replay", first, last)["checkpoints"]
    assert [c["id"] for c in forward] == [c.id for c in demo.report.checkpoints]
    backward = data(demo.home, "checkpoint", "replay", first, last, "--reverse")["checkpoints"]
    assert [c["id"] for c in backward] == [c.id for c in reversed(demo.report.checkpoints)]


def test_checkpoint_restore_with_workspace_brings_back_files_and_conversation(fresh: Demo) -> None:
    calc = Path(fresh.report.workspace) / "calc.py"
    assert "sum((a, b), 1)" in calc.read_text()
    out = data(fresh.home, "checkpoint", "restore", fresh.report.last_good, "--workspace")
    assert out["restored_from"] == fresh.report.last_good
    assert out["checkpoint"]["source"] == "restore"
    assert out["workspace"]["changed"] == ["calc.py"]
    assert out["workspace"]["rescue_commit"] is not None
    assert "return a + b" in calc.read_text()
    head = data(fresh.home, "thread", "show", fresh.report.thread_id)["head"]
    assert head["id"] == out["checkpoint"]["id"]
    assert head["status"] == "running"  # the conversation is back at the good point


def test_checkpoint_restore_without_workspace_leaves_files_alone(fresh: Demo) -> None:
    calc = Path(fresh.report.workspace) / "calc.py"
    before = calc.read_text()
    out = data(fresh.home, "checkpoint", "restore", fresh.report.last_good)
    assert out["workspace"] is None
    assert calc.read_text() == before


def test_checkpoint_fork_starts_a_thread_from_the_checkpoint(fresh: Demo) -> None:
    thread = data(fresh.home, "checkpoint", "fork", fresh.report.last_good, "--name", "retry")["thread"]
    assert thread["forked_from"] == fresh.report.last_good
    assert thread["parent_thread_id"] == fresh.report.thread_id
    assert thread["name"] == "retry"


def test_checkpoint_prune_dry_run_removes_nothing_then_prune_removes(fresh: Demo) -> None:
    tid = fresh.report.thread_id
    total = len(fresh.report.checkpoints)
    plan = data(fresh.home, "checkpoint", "prune", tid, "--keep-last", "2", "--dry-run")
    assert plan["dry_run"] is True and len(plan["removed"]) == total - 2
    assert len(data(fresh.home, "checkpoint", "list", tid)["checkpoints"]) == total
    done = data(fresh.home, "checkpoint", "prune", tid, "--keep-last", "2")
    assert sorted(done["removed"]) == sorted(plan["removed"])
    assert len(data(fresh.home, "checkpoint", "list", tid)["checkpoints"]) == 2


def test_checkpoint_prune_needs_a_rule(demo: Demo) -> None:
    line = failure(demo.home, "checkpoint", "prune", demo.report.thread_id, code=ExitCode.INVALID)
    assert "--keep-last" in line


def test_checkpoint_prune_rejects_a_malformed_age(demo: Demo) -> None:
    failure(
        demo.home, "checkpoint", "prune", demo.report.thread_id, "--older-than", "soon", code=ExitCode.INVALID
    )


# artifacts --------------------------------------------------------------------------------------


def test_artifact_versions_and_list_show_the_demo_reports(demo: Demo) -> None:
    tid = demo.report.thread_id
    versions = data(demo.home, "artifact", "versions", tid, REPORT_KEY)["versions"]
    assert [v["version"] for v in versions] == [0, 1, 2, 3]
    assert {v["artifact_type"] for v in versions} == {"test_report@1"}
    assert not any(v["quarantined"] for v in versions)
    listed = data(demo.home, "artifact", "list", tid)["artifacts"]
    assert [(a["key"], a["version"]) for a in listed] == [(REPORT_KEY, 3)]


def test_artifact_get_returns_the_content(demo: Demo) -> None:
    tid = demo.report.thread_id
    raw = ok(demo.home, "artifact", "get", tid, REPORT_KEY, "--version", "3")
    body = json.loads(raw)
    assert body["type"] == "test_report@1"
    assert body["body"]["summary"]["failed"] == 1
    got = data(demo.home, "artifact", "get", tid, REPORT_KEY, "--version", "0")
    assert got["artifact"]["version"] == 0
    assert json.loads(got["text"])["body"]["summary"] == {
        "total": 1,
        "passed": 1,
        "failed": 0,
        "errors": 0,
        "skipped": 0,
    }


def test_artifact_put_get_delete(home: Path, tmp_path: Path) -> None:
    src = tmp_path / "report.md"
    src.write_text("# hello\n")
    put = data(
        home,
        "artifact",
        "put",
        "scope-a",
        "docs/report.md",
        str(src),
        "--media-type",
        "text/markdown",
        "--meta",
        "by=test",
    )
    assert put["artifact"]["version"] == 0
    assert put["artifact"]["metadata"] == {"by": "test"}
    out = tmp_path / "copy.md"
    got = data(home, "artifact", "get", "scope-a", "docs/report.md", "--output", str(out))
    assert got["output"] == str(out) and got["text"] is None
    assert out.read_text() == "# hello\n"
    src.write_text("# hello again\n")
    assert data(home, "artifact", "put", "scope-a", "docs/report.md", str(src))["artifact"]["version"] == 1
    assert data(home, "artifact", "delete", "scope-a", "docs/report.md", "--version", "0")["deleted"] == 1
    assert [
        v["version"] for v in data(home, "artifact", "versions", "scope-a", "docs/report.md")["versions"]
    ] == [1]
    assert data(home, "artifact", "delete", "scope-a", "docs/report.md")["deleted"] == 1
    failure(home, "artifact", "get", "scope-a", "docs/report.md", code=ExitCode.NOT_FOUND)


def test_artifact_put_from_stdin(home: Path) -> None:
    result = invoke(home, "artifact", "put", "s", "notes.txt", "-", "--json", input="from stdin\n")
    assert result.exit_code == 0, result.stderr
    assert ok(home, "artifact", "get", "s", "notes.txt") == "from stdin\n"


def test_invalid_typed_artifact_is_stored_quarantined(home: Path, tmp_path: Path) -> None:
    body = tmp_path / "bad.json"
    body.write_text(json.dumps({"summary": {"total": "many"}}))
    put = data(home, "artifact", "put", "s", "reports/bad.json", str(body), "--type", "test_report@1")
    assert put["artifact"]["quarantined"] is True
    assert put["artifact"]["quarantine_reason"]


def test_typed_artifact_file_must_hold_a_json_object(home: Path, tmp_path: Path) -> None:
    body = tmp_path / "bad.json"
    body.write_text("[1, 2]")
    failure(home, "artifact", "put", "s", "k.json", str(body), "--type", "report@1", code=ExitCode.INVALID)


def test_artifact_put_of_a_missing_file_is_an_os_error(home: Path, tmp_path: Path) -> None:
    failure(home, "artifact", "put", "s", "k", str(tmp_path / "missing"), code=ExitCode.OS_ERROR)


# snapshots --------------------------------------------------------------------------------------


def test_snapshot_list_and_diff(demo: Demo) -> None:
    ws = demo.report.workspace
    snaps = data(demo.home, "snapshot", "list", ws)
    assert snaps["workspace"] == ws
    commits = [s["commit"] for s in snaps["snapshots"]]
    good = next(c for c in demo.report.checkpoints if c.id == demo.report.last_good).workspace
    failed = demo.report.checkpoints[-1].workspace
    assert good is not None and failed is not None
    assert good.commit in commits and failed.commit in commits
    diff = data(demo.home, "snapshot", "diff", ws, good.commit, failed.commit)
    assert [f["path"] for f in diff["files"]] == ["calc.py"]
    assert data(demo.home, "snapshot", "diff", ws, failed.commit)["files"] == []


def test_snapshot_restore_dry_run_then_restore(fresh: Demo) -> None:
    ws = fresh.report.workspace
    good = next(c for c in fresh.report.checkpoints if c.id == fresh.report.last_good).workspace
    assert good is not None
    calc = Path(ws) / "calc.py"
    broken = calc.read_text()
    plan = data(fresh.home, "snapshot", "restore", ws, good.commit, "--dry-run")["report"]
    assert plan["dry_run"] is True and plan["changed"] == ["calc.py"]
    assert calc.read_text() == broken
    done = data(fresh.home, "snapshot", "restore", ws, good.commit)["report"]
    assert done["changed"] == ["calc.py"]
    assert "return a + b" in calc.read_text()
    rescued = data(fresh.home, "snapshot", "restore", ws, done["rescue_commit"], "--path", "calc.py")[
        "report"
    ]
    assert rescued["changed"] == ["calc.py"]
    assert calc.read_text() == broken


def test_snapshot_of_a_missing_folder_is_invalid(home: Path, tmp_path: Path) -> None:
    failure(home, "snapshot", "list", str(tmp_path / "nope"), code=ExitCode.INVALID)


# runs -------------------------------------------------------------------------------------------


def test_run_list_and_show(demo: Demo) -> None:
    runs = data(demo.home, "run", "list")["runs"]
    assert [r["id"] for r in runs] == [demo.report.run_id]
    assert runs[0]["status"] == "failed" and runs[0]["error"]["recoverable"] is False
    assert data(demo.home, "run", "list", "--status", "completed")["runs"] == []
    shown = data(demo.home, "run", "show", demo.report.run_id)
    assert shown["run"]["agent"] == DEMO_AGENT_NAME
    assert shown["lease"] is None
    assert shown["head"]["id"] == demo.report.failed


def test_run_resume_of_a_run_that_failed_for_good_is_refused(demo: Demo) -> None:
    line = failure(demo.home, "run", "resume", demo.report.run_id, code=ExitCode.RECOVERY_REFUSED)
    assert "non-recoverable" in line


def test_run_cancel_of_a_finished_run_leaves_it_as_it_is(demo: Demo) -> None:
    assert data(demo.home, "run", "cancel", demo.report.run_id)["run"]["status"] == "failed"


def test_run_resume_continues_a_recoverably_failed_demo_run(home: Path) -> None:
    with open_runtime(home=home) as runtime:
        thread = runtime.checkpoints.create_thread("resumable")
        ws = home / "ws"
        ws.mkdir(parents=True)
        from keepup.demo import demo_tools

        crashing = ScriptedAgent(demo_agent().steps, name=DEMO_AGENT_NAME, fail_at=2, raise_error=True)
        runner = runtime.runner(demo_tools(runtime, thread.id, str(ws)), ws)
        first = runner.start(crashing, thread.id)
    assert first.status.value == "failed" and first.error is not None and first.error.recoverable
    out = data(home, "run", "resume", first.id)
    assert out["resumed"] == first.id
    assert out["run"]["metadata"]["resumed_from"] == first.id
    assert out["run"]["status"] == "failed"  # the script's own failure at its last step
    assert out["run"]["error"]["code"] == "tests_failed"
    assert "sum((a, b), 1)" in (ws / "calc.py").read_text()


def test_run_cancel_of_a_crashed_run_cancels_it(home: Path) -> None:
    from runtime_core import Run, RunStatus
    from runtime_core.clock import utc_now

    with open_runtime(home=home) as runtime:
        thread = runtime.checkpoints.create_thread("crashed")
        run = runtime.runs.create(
            Run(
                id=new_id(), thread_id=thread.id, agent="gone", status=RunStatus.RUNNING, started_at=utc_now()
            )
        )
    assert data(home, "run", "cancel", run.id)["run"]["status"] == "cancelled"


def test_unknown_agent_cannot_be_resumed(home: Path) -> None:
    from runtime_core import Run, RunError, RunStatus
    from runtime_core.clock import utc_now

    with open_runtime(home=home) as runtime:
        thread = runtime.checkpoints.create_thread("x")
        run = runtime.runs.create(
            Run(
                id=new_id(),
                thread_id=thread.id,
                agent="somebody-else",
                status=RunStatus.FAILED,
                started_at=utc_now(),
                error=RunError("boom"),
            )
        )
    line = failure(home, "run", "resume", run.id, code=ExitCode.NOT_FOUND)
    assert "keepup.agents" in line


# the lease --------------------------------------------------------------------------------------


def test_restore_is_refused_while_a_run_holds_the_thread(fresh: Demo) -> None:
    run_id = new_id()
    with open_runtime(home=fresh.home) as runtime:
        runtime.leases.acquire(fresh.report.thread_id, f"{run_id}+cafe", timedelta(minutes=5))
    calc = Path(fresh.report.workspace) / "calc.py"
    before = calc.read_text()
    line = failure(
        fresh.home,
        "checkpoint",
        "restore",
        fresh.report.last_good,
        "--workspace",
        "--yes",
        code=ExitCode.BUSY,
    )
    assert run_id in line
    assert f"keepup run cancel {run_id}" in line
    assert calc.read_text() == before  # no file was touched
    head = data(fresh.home, "thread", "show", fresh.report.thread_id)
    assert head["head"]["id"] == fresh.report.failed
    assert head["lease"]["holder"] == f"{run_id}+cafe"
    failure(fresh.home, "thread", "delete", fresh.report.thread_id, code=ExitCode.BUSY)
    failure(fresh.home, "checkpoint", "prune", fresh.report.thread_id, "--keep-last", "1", code=ExitCode.BUSY)
    failure(fresh.home, "checkpoint", "delete", fresh.report.checkpoints[1].id, code=ExitCode.BUSY)


# store ------------------------------------------------------------------------------------------


def test_store_info_and_migrate(demo: Demo) -> None:
    info = data(demo.home, "store", "info")
    assert info["driver"] == "SqliteDriver"
    assert info["url"].endswith(str(demo.home / "keepup.db"))
    assert info["schema"]["current"] == info["schema"]["latest"]
    migrated = data(demo.home, "store", "migrate")
    assert migrated == {"url": info["url"], "schema": info["schema"], "migrated": False}


def test_store_migrate_on_a_new_store_reports_the_migration(home: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    result = invoke(home, "--store", url, "store", "migrate", "--json")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["migrated"] is True and out["schema"]["current"] == out["schema"]["latest"]


def test_store_migrate_on_a_store_without_schema(home: Path) -> None:
    out = json.loads(invoke(home, "--store", "memory://", "store", "migrate", "--json").stdout)
    assert out == {"url": "memory://", "schema": None, "migrated": False}


def test_store_gc_collects_what_a_deleted_thread_left(fresh: Demo) -> None:
    ok(fresh.home, "thread", "delete", fresh.report.thread_id)
    dry = data(fresh.home, "store", "gc", "--grace", "0s", "--dry-run")
    assert dry["dry_run"] is True and dry["blobs_removed"] > 0
    done = data(fresh.home, "store", "gc", "--grace", "0s")
    assert done["blobs_removed"] == dry["blobs_removed"] and done["bytes_freed"] > 0
    assert data(fresh.home, "store", "gc", "--grace", "0s")["blobs_removed"] == 0


def test_store_doctor_reports_every_check(home: Path) -> None:
    out = data(home, "store", "doctor")
    assert out["ok"] is True
    assert [c["name"] for c in out["checks"]] == [
        "home",
        "store",
        "permissions",
        "git",
        "shadow snapshots",
        "disk",
    ]


def test_store_doctor_fails_and_says_what_to_do_when_the_store_is_down(home: Path) -> None:
    result = invoke(home, "--store", "postgresql://postgres@127.0.0.1:9/test", "store", "doctor", "--json")
    assert result.exit_code == ExitCode.UNHEALTHY
    out = json.loads(result.stdout)
    store = next(c for c in out["checks"] if c["name"] == "store")
    assert store["status"] == "fail" and "server is running" in store["fix"]
    assert result.stderr.strip().count("\n") == 0


# confirmation -----------------------------------------------------------------------------------


def test_destructive_commands_run_without_prompting_when_stdin_is_not_a_terminal(fresh: Demo) -> None:
    result = invoke(fresh.home, "thread", "delete", fresh.report.thread_id)  # no --yes, no input
    assert result.exit_code == 0, result.stderr
    assert "?" not in result.stderr
    failure(fresh.home, "thread", "show", fresh.report.thread_id, code=ExitCode.NOT_FOUND)


def test_declining_the_prompt_on_a_terminal_changes_nothing(
    fresh: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(options, "_stdin_is_terminal", lambda: True)
    result = invoke(fresh.home, "thread", "delete", fresh.report.thread_id, input="n\n")
    assert result.exit_code == ExitCode.DECLINED
    assert "Delete thread" in result.stderr
    assert (
        data(fresh.home, "thread", "show", fresh.report.thread_id)["thread"]["id"] == fresh.report.thread_id
    )


def test_yes_skips_the_prompt_on_a_terminal(fresh: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(options, "_stdin_is_terminal", lambda: True)
    result = invoke(fresh.home, "thread", "delete", fresh.report.thread_id, "--yes")
    assert result.exit_code == 0, result.stderr
    assert "Delete thread" not in result.stderr


# bad input --------------------------------------------------------------------------------------


def test_unknown_ids_exit_not_found(demo: Demo) -> None:
    unknown = new_id()
    for args in (
        ("checkpoint", "show", unknown),
        ("checkpoint", "restore", unknown),
        ("checkpoint", "fork", unknown),
        ("thread", "show", unknown),
        ("run", "show", unknown),
        ("checkpoint", "list", unknown),
    ):
        line = failure(demo.home, *args, code=ExitCode.NOT_FOUND)
        assert unknown in line


def test_malformed_ids_exit_invalid(demo: Demo) -> None:
    for args in (("checkpoint", "show", "nope"), ("thread", "show", "1234"), ("run", "show", "x")):
        failure(demo.home, *args, code=ExitCode.INVALID)


def test_malformed_store_url_exits_invalid(home: Path) -> None:
    line = failure(home, "--store", "not-a-url", "thread", "list", code=ExitCode.INVALID)
    assert "store URL" in line


def test_unknown_store_scheme_exits_driver_unavailable(home: Path) -> None:
    failure(home, "--store", "nosuch://x", "thread", "list", code=ExitCode.DRIVER_UNAVAILABLE)


def test_store_url_from_the_environment_is_used(home: Path) -> None:
    failure(home, "thread", "list", store="nosuch://x", code=ExitCode.DRIVER_UNAVAILABLE)


def test_a_postgres_url_where_nothing_listens_exits_driver_unavailable(home: Path) -> None:
    line = failure(
        home,
        "--store",
        "postgresql://postgres@127.0.0.1:9/test",
        "thread",
        "list",
        code=ExitCode.DRIVER_UNAVAILABLE,
    )
    assert "127.0.0.1" in line


def test_usage_errors_exit_2(home: Path) -> None:
    assert invoke(home, "checkpoint", "show").exit_code == ExitCode.USAGE
    assert invoke(home, "checkpoint", "frobnicate").exit_code == ExitCode.USAGE


def test_demo_refuses_a_workspace_that_is_not_empty(home: Path, tmp_path: Path) -> None:
    ws = tmp_path / "busy"
    ws.mkdir()
    (ws / "keep.txt").write_text("mine")
    failure(home, "demo", "--workspace", str(ws), code=ExitCode.INVALID)
    assert (ws / "keep.txt").read_text() == "mine"
    assert data(home, "thread", "list")["threads"] == []


# export and import ------------------------------------------------------------------------------


def test_export_then_import_into_another_store_keeps_every_checkpoint(demo: Demo, tmp_path: Path) -> None:
    path = tmp_path / "threads.keepup"
    exported = data(demo.home, "checkpoint", "export", str(path), "--thread", demo.report.thread_id)
    assert exported["threads"] == 1 and exported["checkpoints"] == len(demo.report.checkpoints)
    assert exported["bytes"] == path.stat().st_size
    assert not path.with_name(path.name + ".partial").exists()
    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = invoke(demo.home, "--store", other, "checkpoint", "import", str(path), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["checkpoints"] == len(demo.report.checkpoints)
    listed = invoke(demo.home, "--store", other, "checkpoint", "list", demo.report.thread_id, "--json")
    assert [c["id"] for c in json.loads(listed.stdout)["checkpoints"]] == [
        c.id for c in reversed(demo.report.checkpoints)
    ]
    shown = invoke(demo.home, "--store", other, "checkpoint", "show", demo.report.failed, "--json")
    assert (
        json.loads(shown.stdout)["state"]
        == data(demo.home, "checkpoint", "show", demo.report.failed)["state"]
    )


def test_import_of_a_thread_that_exists_is_a_conflict(demo: Demo, tmp_path: Path) -> None:
    path = tmp_path / "threads.keepup"
    ok(demo.home, "checkpoint", "export", str(path))
    line = failure(demo.home, "checkpoint", "import", str(path), code=ExitCode.CONFLICT)
    assert demo.report.thread_id in line


def test_import_of_a_damaged_export_is_refused(demo: Demo, tmp_path: Path) -> None:
    path = tmp_path / "threads.keepup"
    ok(demo.home, "checkpoint", "export", str(path))
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    other = f"sqlite:///{tmp_path / 'other.db'}"
    failure(demo.home, "checkpoint", "import", str(path), code=ExitCode.CORRUPT, store=other)


def test_import_of_a_missing_file_is_an_os_error(home: Path, tmp_path: Path) -> None:
    failure(home, "checkpoint", "import", str(tmp_path / "missing.keepup"), code=ExitCode.OS_ERROR)


def test_export_of_an_unknown_thread_leaves_no_file(demo: Demo, tmp_path: Path) -> None:
    path = tmp_path / "threads.keepup"
    failure(demo.home, "checkpoint", "export", str(path), "--thread", new_id(), code=ExitCode.NOT_FOUND)
    assert not path.exists() and not path.with_name(path.name + ".partial").exists()


def test_checkpoint_delete_removes_one_checkpoint_and_releases_its_snapshot(fresh: Demo) -> None:
    victim = fresh.report.checkpoints[2]
    with open_runtime(home=fresh.home) as runtime:
        assert victim.id in runtime.snapshots(fresh.report.workspace).kept()
    assert data(fresh.home, "checkpoint", "delete", victim.id) == {
        "deleted": victim.id,
        "thread_id": fresh.report.thread_id,
    }
    failure(fresh.home, "checkpoint", "show", victim.id, code=ExitCode.NOT_FOUND)
    listed = [c["id"] for c in data(fresh.home, "checkpoint", "list", fresh.report.thread_id)["checkpoints"]]
    assert victim.id not in listed and len(listed) == len(fresh.report.checkpoints) - 1
    with open_runtime(home=fresh.home) as runtime:
        assert victim.id not in runtime.snapshots(fresh.report.workspace).kept()


def test_checkpoint_delete_refuses_the_head(demo: Demo) -> None:
    line = failure(demo.home, "checkpoint", "delete", demo.report.failed, code=ExitCode.INVALID)
    assert "head" in line


# the exit-code mapping --------------------------------------------------------------------------


def test_every_core_error_type_has_its_own_exit_code() -> None:
    import runtime_core
    from keepup._cli.exit_codes import exit_code_for

    errors = [
        cls
        for cls in vars(runtime_core).values()
        if isinstance(cls, type)
        and issubclass(cls, runtime_core.KeepupError)
        and cls is not runtime_core.KeepupError
    ]
    codes = {cls: exit_code_for(cls("x")) for cls in errors}
    assert len(set(codes.values())) == len(errors), codes
    assert ExitCode.KEEPUP_ERROR not in codes.values()
    assert exit_code_for(runtime_core.KeepupError("x")) == ExitCode.KEEPUP_ERROR
    assert exit_code_for(PermissionError("x")) == ExitCode.OS_ERROR
    assert exit_code_for(KeyError("x")) == ExitCode.INTERNAL


def test_a_busy_message_names_the_run_not_the_runner_token() -> None:
    from keepup._cli.exit_codes import describe
    from runtime_core import RuntimeBusyError

    run_id = new_id()
    line = describe(RuntimeBusyError("thread t is busy", thread_id=new_id(), holder=f"{run_id}+abcd"))
    assert line.startswith("keepup: refused: ") and "\n" not in line
    assert f"keepup run cancel {run_id}`" in line


def test_an_unexpected_error_is_one_line_that_asks_for_a_report() -> None:
    from keepup._cli.exit_codes import describe

    line = describe(KeyError("boom\nsecond line"))
    assert "\n" not in line and "bug" in line and "KEEPUP_DEBUG=1" in line


def test_starting_the_command_does_not_import_rich() -> None:
    """rich is a third of the start-up and ``--json`` output never needs it: it is imported on
    first use (tables, progress bars, markup), not with the command."""
    code = "import sys, keepup.cli; print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
