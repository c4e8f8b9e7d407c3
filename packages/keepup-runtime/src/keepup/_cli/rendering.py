"""How the ``keepup`` command prints: JSON for programs (``--json``), rich tables for people,
progress bars on stderr, and the one-line error message.

Data goes to stdout; progress, prompts and errors go to stderr, so ``--json`` output can always be
piped into another program.

rich is imported on first use, not with this module: it is a third of the command's start-up and
``--json`` output never needs it."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "ProgressCallback",
    "err_console",
    "escape",
    "fields",
    "out_console",
    "plain",
    "print_json",
    "progress",
    "short",
    "table",
    "when",
]

ProgressCallback = Callable[[int, int | None], None]


_PIPE_WIDTH = 240


def escape(text: str) -> str:
    """``text`` with rich markup escaped, so that it prints as written."""
    from rich.markup import escape as escape_markup

    return escape_markup(text)


def out_console() -> Console:
    """A console on the current stdout (looked up at call time, so tests can swap streams).

    When stdout is not a terminal, lines are laid out 240 columns wide, so that ids in tables are
    never folded and can be copied from a log."""
    from rich.console import Console

    console = Console(file=sys.stdout, soft_wrap=True, highlight=False)
    if not console.is_terminal:
        console = Console(file=sys.stdout, soft_wrap=True, highlight=False, width=_PIPE_WIDTH)
    return console


def err_console() -> Console:
    from rich.console import Console

    return Console(file=sys.stderr, soft_wrap=True, highlight=False)


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses become objects, enums their value, datetimes ISO
    8601 strings with their offset, timedeltas seconds, tuples and sets lists, bytes hex."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [plain(v) for v in items]
    return str(value)


def print_json(data: Any) -> None:
    """Write ``data`` to stdout as one JSON document (UTF-8, indented), followed by a newline."""
    sys.stdout.write(json.dumps(plain(data), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def when(value: datetime | None) -> str:
    """A timestamp for people: local time to the second."""
    if value is None:
        return "-"
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def short(identifier: str | None, width: int = 13) -> str:
    """An id shortened for a table cell; JSON output always carries full ids."""
    if identifier is None:
        return "-"
    return identifier if len(identifier) <= width else identifier[: width - 1] + "…"


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a rich table on stdout (cells are escaped, never read as markup). The first column
    (an id, usually) is never wrapped."""
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_lines=False)
    for i, column in enumerate(columns):
        t.add_column(column, overflow="fold", no_wrap=i == 0)
    for row in rows:
        t.add_row(*(escape("-" if cell is None else str(cell)) for cell in row))
    out_console().print(t)


def fields(title: str | None, rows: Sequence[tuple[str, Any]]) -> None:
    """Print name/value pairs as a two-column table without a header."""
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_header=False)
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")
    for name, value in rows:
        t.add_row(escape(name), escape("-" if value is None else str(value)))
    out_console().print(t)


@contextmanager
def progress(description: str, *, enabled: bool = True) -> Iterator[ProgressCallback]:
    """A progress bar on stderr, shown only when stderr is a terminal and ``enabled``.

    Yields ``update(done, total)``; a None total shows a spinner with a count."""
    console = err_console()
    if not enabled or not console.is_terminal:
        yield _ignore
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task(description, total=None)

    def update(done: int, total: int | None) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update


def _ignore(done: int, total: int | None) -> None:
    return None
