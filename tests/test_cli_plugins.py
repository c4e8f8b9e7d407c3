"""Commands from other distributions (the ``keepup.commands`` entry-point group): listed by
``keepup --help`` without being imported, imported only when they run, never shadowing a
built-in; a known one that is not installed names the package to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

KEEPUP = Path(sys.executable).parent / "keepup"

PLUGIN = '''
import os
from pathlib import Path

import typer

Path(os.environ["PLUGIN_MARKER"]).write_text("imported")
app = typer.Typer()


@app.command("hello")
def hello(name: str = "world") -> None:
    """Say hello (a plugin command)."""
    print(f"hello {name} from a plugin")
'''


@pytest.fixture
def plugin_env(tmp_path: Path) -> dict[str, str]:
    """A distribution ``fakeplug`` on PYTHONPATH adding ``hello`` (and trying to take ``thread``)."""
    site = tmp_path / "site"
    info = site / "fakeplug-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fakeplug\nVersion: 1.0\nSummary: Greets whoever asks.\n"
    )
    (info / "entry_points.txt").write_text(
        "[keepup.commands]\nhello = fakeplug_cmd:app\nthread = fakeplug_cmd:app\n"
    )
    (site / "fakeplug_cmd.py").write_text(PLUGIN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPUP_")}
    env["PYTHONPATH"] = str(site)
    env["KEEPUP_HOME"] = str(tmp_path / "home")
    env["PLUGIN_MARKER"] = str(tmp_path / "marker")
    env["COLUMNS"] = "200"
    return env


def keepup(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KEEPUP), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_help_lists_a_plugin_command_without_importing_it(plugin_env: dict[str, str]) -> None:
    done = keepup(plugin_env, "--help")
    assert done.returncode == 0, done.stderr
    assert "hello" in done.stdout and "Greets whoever asks. (from fakeplug)" in done.stdout
    assert not Path(plugin_env["PLUGIN_MARKER"]).exists()


def test_a_plugin_command_runs_when_asked(plugin_env: dict[str, str]) -> None:
    done = keepup(plugin_env, "hello", "--name", "you")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hello you from a plugin"
    assert Path(plugin_env["PLUGIN_MARKER"]).read_text() == "imported"


def test_a_plugin_never_shadows_a_built_in_command(plugin_env: dict[str, str]) -> None:
    done = keepup(plugin_env, "thread", "--help")
    assert done.returncode == 0 and "Threads" in done.stdout
    assert not Path(plugin_env["PLUGIN_MARKER"]).exists()


def test_serve_without_keepup_server_names_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from keepup._cli import command
    from keepup.cli import app

    # As in an environment without keepup-server: no distribution offers `serve`.
    monkeypatch.setattr(command, "_plugins", lambda: {})
    monkeypatch.setenv("KEEPUP_HOME", str(tmp_path))
    result: Any = CliRunner().invoke(app, ["serve", "--port", "1"])
    assert result.exit_code == 8
    assert "needs the keepup-server package: pip install keepup-server" in result.output
    listed: Any = CliRunner().invoke(app, ["--help"])
    assert (
        "serve" in listed.output
        and "(from keepup-server, not installed: pip install keepup-server)" in listed.output
    )


def test_the_known_plugin_commands_are_the_entry_points_the_workspace_declares() -> None:
    import tomllib

    from keepup._cli.command import PLUGIN_COMMANDS, PLUGIN_GROUP

    root = Path(__file__).resolve().parent.parent
    declared: dict[str, str] = {}
    for pyproject in sorted(root.glob("packages/*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        for command in project.get("entry-points", {}).get(PLUGIN_GROUP, {}):
            declared[command] = project["name"]
    assert declared == PLUGIN_COMMANDS


def test_an_installed_plugin_command_is_described_by_its_distribution(tmp_path: Path) -> None:
    from importlib.metadata import distribution

    summary = " ".join((distribution("keepup-server").metadata["Summary"] or "").split())
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPUP_")}
    env["KEEPUP_HOME"] = str(tmp_path)
    env["COLUMNS"] = "400"
    done = keepup(env, "--help")
    assert done.returncode == 0, done.stderr
    assert f"{summary} (from keepup-server)" in " ".join(done.stdout.split())
