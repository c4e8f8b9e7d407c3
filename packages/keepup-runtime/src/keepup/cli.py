"""The ``keepup`` command: inspect, restore, fork and prune what agent runs stored.

``main`` is the console-script entry point. It runs a few hot read-only command lines (``keepup
--help``, ``--version``, ``thread list`` and its options) through a hand-written parser that
imports neither typer nor click (:mod:`keepup._cli.fast`), and hands every other command line,
and any it does not fully understand, to the typer app (:mod:`keepup._cli.root`, here as
``app``). Every group lives in its own private module under :mod:`keepup._cli`, imported only
when it runs (:data:`keepup._cli.command.LAZY_COMMANDS`); errors become exit codes in
:mod:`keepup._cli.exit_codes` only."""

from __future__ import annotations

import gc
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

    app: typer.Typer

__all__ = ["app", "main", "typer_main"]


def __getattr__(name: str) -> Any:
    # The typer app on first use: `keepup thread list` and `keepup --help` never load typer.
    if name == "app":
        from keepup._cli.root import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Run the ``keepup`` command on ``sys.argv`` and exit with its exit code."""
    # The fast path imports some sixty modules, which allocate many objects and free few: the
    # cyclic garbage collector would run some thirty times over them and find almost nothing (a
    # tenth of `keepup thread list`'s CPU). Reference counting still frees everything as usual;
    # the collector is back on (if it was) before anything else runs (the typer app, or the exit).
    collecting = gc.isenabled()
    gc.disable()
    try:
        from keepup._cli.fast import run

        code = run(sys.argv[1:])
    finally:
        if collecting:
            gc.enable()
    if code is not None:
        sys.exit(code)
    typer_main()


def typer_main() -> None:
    """Run ``sys.argv`` through the typer app alone (what :func:`main` falls back to)."""
    from keepup._cli.root import typer_main as run_typer

    run_typer()
