"""Every verb of ``keepup task`` and ``keepup session`` on every available store (file, SQLite,
PostgreSQL, MySQL, Redis), in process, each ``--json`` output checked against its shape in
docs/cli.md; and the Runtime wiring behind them."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from keepup._cli.exit_codes import ExitCode
from keepup.cli import app
from keepup.runtime import open_runtime
from runtime_core import ManualClock, SessionStatus, TaskStatus
from runtime_persistence import AsyncSessions, AsyncTasks, Sessions
from runtime_persistence.storage.drivers.sqlite import SqliteDriver
from runtime_persistence.testing import TestStore, open_test_store, store_fixture
from typer.testing import CliRunner, Result

DOC = Path(__file__).resolve().parents[3] / "docs" / "cli.md"
FIXTURES = Path(__file__).resolve().parents[2] / "runtime-persistence" / "tests" / "fixtures" / "kilocode"
OLD_TASKS = (
    Path(__file__).resolve().parents[2] / "runtime-persistence" / "tests" / "data" / "old-tasks-store.sqlite"
)
_SCHEMA_RE = re.compile(r"<!-- schema: (.+?) -->\s*```json\n(.*?)```", re.DOTALL)


def _shapes() -> dict[str, dict[str, Any]]:
    blocks = {name.strip(): json.loads(body) for name, body in _SCHEMA_RE.findall(DOC.read_text())}
    defs = blocks.pop("$defs")
    return {name: {**schema, "$defs": defs} for name, schema in blocks.items()}


SHAPES = _shapes()
MINE = {name for name in SHAPES if name.split()[0] in ("task", "session")} | {
    "store backup",
    "store verify",
    "store restore-backup",
}

cli_store = store_fixture("file", "sqlite", "postgres", "mysql", "redis")


class Cli:
    def __init__(self, home: Path, url: str) -> None:
        self.home, self.url = home, url
        self.seen: set[str] = set()

    def run(self, *args: str) -> Result:
        env = {"KEEPUP_HOME": str(self.home), "KEEPUP_STORE_URL": self.url, "KEEPUP_DEBUG": None}
        return CliRunner().invoke(app, list(args), env=env)

    def json(self, command: str, *args: str) -> Any:
        result = self.run(*command.split(), *args, "--json")
        assert result.exit_code == 0, (command, args, result.stderr)
        out = json.loads(result.stdout)
        errors = list(Draft202012Validator(SHAPES[command]).iter_errors(out))
        assert not errors, f"{command}: " + "; ".join(e.message for e in errors[:3])
        self.seen.add(command)
        return out

    def json_fails(self, code: ExitCode, command: str, *args: str) -> Any:
        """The --json output of a command that exits with ``code`` (checked against its shape)."""
        result = self.run(*command.split(), *args, "--json")
        assert result.exit_code == code, (command, args, result.exit_code, result.stderr)
        out = json.loads(result.stdout)
        assert not list(Draft202012Validator(SHAPES[command]).iter_errors(out))
        return out

    def fails(self, code: ExitCode, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        return result.stderr


@pytest.fixture
def cli(cli_store: TestStore, tmp_path: Path) -> Cli:
    assert cli_store.url is not None
    return Cli(tmp_path / "home", cli_store.url)


def test_every_task_verb(cli: Cli) -> None:
    root = cli.json("task add", "Ship the release", "--description", "all of it", "--meta", "prio=1")["task"]
    assert (root["status"], root["metadata"], root["description"]) == ("pending", {"prio": 1}, "all of it")
    kid = cli.json("task add", "Write notes", "--parent", root["id"][:13], "--assignee", "ann")["task"]
    leaf = cli.json("task add", "Proofread", "--parent", kid["id"])["task"]
    other = cli.json("task add", "Unrelated")["task"]
    assert kid["parent_id"] == root["id"]

    assert cli.json("task start", kid["id"])["task"]["status"] == "running"
    assert cli.json("task progress", kid["id"], "40%")["task"]["progress"] == 0.4
    cli.json("task log", kid["id"], "drafted the intro", "--level", "warning")
    assert [line["message"] for line in cli.json("task log", kid["id"])["logs"]] == ["drafted the intro"]
    shown = cli.json("task show", kid["id"])
    assert [c["id"] for c in shown["children"]] == [leaf["id"]] and shown["logs"][0]["level"] == "warning"
    assert cli.json("task assign", leaf["id"], "bo")["task"]["assignee"] == "bo"
    assert cli.json("task assign", leaf["id"], "--none")["task"]["assignee"] is None
    assert (
        cli.json("task edit", leaf["id"], "--title", "Proofread twice")["task"]["title"] == "Proofread twice"
    )
    assert [t["id"] for t in cli.json("task list", "--status", "running")["tasks"]] == [kid["id"]]
    assert [t["id"] for t in cli.json("task list", "--parent", root["id"])["tasks"]] == [kid["id"]]
    tree = cli.json("task tree")["tree"]
    assert [(n["depth"], n["task"]["id"]) for n in tree] == [
        (0, root["id"]),
        (1, kid["id"]),
        (2, leaf["id"]),
        (0, other["id"]),
    ]

    assert "its own ancestor" in cli.fails(
        ExitCode.INVALID, "task", "move", root["id"], "--parent", leaf["id"]
    )
    assert cli.json("task move", leaf["id"], "--root")["task"]["parent_id"] is None
    assert cli.json("task move", leaf["id"], "--parent", other["id"])["task"]["parent_id"] == other["id"]

    assert "cannot become completed" in cli.fails(ExitCode.INVALID, "task", "done", root["id"])
    assert cli.json("task done", kid["id"], "-m", "shipped")["task"]["progress"] == 1.0
    assert cli.json("task cancel", root["id"])["task"]["status"] == "cancelled"
    cli.json("task start", other["id"])
    assert cli.json("task fail", other["id"], "-m", "broke")["task"]["status"] == "failed"
    assert cli.json("task start", other["id"])["task"]["status"] == "running"  # a retry

    assert "--recursive" in cli.fails(ExitCode.INVALID, "task", "delete", other["id"])
    plan = cli.json("task delete", other["id"], "--recursive", "--dry-run")
    assert plan["dry_run"] and [n["task"]["id"] for n in plan["deleted"]] == [other["id"], leaf["id"]]
    cli.json("task delete", other["id"], "--recursive", "--yes")
    cli.fails(ExitCode.NOT_FOUND, "task", "show", leaf["id"])
    assert {n["task"]["id"] for n in cli.json("task tree")["tree"]} == {root["id"], kid["id"]}


def test_task_migrate_indexes_the_roots_of_an_old_store(cli: Cli) -> None:
    old = SqliteDriver(OLD_TASKS, read_only=True)
    try:
        with open_runtime(cli.url, cli.home) as runtime:
            for namespace in old.namespaces():
                for entry in old.scan(namespace):
                    runtime.driver.put(namespace, entry.key, entry.value)
    finally:
        old.close()
    assert cli.json("task migrate", "--dry-run") == {"dry_run": True, "migrated": 3}
    assert cli.json("task migrate")["migrated"] == 3
    assert cli.json("task migrate")["migrated"] == 0
    roots = [n["task"]["title"] for n in cli.json("task tree")["tree"] if n["depth"] == 0]
    assert roots == ["old root 0", "old root 1", "old root 2"]


def test_task_import_kilocode_twice(cli: Cli) -> None:
    before = len(cli.json("task tree")["tree"])
    first = cli.json("task import kilocode", str(FIXTURES / "damaged"))
    assert first["imported"] == 5 and first["path"].endswith("tasks.backup.json") and first["notes"]
    assert cli.json("task import kilocode", str(FIXTURES / "damaged"), "--dry-run")["imported"] == 0
    second = cli.json("task import kilocode", str(FIXTURES / "damaged"))
    assert (second["imported"], second["skipped"]) == (0, 5)
    assert len(cli.json("task tree")["tree"]) == before + 5
    cli.fails(ExitCode.CORRUPT, "task", "import", "kilocode", str(FIXTURES / "both_damaged"))


def test_every_session_verb(cli: Cli) -> None:
    past = ManualClock(datetime.now(UTC) - timedelta(hours=3))
    with open_runtime(cli.url, cli.home) as runtime:
        old = Sessions(runtime.driver, clock=past).open("quiet agent")
        done = Sessions(runtime.driver, clock=past).open("finished")
        Sessions(runtime.driver, clock=past).close(done.id)
        live = runtime.sessions.open("live agent")
        thread = runtime.checkpoints.create_thread("work").id
        runtime.sessions.link(live.id, thread_id=thread)
    listed = cli.json("session list")["sessions"]
    assert [s["id"] for s in listed] == [live.id, done.id, old.id]
    # ids made within one millisecond share their first 13 characters: type a prefix as long as
    # needed to be unique (at least 6), as a user reading `session list` would
    ids = [s["id"] for s in listed]
    n = next(n for n in range(6, 37) if sum(i.startswith(live.id[:n]) for i in ids) == 1)
    shown = cli.json("session show", live.id[:n].upper())["session"]
    assert shown["thread_ids"] == [thread] and shown["format_version"] == 2
    assert {s["id"]: s["due"] for s in listed} == {live.id: None, done.id: None, old.id: None}
    due = cli.json("session list", "--stale-after", "1h", "--purge-after", "2h")["sessions"]
    assert {s["id"]: s["due"] for s in due} == {live.id: None, done.id: "purge", old.id: "stale"}
    assert cli.json("session show", old.id, "--stale-after", "1h")["session"]["due"] == "stale"
    assert cli.json("session show", done.id, "--purge-after", "2h")["session"]["due"] == "purge"
    assert cli.json("session show", done.id, "--purge-after", "4h")["session"]["due"] is None
    assert cli.json("session show", old.id, "--purge-after", "1m")["session"]["due"] is None  # active
    table = cli.run("session", "list", "--purge-after", "2h")
    assert table.exit_code == 0 and "purge" in table.stdout
    would = cli.json("session close", live.id, "--dry-run")
    assert would["dry_run"] and would["session"]["status"] == "closed"
    assert cli.json("session show", live.id)["session"]["status"] == "active"  # nothing written
    cli.fails(ExitCode.INVALID, "session", "list", "--purge-after", "later")
    plan = cli.json("session sweep", "--stale-after", "1h", "--purge-after", "2h", "--dry-run")
    assert (plan["marked_stale"], plan["purged"]) == ([old.id], [done.id])
    swept = cli.json("session sweep", "--stale-after", "1h", "--purge-after", "2h")
    assert (swept["marked_stale"], swept["purged"]) == ([old.id], [done.id])
    assert cli.json("session list", "--status", "stale")["sessions"][0]["id"] == old.id
    assert cli.json("session show", old.id, "--stale-after", "1h")["session"]["due"] is None  # swept
    closed = cli.json("session close", live.id)["session"]
    assert closed["status"] == "closed" and closed["ended_at"] is not None
    assert cli.json("session migrate")["migrated"] == 0
    cli.fails(ExitCode.NOT_FOUND, "session", "show", done.id)
    cli.fails(ExitCode.INVALID, "session", "sweep", "--stale-after", "soon")


def test_every_documented_task_and_session_shape_is_exercised(cli_store: TestStore, tmp_path: Path) -> None:
    if cli_store.name != "sqlite":
        pytest.skip("checked once")
    assert cli_store.url is not None
    cli = Cli(tmp_path / "home", cli_store.url)
    test_every_task_verb(cli)
    test_task_import_kilocode_twice(cli)
    old_store = Cli(tmp_path / "home2", _fresh_sqlite(tmp_path))
    test_task_migrate_indexes_the_roots_of_an_old_store(old_store)
    cli.seen |= old_store.seen
    test_every_session_verb(cli)
    test_store_backup_verify_restore(cli_store, tmp_path / "b", cli)
    assert set(MINE) - cli.seen == set()


def _fresh_sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'old-tasks.db'}"


def test_the_runtime_wires_sessions_tasks_events_and_their_async_twins(tmp_path: Path) -> None:
    with open_runtime(home=tmp_path) as runtime:
        task = runtime.tasks.create("sync")
        assert isinstance(runtime.async_tasks, AsyncTasks) and isinstance(
            runtime.async_sessions, AsyncSessions
        )

        async def use() -> tuple[Any, Any]:
            got = await runtime.async_tasks.get(task.id)
            session = await runtime.async_sessions.open("async")
            return got, session

        got, session = asyncio.run(use())
        assert got == task
        assert runtime.sessions.get(session.id).name == "async"
        assert runtime.events is not None and runtime.async_events is not None
        assert runtime.tasks.transition(task.id, TaskStatus.RUNNING).status is TaskStatus.RUNNING


def test_a_runtime_sweeps_in_the_background_until_closed(tmp_path: Path) -> None:
    past = ManualClock(datetime.now(UTC) - timedelta(hours=2))
    runtime = open_runtime(home=tmp_path)
    quiet = Sessions(runtime.driver, clock=past).open()
    thread = runtime.start_sweeper(timedelta(milliseconds=20), stale_after=timedelta(hours=1))
    for _ in range(500):
        if runtime.sessions.get(quiet.id).status is SessionStatus.STALE:
            break
        time.sleep(0.01)
    assert runtime.sessions.get(quiet.id).status is SessionStatus.STALE
    runtime.close()
    assert not thread._thread.is_alive()


def test_store_backup_verify_restore(cli_store: TestStore, tmp_path: Path, cli: Cli | None = None) -> None:
    assert cli_store.url is not None
    cli = cli or Cli(tmp_path / "home", cli_store.url)
    task = cli.json("task add", "before the backup")["task"]
    made = cli.json("store backup", "--keep", "2")
    assert made["format"] == ("sqlite" if cli_store.name == "sqlite" else "portable")
    assert made["verify"]["ok"] and made["verify"]["records"] > 0 and made["verify"]["envelopes"] > 0
    assert cli.json("store verify")["ok"]
    assert cli.json("store verify", made["path"])["ok"]
    cli.json("task add", "after the backup")
    if cli_store.name == "sqlite":
        restored = cli.json("store restore-backup", made["path"], "--yes")
        assert restored["replaced"] is not None and Path(restored["replaced"]).is_file()
        assert [n["task"]["id"] for n in cli.json("task tree")["tree"]][-1] == task["id"]
        assert "after the backup" not in json.dumps(cli.json("task list"))
        made = cli.json("store backup", "--format", "portable")
        assert made["path"].endswith(".kbak")
    assert "not empty" in cli.fails(ExitCode.CONFLICT, "store", "restore-backup", made["path"], "--yes")
    with open_test_store(cli_store.name, tmp_path / "empty") as empty:
        assert empty.url is not None
        fresh = Cli(cli.home, empty.url)
        restored = fresh.json("store restore-backup", made["path"], "--yes")
        assert restored["restored"]["entries"] == made["verify"]["records"] and restored["replaced"] is None
        titles = [t["title"] for t in fresh.json("task list", "-n", "1000")["tasks"]]
        assert "before the backup" in titles and "after the backup" not in titles
        forced = fresh.json("store restore-backup", made["path"], "--yes", "--force")
        assert forced["restored"]["entries"] == restored["restored"]["entries"]
    damaged = tmp_path / "damaged.kbak"
    data = Path(made["path"]).read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    assert "truncated" in json.dumps(cli.json_fails(ExitCode.CORRUPT, "store verify", str(damaged)))
    assert "truncated" in cli.fails(ExitCode.CORRUPT, "store", "restore-backup", str(damaged), "--yes")
    tmp_path.mkdir(parents=True, exist_ok=True)
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"\xff" * 4096)
    cli.fails(ExitCode.CORRUPT, "store", "verify", str(broken))


def test_restore_backup_falls_back_to_the_previous_good_backup(cli_store: TestStore, tmp_path: Path) -> None:
    assert cli_store.url is not None
    cli = Cli(tmp_path / "home", cli_store.url)
    cli.json("task add", "in both backups")
    older = cli.json("store backup", "--format", "portable")["path"]
    cli.json("task add", "only in the newer backup")
    newer = cli.json("store backup", "--format", "portable")["path"]
    with open(newer, "r+b") as fh:
        fh.seek(100)
        byte = fh.read(1)
        fh.seek(100)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with open_test_store(cli_store.name, tmp_path / "empty") as empty:
        assert empty.url is not None
        other = Cli(cli.home, empty.url)
        # the newest backups of *this* store are looked for: the empty store has none
        assert "no backup" in other.fails(ExitCode.NOT_FOUND, "store", "restore-backup", "--yes")
    result = cli.run("store", "restore-backup", "--yes", "--force", "--json")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["backup"] == older and list(out["skipped"]) == [newer] and "checksum" in out["skipped"][newer]
    assert not list(Draft202012Validator(SHAPES["store restore-backup"]).iter_errors(out))
    said = cli.run("store", "restore-backup", "--yes", "--force")
    assert said.exit_code == 0 and f"skipped the backup {newer}" in said.stderr


def test_a_runner_given_a_session_links_its_runs_and_threads(tmp_path: Path) -> None:
    from runtime_core import ConflictError
    from runtime_execution import ScriptedAgent

    agent = ScriptedAgent([("missing_tool", {})], name="linker")
    with open_runtime(home=tmp_path) as runtime:
        session = runtime.sessions.open("agent host")
        run = runtime.runner(session_id=session.id).start(agent)
        linked = runtime.sessions.get(session.id)
        assert (linked.run_ids, linked.thread_ids) == ((run.id,), (run.thread_id,))
        assert [s.id for s in runtime.sessions.of_run(run.id)] == [session.id]
        unlinked = runtime.runner().start(agent)
        assert unlinked.id not in runtime.sessions.get(session.id).run_ids
        runtime.sessions.close(session.id)
        with pytest.raises(ConflictError):
            runtime.runner(session_id=session.id)
