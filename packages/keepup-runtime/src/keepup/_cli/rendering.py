"""How the ``keepup`` command prints: JSON for programs (``--json``), rich tables for people,
progress bars on stderr, and the one-line error message.

Data goes to stdout; progress, prompts and errors go to stderr, so ``--json`` output can always be
piped into another program.

rich is imported on first use, not with this module: it is a third of the command's start-up and
``--json`` output never needs it."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "Column",
    "ProgressCallback",
    "When",
    "err_console",
    "escape",
    "fields",
    "out_console",
    "plain",
    "print_json",
    "progress",
    "short",
    "stdout_is_terminal",
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
    import json  # here: tables never need it

    sys.stdout.write(json.dumps(plain(data), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


class When(str):
    """A moment as a table cell: on a terminal "3 min ago" (or, past a day, the local time with its
    zone); in piped output ISO 8601; as a plain string the local time with its zone."""

    moment: datetime

    def __new__(cls, moment: datetime) -> When:
        local = moment.astimezone()
        obj = super().__new__(cls, local.strftime("%Y-%m-%d %H:%M:%S %Z").strip())
        obj.moment = moment
        return obj

    def relative(self, now: datetime | None = None) -> str:
        """How long ago (or from now), for people; the local time with its zone past a day."""
        now = now or datetime.now(self.moment.tzinfo or None)
        seconds = (now - self.moment).total_seconds()
        ahead = seconds < 0
        seconds = abs(seconds)
        if seconds >= 86400:
            return self.moment.astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()
        if seconds < 60:
            amount = f"{int(seconds)} s"
        elif seconds < 3600:
            amount = f"{int(seconds // 60)} min"
        else:
            amount = f"{int(seconds // 3600)} h"
        return f"in {amount}" if ahead else f"{amount} ago"


def when(value: datetime | None) -> str:
    """A timestamp for people: local time to the second with its zone (a :class:`When`, which a
    table shows as a relative time on a terminal and as ISO 8601 when piped)."""
    if value is None:
        return "-"
    return When(value)


def short(identifier: str | None, width: int = 13) -> str:
    """An id shortened for a title; tables show unique prefixes (keepup._cli.ids.abbreviate) and
    JSON output always carries full ids."""
    if identifier is None:
        return "-"
    return identifier if len(identifier) <= width else identifier[:width]


class Column(NamedTuple):
    """A table column. On a narrow terminal the columns of lowest ``priority`` are dropped first
    (the first column is kept always); a ``wrap`` column is broken between words, never inside
    one, and a column that is not is never broken. (A named tuple: a frozen dataclass costs
    ``keepup thread list`` four times as much to build.)"""

    header: str
    priority: int = 50
    wrap: bool = True


# Words that get a colour on a terminal (rich leaves colour out under NO_COLOR or when piped).
_STYLES = {
    "passed": "green",
    "completed": "green",
    "FAILED": "bold red",
    "failed": "red",
    "running": "yellow",
    "interrupted": "yellow",
    "cancelled": "yellow",
    "← last good": "bold green",
    "← failed": "bold red",
}


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _plain_cell(cell: Any) -> str:
    if cell is None:
        return "-"
    full = getattr(cell, "full", None)
    if isinstance(full, str):
        return full
    if isinstance(cell, When):
        return cell.moment.isoformat()
    return " ".join(str(cell).split("\t")).replace("\n", " ")


def _terminal_cell(cell: Any) -> str:
    if cell is None:
        return "-"
    if isinstance(cell, When):
        return cell.relative()
    return str(cell)


def _min_width(header: str, cells: Sequence[str], wrap: bool) -> int:
    if not wrap:
        return max([len(header), *(len(c) for c in cells)])
    words = [w for text in (header, *cells) for w in text.split()]
    return max([1, *(len(w) for w in words)])


def table(title: str | None, columns: Sequence[str | Column], rows: Sequence[Sequence[Any]]) -> None:
    """Print a table on stdout.

    On a terminal: a rich table (cells are escaped, never read as markup) that fits the width:
    columns of lowest priority are dropped until the rest fit without breaking a word; ids show
    their shortest unique prefix and times how long ago. Otherwise (piped, redirected): one line
    per row, cells separated by tabs, no header or title, full ids and ISO 8601 times, as gh does."""
    cols = [
        c if isinstance(c, Column) else Column(c, 100 if i == 0 else 50, i != 0)
        for i, c in enumerate(columns)
    ]
    if not stdout_is_terminal():
        out = sys.stdout
        for row in rows:
            out.write("\t".join(_plain_cell(cell) for cell in row) + "\n")
        out.flush()
        return
    from rich.table import Table

    console = out_console()
    texts = [[_terminal_cell(cell) for cell in row] for row in rows]
    mins = [_min_width(c.header, [r[i] for r in texts], c.wrap) for i, c in enumerate(cols)]
    keep = list(range(len(cols)))

    def needed() -> int:
        return sum(mins[i] for i in keep) + 3 * len(keep) + 1

    while needed() > console.width and len(keep) > 1:
        droppable = keep[1:]
        drop = min(droppable, key=lambda i: (cols[i].priority, -i))
        keep.remove(drop)
    # Each column as wide as its widest cell, then the wrapping ones narrowed (the widest first),
    # never below their longest word, until the table fits.
    widths = {i: max([len(cols[i].header), *(len(r[i]) for r in texts)]) for i in keep}
    excess = sum(widths.values()) + 3 * len(keep) + 1 - console.width
    while excess > 0:
        slack = [i for i in keep if cols[i].wrap and widths[i] > mins[i]]
        if not slack:
            break
        widest = max(slack, key=lambda i: widths[i] - mins[i])
        widths[widest] -= 1
        excess -= 1
    t = Table(title=title, title_justify="left", show_lines=False)
    for i in keep:
        c = cols[i]
        t.add_column(c.header, no_wrap=not c.wrap, width=widths[i], overflow="fold")
    for row in texts:
        t.add_row(*(_styled(row[i]) for i in keep))
    _print_paged(console, t, lines=len(rows) + 4 + (1 if title else 0))


def _print_paged(console: Console, renderable: Any, *, lines: int) -> None:
    """Print ``renderable``; through a pager ($PAGER, else less) when it is taller than the
    terminal and both stdin and stdout are terminals, unless KEEPUP_NO_PAGER is set."""
    import os

    if lines <= console.height or os.environ.get("KEEPUP_NO_PAGER") or not _stdin_is_terminal():
        console.print(renderable)
        return
    os.environ.setdefault("LESS", "-FRX")  # keep colours; quit at once if it fits after all
    with console.pager(styles=True):
        console.print(renderable)


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def _styled(text: str) -> Any:
    from rich.text import Text

    return Text(text, style=_STYLES.get(text, ""))


def fields(title: str | None, rows: Sequence[tuple[str, Any]]) -> None:
    """Print name/value pairs: a two-column table without a header on a terminal, ``name<TAB>value``
    lines otherwise."""
    if not stdout_is_terminal():
        for name, value in rows:
            sys.stdout.write(f"{name}\t{_plain_cell(value)}\n")
        sys.stdout.flush()
        return
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_header=False)
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")
    for name, value in rows:
        shown = (
            "-"
            if value is None
            else f"{value} ({value.relative()})"
            if isinstance(value, When)
            else str(value)
        )
        t.add_row(escape(name), _styled(shown))
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
        Progress,
        ProgressColumn,
        SpinnerColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class Count(ProgressColumn):
        """``done/total`` once the total is known; nothing before (never ``0/?``)."""

        def render(self, task: Task) -> Text:
            if task.total is None:
                return Text("" if not task.completed else str(int(task.completed)))
            return Text(f"{int(task.completed)}/{int(task.total)}")

    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        Count(),
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
