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


def test_keepup_browse_runs_in_a_terminal_and_quits_with_q(tmp_path: Path) -> None:
    """The real command in a pseudo-terminal of 80x24: it shows the store's threads, and q ends
    it with exit 0."""
    pytest.importorskip("textual")
    import fcntl
    import os
    import pty
    import select
    import struct
    import termios
    import time

    from keepup.runtime import open_runtime

    with open_runtime(home=tmp_path) as rt:
        thread = rt.checkpoints.create_thread("seen in a real terminal")
        rt.checkpoints.save(thread.id, {"messages": [{"role": "user", "content": "hello"}]})
    pid, fd = pty.fork()
    if pid == 0:  # the child: the keepup command
        os.environ.update({"KEEPUP_HOME": str(tmp_path), "TERM": "xterm-256color"})
        os.environ.pop("KEEPUP_STORE_URL", None)
        os.execv(sys.executable, [sys.executable, "-c", "from keepup.cli import main; main()", "browse"])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    shown, quit_sent = b"", False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # the child closed the terminal: it has ended
                    break
                if not chunk:
                    break
                shown += chunk
            if not quit_sent and b"seen in a real terminal" in shown:
                time.sleep(0.3)
                os.write(fd, b"q")
                quit_sent = True
    finally:
        if time.monotonic() >= deadline:
            os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert quit_sent, shown[-2000:]
    assert os.waitstatus_to_exitcode(status) == 0
