"""``keepup checkpoint export``/``import`` carry the files of workspace snapshots: an exported
thread diffs and restores with the same files on a fresh home; a diff whose files are nowhere
still shows the state diff and names the snapshots it lacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from keepup.cli import app
from keepup.demo import run_demo
from keepup.runtime import open_runtime
from typer.testing import CliRunner


def _json(home: Path, *args: str) -> Any:
    env = {"KEEPUP_HOME": str(home), "KEEPUP_STORE_URL": None, "KEEPUP_DEBUG": None}
    result = CliRunner().invoke(app, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_an_exported_thread_diffs_and_restores_its_files_on_a_fresh_home(tmp_path: Path) -> None:
    home_a, home_b = tmp_path / "home-a", tmp_path / "home-b"
    with open_runtime(home=home_a) as runtime:
        report = run_demo(runtime)
    file = tmp_path / "thread.keepup"
    exported = _json(home_a, "checkpoint", "export", str(file))
    assert exported["snapshot_packs"] == 1 and exported["missing_snapshots"] == []
    imported = _json(home_b, "checkpoint", "import", str(file))
    assert imported["snapshot_packs"] == 1
    ws = Path(report.workspace)
    diff_a = _json(home_a, "checkpoint", "diff", report.last_good, report.failed)
    diff_b = _json(home_b, "checkpoint", "diff", report.last_good, report.failed)
    assert diff_b == diff_a and diff_b["files"] and diff_b["missing_snapshots"] == []
    (ws / "calc.py").write_text("broken on purpose\n")
    restored = _json(home_b, "checkpoint", "restore", report.last_good, "--workspace")
    assert restored["workspace"]["changed"] == ["calc.py"]
    assert (ws / "calc.py").read_text() != "broken on purpose\n"


def test_a_diff_without_the_files_still_shows_the_state_and_names_what_is_missing(tmp_path: Path) -> None:
    home_a, home_b = tmp_path / "home-a", tmp_path / "home-b"
    with open_runtime(home=home_a) as runtime:
        report = run_demo(runtime)
    shutil.rmtree(home_a / "shadow")  # the snapshots are gone from the only home that had them
    file = tmp_path / "thread.keepup"
    exported = _json(home_a, "checkpoint", "export", str(file))
    assert exported["snapshot_packs"] == 0 and exported["missing_snapshots"]
    _json(home_b, "checkpoint", "import", str(file))
    diff = _json(home_b, "checkpoint", "diff", report.last_good, report.failed)
    assert diff["changes"] and diff["files"] is None
    old = _json(home_b, "checkpoint", "show", report.last_good)["workspace"]["commit"]
    assert old in diff["missing_snapshots"]
    env = {"KEEPUP_HOME": str(home_b), "KEEPUP_STORE_URL": None, "KEEPUP_DEBUG": None}
    text = CliRunner().invoke(app, ["checkpoint", "diff", report.last_good, report.failed], env=env)
    assert text.exit_code == 0 and "neither in this home nor in the store" in text.stdout
