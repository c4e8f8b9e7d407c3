"""Options shared by many commands, and the confirmation asked before destructive ones."""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from typing import Annotated

import typer
from runtime_core import ValidationError

from keepup._cli.exit_codes import Declined

__all__ = ["JsonOption", "YesOption", "confirm", "parse_duration"]

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


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``30s``, ``15m``, ``12h``, ``7d``, ``2w`` (or a bare number of seconds) as a timedelta;
    ValidationError for anything else."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if match is None:
        raise ValidationError(f"a duration looks like 30s, 15m, 12h, 7d or 2w; got {text!r:.40}")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2) or "s"])
