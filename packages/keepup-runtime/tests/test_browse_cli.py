"""The ``keepup browse`` command: registered lazily, Textual never imported by anything else, a
clear error without the ``tui`` extra, and no store created just to look at it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from keepup.cli import app
from typer.testing import CliRunner


def run_python(code: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"KEEPUP_HOME": str(home), "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_browse_is_listed_in_the_help() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "browse" in result.stdout


def test_importing_keepup_and_running_other_commands_never_imports_textual(tmp_path: Path) -> None:
    code = (
        "import sys, keepup\n"
        "keepup.open_runtime, keepup.Checkpoints\n"
        "assert 'textual' not in sys.modules, 'import keepup'\n"
        "from keepup.cli import main\n"
        "sys.argv = ['keepup', 'demo']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "sys.argv = ['keepup', 'thread', 'list']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "assert 'textual' not in sys.modules, 'keepup demo / thread list'\n"
        "print('clean')\n"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("clean")


def test_browse_without_textual_names_the_extra_to_install(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['textual'] = None  # as if it were not installed\n"
        "from keepup.cli import main\n"
        "sys.argv = ['keepup', 'browse']\n"
        "main()\n"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 8, result.stderr  # DRIVER_UNAVAILABLE, like a missing driver
    assert result.stderr.strip() == (
        "keepup: error: keepup browse needs Textual, which is not installed: pip install 'keepup-runtime[tui]'"
    )


@pytest.mark.parametrize("before", [False, True], ids=["browse --store", "--store browse"])
def test_browse_of_a_missing_store_creates_nothing(tmp_path: Path, before: bool) -> None:
    store = tmp_path / "nothing-here.db"
    option = ["--store", f"sqlite:///{store}"]
    args = [*option, "browse"] if before else ["browse", *option]
    result = CliRunner().invoke(app, args, env={"KEEPUP_HOME": str(tmp_path)})
    assert result.exit_code == 4, result.stderr
    assert f"no store at sqlite:///{store}" in result.stderr
    assert not store.exists()


def test_browse_outside_a_terminal_says_it_is_interactive(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["--store", "memory://", "thread", "list"]).exit_code == 0
    result = runner.invoke(app, ["--store", "memory://", "browse"], env={"KEEPUP_HOME": str(tmp_path)})
    assert result.exit_code == 3, result.stderr
    assert "keepup browse is interactive: run it in a terminal" in result.stderr
