"""The installed ``keepup`` command end to end, as a newcomer runs it: real subprocesses on a
temporary Keepup home, real SQLite, real git, and PostgreSQL when KEEPUP_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import json
import os
import pty
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from keepup.runtime import open_runtime
from runtime_core import new_id
from runtime_persistence.storage.stores import open_store
from runtime_persistence.testing import isolated_url

BIN = Path(sys.executable).parent
KEEPUP = BIN / "keepup"
TIMEOUT = 180


def environment(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if (not k.startswith("KEEPUP_") or k.startswith("KEEPUP_TEST_")) and k != "UV_RUN_RECURSION_DEPTH"
    }
    env["KEEPUP_HOME"] = str(home)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "200"
    return env


def run(
    home: Path, command: str | list[str], *, stdin: int | None = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    """Run a command line exactly as given (a string goes through the shell, like a copy-paste)."""
    return subprocess.run(
        command,
        shell=isinstance(command, str),
        env=environment(home),
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def printed_commands(stdout: str) -> list[str]:
    """The commands the demo tells a newcomer to run next, as printed."""
    after = stdout.split("Next, try:", 1)[1]
    return [line.strip() for line in after.splitlines() if line.strip().startswith("keepup ")]


def assert_one_error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("keepup: ")
    return lines[0]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "keepup-home"


def test_keepup_is_installed_as_a_console_script() -> None:
    assert KEEPUP.is_file() or shutil.which("keepup")


def test_demo_then_every_printed_command_works_verbatim(home: Path) -> None:
    demo = run(home, "keepup demo")
    assert demo.returncode == 0, demo.stderr
    assert "Traceback" not in demo.stderr
    commands = printed_commands(demo.stdout)
    assert [shlex.split(c)[1:3] for c in commands] == [
        ["checkpoint", "list"],
        ["checkpoint", "diff"],
        ["artifact", "versions"],
        ["checkpoint", "restore"],
        ["checkpoint", "fork"],
        ["run", "start"],
    ]
    (workspace,) = (home / "demo").iterdir()
    calc = workspace / "calc.py"
    assert "sum((a, b), 1)" in calc.read_text()  # the failed step's files
    outputs = {}
    for command in commands:
        result = run(home, command)
        assert result.returncode == 0, (command, result.stderr)
        assert "Traceback" not in result.stderr
        outputs[shlex.split(command)[2]] = result.stdout  # the last, run start, under "start"
        if shlex.split(command)[2] == "restore":
            assert "return a + b" in calc.read_text()  # restore brought the good files back
    assert "calc.py" in outputs["diff"]
    assert "test_report@1" in outputs["versions"]
    assert " is completed after " in outputs["start"]  # the story ends with a passing run
    assert "sum((a, b))  # refactored" in calc.read_text()
    threads = json.loads(run(home, "keepup thread list --json").stdout)["threads"]
    names = sorted(t["name"] for t in threads)
    assert names[0] == "fork of keepup demo at step 4" or names[0].startswith("fork of keepup demo at step ")
    assert names[1:] == ["keepup demo", "retry"]
    head = json.loads(run(home, f"keepup thread show {threads[-1]['id']} --json").stdout)["head"]
    assert head["source"] == "restore" and head["status"] == "running"


def test_demo_on_postgres_with_store_option(home: Path, tmp_path: Path) -> None:
    if not os.environ.get("KEEPUP_TEST_POSTGRES_URL"):
        pytest.skip("KEEPUP_TEST_POSTGRES_URL is not set: no PostgreSQL server to run the demo against")
    url = isolated_url("postgres", tmp_path)
    try:
        demo = run(home, ["keepup", "--store", url, "demo"])
        assert demo.returncode == 0, demo.stderr
        commands = printed_commands(demo.stdout)
        assert commands and all(shlex.split(c)[1:3] == ["--store", url] for c in commands)
        for command in commands:
            result = run(home, command)
            assert result.returncode == 0, (command, result.stderr)
        info = json.loads(run(home, ["keepup", "--store", url, "store", "info", "--json"]).stdout)
        assert info["driver"] == "PostgresDriver"
        assert not (home / "keepup.db").exists()  # nothing went to the default store
    finally:
        driver = open_store(url)
        destroy = getattr(driver, "destroy", None)
        if destroy is not None:
            destroy()
        driver.close()


def test_bad_input_gives_one_line_and_its_exit_code(home: Path) -> None:
    unknown = new_id()
    assert_one_error_line(run(home, ["keepup", "checkpoint", "show", unknown]), 4)
    assert_one_error_line(run(home, ["keepup", "checkpoint", "show", "not-an-id"]), 3)
    assert_one_error_line(run(home, ["keepup", "--store", "definitely not a url", "thread", "list"]), 3)
    line = assert_one_error_line(
        run(home, ["keepup", "--store", "postgresql://postgres@127.0.0.1:9/test", "thread", "list"]), 8
    )
    assert "127.0.0.1" in line


def test_restore_is_refused_while_a_run_holds_the_thread(home: Path) -> None:
    run_id = new_id()
    with open_runtime(home=home) as runtime:
        thread = runtime.checkpoints.create_thread("held")
        cp = runtime.checkpoints.save(thread.id, {"messages": []})
        runtime.leases.acquire(thread.id, f"{run_id}+0001", timedelta(minutes=5))
    line = assert_one_error_line(run(home, ["keepup", "checkpoint", "restore", cp.id, "--yes"]), 7)
    assert run_id in line and "refused" in line
    with open_runtime(home=home) as runtime:
        assert runtime.checkpoints.get_thread(thread.id).head == cp.id  # nothing was written


def test_no_prompt_when_stdin_is_not_a_terminal(home: Path) -> None:
    with open_runtime(home=home) as runtime:
        thread = runtime.checkpoints.create_thread("doomed")
    result = run(
        home, ["keepup", "thread", "delete", thread.id], stdin=subprocess.PIPE
    )  # a pipe, never written
    assert result.returncode == 0, result.stderr
    assert "[y/N]" not in result.stderr


@pytest.fixture
def terminal() -> Iterator[tuple[int, int]]:
    main, secondary = pty.openpty()
    yield main, secondary
    os.close(main)
    os.close(secondary)


def test_a_terminal_is_asked_and_no_changes_nothing(home: Path, terminal: tuple[int, int]) -> None:
    main, secondary = terminal
    with open_runtime(home=home) as runtime:
        thread = runtime.checkpoints.create_thread("kept")
    os.write(main, b"n\n")
    result = run(home, ["keepup", "thread", "delete", thread.id], stdin=secondary)
    assert result.returncode == 14, result.stderr
    assert "Delete thread" in result.stderr
    with open_runtime(home=home) as runtime:
        assert runtime.checkpoints.get_thread(thread.id).name == "kept"


def test_yes_skips_the_question_on_a_terminal(home: Path, terminal: tuple[int, int]) -> None:
    _, secondary = terminal
    with open_runtime(home=home) as runtime:
        thread = runtime.checkpoints.create_thread("doomed")
    result = run(home, ["keepup", "thread", "delete", thread.id, "--yes"], stdin=secondary)
    assert result.returncode == 0, result.stderr
    assert "Delete thread" not in result.stderr
