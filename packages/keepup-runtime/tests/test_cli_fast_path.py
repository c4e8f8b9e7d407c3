"""The ``keepup`` command's fast path (keepup._cli.fast) prints what the typer app prints.

Each command line runs twice in a fresh interpreter, through ``keepup.cli.main`` (the fast path,
falling back to typer) and through ``keepup.cli.typer_main`` (the typer app alone), with stdout
and stderr piped; stdout, stderr and the exit code must be identical. Each case also says whether
the fast path must have run it (typer never imported) or handed it to typer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = (
    "import sys\n"
    "which, mark = sys.argv[1], sys.argv[2]\n"
    "sys.argv[0:3] = ['keepup']\n"
    "from keepup import cli\n"
    "try:\n"
    "    (cli.main if which == 'fast' else cli.typer_main)()\n"
    "finally:\n"
    "    open(mark, 'w').write(str('typer' in sys.modules))\n"
)


def keepup(
    which: str, args: list[str], home: Path, tmp: Path, env: dict[str, str] | None = None
) -> tuple[int, str, str, bool]:
    """(exit code, stdout, stderr, whether typer was imported) of ``keepup ARGS``."""
    mark = tmp / f"mark-{which}"
    full_env = {"KEEPUP_HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NO_COLOR": "1"}
    full_env.update(env or {})
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, which, str(mark), *args],
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp,
    )
    return done.returncode, done.stdout, done.stderr, mark.read_text() == "True"


def same(args: list[str], home: Path, tmp: Path, *, fast: bool, env: dict[str, str] | None = None) -> str:
    """Run ``args`` both ways, assert the same result, and whether the fast path ran it."""
    code, out, err, typer_loaded = keepup("fast", args, home, tmp, env)
    assert (code, out, err) == keepup("typer", args, home, tmp, env)[:3], args
    assert typer_loaded is not fast, f"{args}: expected the {'fast path' if fast else 'typer app'}"
    return out + err


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    from keepup.runtime import open_runtime

    home = tmp_path_factory.mktemp("home")
    with open_runtime(home=home) as runtime:
        first = runtime.checkpoints.create_thread("first")
        second = runtime.checkpoints.create_thread("second thread", metadata={"k": 1})
        runtime.checkpoints.save(second.id, {"step": 1}, step=1)
        fork = runtime.checkpoints.fork(runtime.checkpoints.latest(second.id).id, name="fork")  # type: ignore[union-attr]
    return home, [first.id, second.id, fork.id]


FAST_CASES = [
    ["thread", "list"],
    ["thread", "list", "--json"],
    ["thread", "list", "-n", "1"],
    ["thread", "list", "--limit=2", "--json"],
    ["thread", "list", "--limit", "10000"],
    ["thread", "list", "--since", "1h"],
    ["thread", "list", "--since=1h", "--until", "2000-01-01", "--json"],
    ["thread", "list", "--until", "1w"],
    ["thread", "list", "--since", "bogus"],  # ValidationError: exit 3
    ["thread", "list", "--before", "0000"],  # too short a prefix: exit 3
    ["thread", "list", "--before", "ffffffff"],  # no such thread: exit 4
    ["thread", "list", "--before="],
    ["--store", "sqlite:////nonexistent/dir/k.db", "thread", "list"],  # no store: exit 4
    ["--store=sqlite:///relative/k.db", "thread", "list", "--json"],
    ["--store", "nosuch://x", "thread", "list"],  # unknown scheme: exit 8
    ["--store", "", "thread", "list"],
    ["--keyring", "/nonexistent/keyring.toml", "thread", "list"],
    ["--help"],
    ["-h"],
    ["--version"],
    ["-V"],
]

TYPER_CASES = [
    ["thread", "list", "--limit", "0"],  # out of range: usage error, exit 2
    ["thread", "list", "--limit", "abc"],
    ["thread", "list", "-n5"],
    ["thread", "list", "--bogus"],
    ["thread", "list", "extra"],
    ["thread", "list", "--json", "--json"],
    ["thread", "list", "--json=1"],
    ["thread", "list", "--before"],  # missing value
    ["thread", "list", "--help"],
    ["thread", "list", "--", "--json"],
    ["thread", "--store", "x", "list"],
    ["--store", "a", "--store", "b", "thread", "list"],
    ["thread", "show", "ffffffff"],
    ["thread"],
    [],
    ["--bogus"],
    ["--help", "thread"],
]


@pytest.mark.parametrize("args", FAST_CASES, ids=" ".join)
def test_the_fast_path_prints_what_typer_prints(
    args: list[str], home: tuple[Path, list[str]], tmp_path: Path
) -> None:
    same(args, home[0], tmp_path, fast=True)


@pytest.mark.parametrize("args", TYPER_CASES, ids=" ".join)
def test_what_the_fast_path_does_not_understand_goes_to_typer(
    args: list[str], home: tuple[Path, list[str]], tmp_path: Path
) -> None:
    same(args, home[0], tmp_path, fast=False)


def test_ids_prefixes_and_the_environment(home: tuple[Path, list[str]], tmp_path: Path) -> None:
    root, ids = home
    for before in (ids[2], ids[2].upper()[:10], ids[1][:6]):
        same(["thread", "list", "--before", before, "--json"], root, tmp_path, fast=True)
    url = f"sqlite:///{root / 'keepup.db'}"
    same(["thread", "list"], tmp_path, tmp_path, fast=True, env={"KEEPUP_STORE_URL": url})
    same(["--store", "", "thread", "list"], tmp_path, tmp_path, fast=True, env={"KEEPUP_STORE_URL": url})
    same(["thread", "list"], root, tmp_path, fast=True, env={"KEEPUP_STORE_URL": ""})
    missing = {"KEEPUP_KEYRING": str(tmp_path / "no-keyring.toml")}
    assert "keyring" in same(["thread", "list"], root, tmp_path, fast=True, env=missing)
    same(["--keyring", "", "thread", "list"], root, tmp_path, fast=True, env=missing)
    # KEEPUP_DEBUG: the traceback's frames differ; its last line, the message and the code do not.
    env = {"KEEPUP_DEBUG": "1", "KEEPUP_STORE_URL": "x://"}
    fast = keepup("fast", ["thread", "list"], root, tmp_path, env)
    slow = keepup("typer", ["thread", "list"], root, tmp_path, env)
    assert fast[0] == slow[0] == 8 and not fast[3]
    assert fast[2].startswith("Traceback") and slow[2].startswith("Traceback")
    assert fast[2].splitlines()[-2:] == slow[2].splitlines()[-2:]


def test_an_empty_store(tmp_path: Path) -> None:
    from keepup.runtime import open_runtime

    open_runtime(home=tmp_path).close()
    assert "no threads yet" in same(["thread", "list"], tmp_path, tmp_path, fast=True)
    assert same(["thread", "list", "--json"], tmp_path, tmp_path, fast=True) == '{\n  "threads": []\n}\n'


@pytest.mark.parametrize("columns", ["20", "40", "60", "79", "80", "120", "bogus"])
def test_help_at_any_width(columns: str, tmp_path: Path) -> None:
    same(["--help"], tmp_path, tmp_path, fast=True, env={"COLUMNS": columns})


def _dist(site: Path, folder: str, metadata: str, entry_points: str | None) -> None:
    info = site / folder
    info.mkdir(parents=True)
    (info / "METADATA").write_text(metadata, encoding="utf-8")
    if entry_points is not None:
        (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")


def test_help_lists_the_installed_plugins_as_typer_does(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _dist(
        site,
        "zap_tool-1.0.dist-info",
        "Metadata-Version: 2.1\nName: zap-tool\nVersion: 1.0\nSummary: Zap   things,\n  folded over lines.\n\nbody\n",
        "[console_scripts]\nzap = zap:main\n\n[keepup.commands]\nzap = zap_tool:app\nthread = zap_tool:shadow\n",
    )
    _dist(
        site,
        "quiet-2.0.dist-info",
        "Name: quiet\nVersion: 2.0\n",
        "# comment\n[keepup.commands]\nhush = quiet:app\n",
    )
    out = same(["--help"], tmp_path, tmp_path, fast=True, env={"PYTHONPATH": str(site)})
    assert "Zap things, folded over lines. (from zap-tool)" in " ".join(out.split())
    assert "(from quiet)" in out
    # A keepup-server earlier on the path without the entry point hides the installed one.
    _dist(site, "keepup_server-9.dist-info", "Name: keepup-server\nVersion: 9\n", None)
    out = same(["--help"], tmp_path, tmp_path, fast=True, env={"PYTHONPATH": str(site)})
    assert "not installed: pip install keepup-server" in " ".join(out.split())


def test_odd_metadata_goes_to_typer(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _dist(site, "odd-1.0.dist-info", "Name: odd\nSummary: ünïcode\n", "[keepup.commands]\nodd = odd:app\n")
    same(["--help"], tmp_path, tmp_path, fast=False, env={"PYTHONPATH": str(site)})
    (site / "odd-1.0.dist-info" / "entry_points.txt").write_text("[keepup.commands]\nno equals sign\n")
    same(["--help"], tmp_path, tmp_path, fast=False, env={"PYTHONPATH": str(site)})


def test_shell_completion_goes_to_typer(tmp_path: Path) -> None:
    env = {"_KEEPUP_COMPLETE": "bash_complete", "COMP_WORDS": "keepup thr", "COMP_CWORD": "1"}
    same(["thread", "list"], tmp_path, tmp_path, fast=False, env=env)


def in_terminal(which: str, args: list[str], home: Path, tmp: Path, columns: int) -> tuple[int, str, bool]:
    """(exit code, what it printed, whether typer was imported) of ``keepup ARGS`` with stdin,
    stdout and stderr on a pseudo-terminal ``columns`` wide."""
    import fcntl
    import pty
    import struct
    import termios

    mark = tmp / f"mark-{which}"
    main, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {
        "KEEPUP_HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TERM": "xterm-256color",
        "KEEPUP_NO_PAGER": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, which, str(mark), *args],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=env,
        cwd=tmp,
        close_fds=True,
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    code = proc.wait(timeout=120)
    return code, b"".join(chunks).decode(errors="replace"), mark.read_text() == "True"


@pytest.mark.parametrize("columns", [60, 200])
def test_on_a_terminal_too(columns: int, tmp_path: Path) -> None:
    from keepup.runtime import open_runtime
    from runtime_core.clock import ManualClock

    home = tmp_path / "home"
    with open_runtime(home=home, clock=ManualClock()) as runtime:  # a year old: no "3 s ago"
        parent = runtime.checkpoints.create_thread("a thread with a rather long name to wrap")
        runtime.checkpoints.save(parent.id, {"step": 1}, step=1)
        runtime.checkpoints.fork(runtime.checkpoints.latest(parent.id).id, name="fork")  # type: ignore[union-attr]
    for args in (["thread", "list"], ["--help"]):
        fast = in_terminal("fast", args, home, tmp_path, columns)
        assert fast[:2] == in_terminal("typer", args, home, tmp_path, columns)[:2], args
        assert fast[0] == 0 and not fast[2], args
