"""The ``keepup`` command as a typer app: the root group, its global options and its commands
(each group in its own module, imported only when it runs: :data:`keepup._cli.command.LAZY_COMMANDS`).

:func:`keepup.cli.main` runs a few hot command lines without it (:mod:`keepup._cli.fast`), and
this app for everything else; ``scripts/gen_cli_help.py`` renders this app's ``--help`` into
:mod:`keepup._cli._root_help` for the fast path."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from keepup._cli.command import KeepupGroup
from keepup._cli.context import CliContext
from keepup._cli.fast import version_line

__all__ = ["app", "typer_main"]

app = typer.Typer(
    cls=KeepupGroup,
    name="keepup",
    help="Keepup: checkpoints, artifacts and workspace snapshots of agent runs.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if not value:
        return
    sys.stdout.write(version_line() + "\n")
    raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            envvar="KEEPUP_STORE_URL",
            metavar="URL",
            help="Store URL (sqlite:////abs/path.db, sqlite:///relative.db, postgresql://…, …); default: keepup.db in $KEEPUP_HOME.",
        ),
    ] = None,
    keyring: Annotated[
        str | None,
        typer.Option(
            "--keyring",
            envvar="KEEPUP_KEYRING",
            metavar="FILE",
            help="Keyring file of an encrypted store (docs/security.md); default: keyring.toml in $KEEPUP_HOME if it exists.",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            is_eager=True,
            callback=_print_version,
            help="Print the versions of keepup and its packages, and exit.",
        ),
    ] = False,
) -> None:
    ctx.obj = CliContext(store=store or None, keyring=keyring or None)


def typer_main() -> None:
    """Run the typer app on ``sys.argv`` and exit with its exit code."""
    typer.main.get_command(app).main(prog_name="keepup")
