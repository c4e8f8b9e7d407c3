"""Commands that only read never create a store, and work in a read-only Keepup home."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from keepup.demo import run_demo
from keepup.runtime import open_runtime

KEEPUP = Path(sys.executable).parent / "keepup"


def run(
    args: list[str], env: dict[str, str], *, user: int | None = None, cwd: Path = Path("/")
) -> subprocess.CompletedProcess[str]:
    prefix = [] if user is None else ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
    return subprocess.run(
        [*prefix, str(KEEPUP), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPUP_")}
    env["KEEPUP_HOME"] = str(home)
    return env


READ_ONLY = [
    ["thread", "list"],
    ["run", "list"],
    ["store", "info"],
    ["artifact", "list", "scope"],
]


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_a_read_only_command_never_creates_a_store(tmp_path: Path, args: list[str]) -> None:
    home = tmp_path / "home"
    result = run(args, environment(home))
    assert result.returncode == 4, result.stderr
    assert result.stderr.startswith("keepup: error: no store at ") and len(result.stderr.splitlines()) == 1
    assert not home.exists()
    elsewhere = tmp_path / "nonexistent" / "dir" / "k.db"
    result = run(["--store", f"sqlite:///{elsewhere}", *args], environment(home))
    assert result.returncode == 4 and "no store at" in result.stderr, result.stderr
    assert not (tmp_path / "nonexistent").exists()


def test_three_slashes_is_relative_and_the_error_hints_at_four(tmp_path: Path) -> None:
    """SQLAlchemy's convention: ``sqlite:///x`` is relative to the working directory, and when
    the absolute file exists the one-line error says how to name it."""
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    with open_runtime(f"sqlite:///{tmp_path / 'real.db'}"):
        pass
    absolute_as_three = f"sqlite://{tmp_path / 'real.db'}"
    result = run(["--store", absolute_as_three, "thread", "list"], environment(home), cwd=work)
    assert result.returncode == 4, result.stderr
    assert f"did you mean sqlite:///{tmp_path / 'real.db'}?" in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1
    result = run(
        ["--store", f"sqlite:///{tmp_path / 'real.db'}", "thread", "list"], environment(home), cwd=work
    )
    assert result.returncode == 0, result.stderr
    assert list(work.iterdir()) == []


def test_a_command_that_writes_still_creates_the_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run(["thread", "delete", "01a2258b-6841-70b3-bd4f-0dfe1703aa6e", "--yes"], environment(home))
    assert result.returncode == 4  # no such thread, but the store now exists
    assert (home / "keepup.db").exists()


@pytest.fixture
def read_only_home() -> Iterator[Path]:
    """A Keepup home in which the demo ran, then made read-only (for another user than root)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run keepup as another user")
    base = Path(tempfile.mkdtemp(prefix="keepup-ro-", dir="/tmp"))
    base.chmod(0o755)
    home = base / "home"
    with open_runtime(home=home) as runtime:
        run_demo(runtime)
    for path in [home, *home.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222 | 0o444 | (0o111 if path.is_dir() else 0))
    try:
        yield home
    finally:
        for path in [home, *home.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        shutil.rmtree(base)


def test_a_read_only_home_can_still_be_listed(read_only_home: Path) -> None:
    nobody = 65534
    env = environment(read_only_home)
    assert not os.access(read_only_home, os.W_OK) or os.geteuid() == 0
    listed = run(["thread", "list"], env, user=nobody)
    assert listed.returncode == 0, listed.stderr
    thread_id = listed.stdout.split("\t", 1)[0]
    assert run(["checkpoint", "list", thread_id], env, user=nobody).returncode == 0
    assert run(["store", "info"], env, user=nobody).returncode == 0
    # and a command that writes says why it cannot, in one line
    written = run(["thread", "rename", thread_id, "x"], env, user=nobody)
    assert written.returncode != 0 and len(written.stderr.strip().splitlines()) == 1, written.stderr
