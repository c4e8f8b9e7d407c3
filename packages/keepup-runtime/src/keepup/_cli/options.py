"""Options shared by many commands, and the confirmation asked before destructive ones."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from keepup._cli.exit_codes import Declined

__all__ = ["JsonOption", "YesOption", "confirm"]

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (shapes in docs/cli.md) instead of tables.")
]
YesOption = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Do not ask for confirmation (it is only asked on a terminal)."),
]


def confirm(question: str, *, yes: bool) -> None:
    """Ask ``question`` when standard input is a terminal and ``yes`` is false; raise Declined
    (nothing changed) on "no". Never prompts when stdin is not a terminal: scripts and pipes run
    without blocking."""
    if yes or not sys.stdin.isatty():
        return
    if not typer.confirm(question, default=False, err=True):
        raise Declined("cancelled; nothing was changed")
