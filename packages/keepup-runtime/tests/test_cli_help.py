"""Help and usage errors look like those of other command lines: one-line usage errors (exit 2)
without Rich boxes; help without typer's ``<str>``/``<bool>``/``{THREAD}`` labels, never breaking
a word."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from keepup._cli.exit_codes import ExitCode
from keepup.cli import app
from typer.testing import CliRunner, Result


def invoke(home: Path, *args: str, columns: int = 200) -> Result:
    env = {"KEEPUP_HOME": str(home), "KEEPUP_STORE_URL": None, "KEEPUP_DEBUG": None, "COLUMNS": str(columns)}
    return CliRunner().invoke(app, list(args), env=env)


def _installed(distribution: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(distribution)
    except PackageNotFoundError:
        return False
    return True


def _paths() -> list[tuple[str, ...]]:
    """Every command and subcommand, but not a plugin command (``keepup serve``) whose package is
    not installed: that one only says which package to install (tests/test_cli_plugins.py)."""
    from keepup._cli.command import PLUGIN_COMMANDS

    root: Any = typer.main.get_command(app)
    out: list[tuple[str, ...]] = [()]
    for name in root.list_commands(None):
        if name in PLUGIN_COMMANDS and not _installed(PLUGIN_COMMANDS[name]):
            continue
        out.append((name,))
        for sub in getattr(root.get_command(None, name), "commands", {}):
            out.append((name, sub))
    return out


@pytest.mark.parametrize(
    "args",
    [
        ("checkpoint", "frobnicate"),
        ("checkpoint", "show"),
        ("thread", "list", "--bogus"),
        ("thread", "list", "-n", "0"),
        ("run", "list", "--status", "nosuch"),
    ],
)
def test_a_usage_error_is_one_line_and_exits_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = invoke(tmp_path, *args)
    assert result.exit_code == ExitCode.USAGE, (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("keepup: usage: ") and "--help" in lines[0]
    assert not set("╭╰│─") & set(result.stderr)


@pytest.mark.parametrize("path", _paths(), ids=lambda p: " ".join(p) or "keepup")
def test_help_has_plain_labels_and_never_breaks_a_word(tmp_path: Path, path: tuple[str, ...]) -> None:
    narrow = invoke(tmp_path, *path, "--help", columns=60)
    wide = invoke(tmp_path, *path, "--help", columns=200)
    assert narrow.exit_code == 0 and wide.exit_code == 0, narrow.stderr
    text = narrow.stdout
    for noise in ("<bool>", "<str>", "<int", "{", "[[", "╭", "│"):
        assert noise not in text, (noise, text)
    assert set(text.split()) <= set(wide.stdout.split()), set(text.split()) - set(wide.stdout.split())


def test_a_missing_artifact_is_named_in_plain_words(tmp_path: Path) -> None:
    from keepup.runtime import open_runtime

    with open_runtime(home=tmp_path):  # a store, so that what is missing is the artifact
        pass
    result = invoke(tmp_path, "artifact", "get", "scope", "nosuch.json")
    assert result.exit_code == ExitCode.NOT_FOUND
    assert "no artifact 'nosuch.json' in scope 'scope'" in result.stderr
    assert "no any" not in result.stderr
