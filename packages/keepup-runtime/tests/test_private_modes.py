"""Issue 11, hole 7 (storage and CLI part): other local users cannot read Keepup's data. A new
home is 0700; the SQLite store (with its -wal/-shm), every file and folder of a file store, and the
files the CLI exports are 0600/0700 whatever the umask; ``keepup store doctor`` reports a path
that is too open and ``--fix`` repairs it."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from keepup._cli.exit_codes import ExitCode
from keepup.cli import app
from keepup.demo import REPORT_KEY, run_demo
from keepup.runtime import open_runtime
from runtime_persistence import open_store
from typer.testing import CliRunner, Result


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    """The usual umask (022): without the fix, new files are 0644 and folders 0755."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def invoke(home: Path, *args: str) -> Result:
    env = {"KEEPUP_HOME": str(home), "KEEPUP_STORE_URL": None, "KEEPUP_DEBUG": None, "HOME": str(home.parent)}
    return CliRunner().invoke(app, list(args), env=env)


def too_open(root: Path) -> list[str]:
    """Every path under ``root`` (and ``root``) with a group or other permission bit, except the
    files inside the demo's workspaces (the agent's own files: their folder is private)."""
    found = []
    for path in [root, *root.rglob("*")]:
        inside_workspace = (
            path.relative_to(root).parts[:1] == ("demo",) and len(path.relative_to(root).parts) > 2
        )
        if path.is_symlink() or inside_workspace:
            continue
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077:
            found.append(f"{path.relative_to(root.parent)} {oct(mode)}")
    return found


def test_a_new_home_and_its_sqlite_store_are_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with open_runtime(home=home) as runtime:
        run_demo(runtime)
        assert (home / "keepup.db-wal").exists()  # the WAL files exist while the store is open
        assert too_open(home) == []
    assert too_open(home) == []


def test_a_new_sqlite_store_outside_the_home_is_private(tmp_path: Path) -> None:
    folder = tmp_path / "stores"
    folder.mkdir()
    driver = open_store(f"sqlite:///{folder / 'my.db'}")
    try:
        driver.put("ns", "k", b"v")
        assert sorted(p.name for p in folder.iterdir()) == ["my.db", "my.db-shm", "my.db-wal"]
        assert too_open(folder)[1:] == []  # the folder is the user's own; the files are private
    finally:
        driver.close()


def test_a_new_file_store_is_private(tmp_path: Path) -> None:
    root = tmp_path / "fstore"
    driver = open_store(f"file://{root}")
    try:
        driver.put("ns", "a/b/c", b"v")
        driver.put_blob(b"x" * 1000)
        assert too_open(root) == []
    finally:
        driver.close()


def test_exports_written_by_the_cli_are_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with open_runtime(home=home) as runtime:
        report = run_demo(runtime)
    out = tmp_path / "out"
    out.mkdir()
    result = invoke(home, "checkpoint", "export", str(out / "all.keepup"), "--yes")
    assert result.exit_code == 0, result.stderr
    result = invoke(home, "artifact", "get", report.thread_id, REPORT_KEY, "--output", str(out / "a.json"))
    assert result.exit_code == 0, result.stderr
    assert too_open(out)[1:] == []


def test_store_doctor_reports_an_open_store_and_fix_repairs_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with open_runtime(home=home) as runtime:
        run_demo(runtime)
    db = home / "keepup.db"
    db.chmod(0o644)
    home.chmod(0o755)
    result = invoke(home, "store", "doctor", "--json")
    assert result.exit_code == ExitCode.UNHEALTHY, result.stdout + result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    modes = checks["permissions"]
    assert modes["status"] == "fail"
    assert str(db) in modes["detail"] and str(home) in modes["detail"]
    assert "--fix" in modes["fix"]
    assert stat.S_IMODE(db.stat().st_mode) == 0o644  # without --fix nothing is changed

    fixed = invoke(home, "store", "doctor", "--fix", "--json")
    assert fixed.exit_code == 0, fixed.stdout + fixed.stderr
    checks = {c["name"]: c for c in json.loads(fixed.stdout)["checks"]}
    assert checks["permissions"]["status"] == "ok"
    assert "repaired" in checks["permissions"]["detail"]
    assert too_open(home) == []
    again = invoke(home, "store", "doctor", "--json")
    assert again.exit_code == 0, again.stdout
