"""The installed ``keepup`` command in a real pseudo-terminal at 60 and 200 columns, and piped.

On a terminal tables fit the width: columns drop by priority, words are never broken, ids show
their shortest unique prefix and the demo's markers stay visible. Piped, rows are plain
tab-separated lines with full ids (as gh prints them)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest
from keepup.demo import DemoReport, run_demo
from keepup.runtime import open_runtime

KEEPUP = Path(sys.executable).parent / "keepup"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def environment(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KEEPUP_") and k not in {"COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "PAGER"}
    }
    env.update(KEEPUP_HOME=str(home), TERM="xterm-256color", **extra)
    return env


def in_terminal(home: Path, *args: str, columns: int, rows: int = 50, **env: str) -> str:
    """Run ``keepup ARGS`` with stdin, stdout and stderr on a pseudo-terminal ``columns`` wide;
    return what it printed, colour codes removed, lines ending in \\n."""
    main, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    proc = subprocess.Popen(
        [str(KEEPUP), *args],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=environment(home, **env),
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
    assert proc.wait(timeout=120) == 0, b"".join(chunks).decode(errors="replace")
    text = b"".join(chunks).decode()
    return text.replace("\r\n", "\n")


def piped(home: Path, *args: str) -> str:
    result = subprocess.run(
        [str(KEEPUP), *args], env=environment(home), capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, DemoReport]]:
    home = tmp_path_factory.mktemp("terminal-home")
    with open_runtime(home=home) as runtime:
        report = run_demo(runtime)
    yield home, report


def _table_lines(text: str) -> list[str]:
    return [
        line for line in ANSI.sub("", text).splitlines() if line.startswith(("│", "┃", "┏", "└", "┡", "┗"))
    ]


@pytest.mark.parametrize("columns", [60, 200])
def test_checkpoint_list_fits_the_terminal_with_typeable_ids(
    demo: tuple[Path, DemoReport], columns: int
) -> None:
    home, report = demo
    text = ANSI.sub(
        "", in_terminal(home, "checkpoint", "list", report.thread_id, columns=columns, NO_COLOR="1")
    )
    lines = _table_lines(text)
    assert lines and all(len(line) <= columns for line in lines), text
    rows = [line for line in lines if line.startswith("│")]
    assert len(rows) == len(report.checkpoints), text  # one line per checkpoint: nothing wrapped
    cells = [[c.strip() for c in row.strip("│").split("│")] for row in rows]
    for cell, cp in zip(cells, reversed(report.checkpoints), strict=True):
        assert cp.id.startswith(cell[0]) and 8 <= len(cell[0]) < len(cp.id), cell  # a typeable prefix
        assert "…" not in cell[0]
    assert "status" in text and "step" in text  # what matters stays at 60 columns
    assert " ago" in text  # times for people: how long ago
    assert "failed" in text
    if columns == 200:
        assert "source" in text and "label" in text and "files" in text


@pytest.mark.parametrize("columns", [60, 200])
def test_the_demo_table_keeps_its_markers_on_a_narrow_terminal(tmp_path: Path, columns: int) -> None:
    text = ANSI.sub("", in_terminal(tmp_path / "home", "demo", columns=columns, NO_COLOR="1"))
    assert "← last good" in text and "← failed" in text, text
    assert "passed" in text and "FAILED" in text, text
    assert "0/?" not in text
    lines = _table_lines(text)
    assert lines and all(len(line) <= columns for line in lines), text


@pytest.mark.parametrize("columns", [60, 200])
def test_thread_list_and_artifact_versions_never_break_a_word(
    demo: tuple[Path, DemoReport], columns: int
) -> None:
    home, report = demo
    for args in (("thread", "list"), ("artifact", "versions", report.thread_id, "reports/tests.json")):
        text = ANSI.sub("", in_terminal(home, *args, columns=columns, NO_COLOR="1"))
        lines = _table_lines(text)
        assert lines and all(len(line) <= columns for line in lines), text
        words = {w for line in lines for cell in line.strip("│┃").split("│") for w in cell.split()}
        # every word printed is whole: no two-letter slivers of the names and types shown
        assert "keepup" in words or "test_report@1" in words, text
        whole = {"keepup", "demo", "test_report@1", "thread", "name", "head", "forked", "from", "updated"}
        whole |= {"version", "digest", "size", "type", "created", "quarantined"}
        slivers = {
            w
            for w in words
            for x in whole
            if w != x
            and w.isalpha()
            and w not in whole | {"s", "h", "min", "ago"}
            and (x.startswith(w) or x.endswith(w))
        }
        assert not slivers, text


def test_colour_on_a_terminal_and_none_with_no_color(demo: tuple[Path, DemoReport]) -> None:
    home, report = demo
    coloured = in_terminal(home, "checkpoint", "list", report.thread_id, columns=200)
    assert _colours(coloured)
    assert not _colours(in_terminal(home, "checkpoint", "list", report.thread_id, columns=200, NO_COLOR="1"))


def _colours(text: str) -> set[int]:
    """The foreground colours set by the SGR sequences in ``text``."""
    params = [int(p) for seq in re.findall(r"\x1b\[([0-9;]*)m", text) for p in seq.split(";") if p]
    return {p for p in params if 30 <= p <= 38 or 90 <= p <= 97}


def test_piped_output_is_tab_separated_rows_with_full_ids(demo: tuple[Path, DemoReport]) -> None:
    home, report = demo
    out = piped(home, "checkpoint", "list", report.thread_id)
    rows = [line.split("\t") for line in out.splitlines()]
    assert [r[0] for r in rows] == [c.id for c in reversed(report.checkpoints)]
    assert len({len(r) for r in rows}) == 1 and len(rows[0]) == 8
    assert "│" not in out and "checkpoint" not in out  # no borders, no header
    created = rows[0][-1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d", created), created
    threads = piped(home, "thread", "list").splitlines()
    assert threads[0].split("\t")[0] == report.thread_id


def test_a_table_taller_than_the_terminal_goes_through_the_pager(
    demo: tuple[Path, DemoReport], tmp_path: Path
) -> None:
    home, report = demo
    paged = tmp_path / "paged.txt"
    text = in_terminal(
        home,
        "checkpoint",
        "list",
        report.thread_id,
        columns=200,
        rows=8,
        PAGER=f"cat > {paged}",
        NO_COLOR="1",
    )
    assert paged.exists(), text
    assert report.failed[:8] in paged.read_text()
    paged.unlink()
    in_terminal(home, "checkpoint", "list", report.thread_id, columns=200, rows=50, PAGER=f"cat > {paged}")
    assert not paged.exists()  # it fits: no pager
    piped(home, "checkpoint", "list", report.thread_id)
    assert not paged.exists()  # never when piped


def test_version_and_shell_completion(tmp_path: Path) -> None:
    assert re.fullmatch(r"keepup \S+ \(runtime-core .*\)\n", piped(tmp_path, "--version"))
    env = environment(tmp_path) | {
        "SHELL": "/bin/bash",  # completion asks the shell it runs in; CI may not set it
        "_KEEPUP_COMPLETE": "complete_bash",
        "COMP_WORDS": "keepup chec",
        "COMP_CWORD": "1",
    }
    done = subprocess.run([str(KEEPUP)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.split() == ["checkpoint"], (done.stdout, done.stderr)
    # typer finds the shell by walking up the process tree (shellingham): run it from bash, as a
    # user does, rather than rely on a bash somewhere above the test runner's worker processes
    shown = subprocess.run(
        ["bash", "-c", f"'{KEEPUP}' --show-completion"],
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0 and "complete" in shown.stdout, (shown.stdout, shown.stderr)
