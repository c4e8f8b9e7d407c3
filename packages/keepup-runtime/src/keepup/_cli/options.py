"""Options shared by many commands, and the confirmation asked before destructive ones."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from keepup._cli.exit_codes import Declined
from keepup._cli.moments import parse_duration, parse_moment, within

__all__ = [
    "JsonOption",
    "SinceOption",
    "UntilOption",
    "YesOption",
    "confirm",
    "parse_duration",
    "parse_moment",
    "within",
]

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (shapes in docs/cli.md) instead of tables.")
]
YesOption = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Do not ask for confirmation (it is only asked on a terminal)."),
]


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stdin is no terminal
        return False


def confirm(question: str, *, yes: bool) -> None:
    """Ask ``question`` when standard input is a terminal and ``yes`` is false; raise Declined
    (nothing changed) on "no". Never prompts when stdin is not a terminal: scripts and pipes run
    without blocking."""
    if yes or not _stdin_is_terminal():
        return
    if not typer.confirm(question, default=False, err=True):
        raise Declined("cancelled; nothing was changed")


SINCE_UNTIL_HELP = "an ISO 8601 date or time (2026-11-29, 2026-11-29T14:00+01:00) or an age (30m, 12h, 7d)"
SinceOption = Annotated[
    str | None,
    typer.Option("--since", metavar="WHEN", help=f"Only those at or after WHEN: {SINCE_UNTIL_HELP}."),
]
UntilOption = Annotated[
    str | None, typer.Option("--until", metavar="WHEN", help=f"Only those before WHEN: {SINCE_UNTIL_HELP}.")
]
