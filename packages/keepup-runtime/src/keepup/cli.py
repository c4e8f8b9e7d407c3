"""The ``keepup`` command: inspect, restore, fork and prune what agent runs stored.

Every group lives in its own private module under :mod:`keepup._cli`, imported only when it runs
(:data:`keepup._cli.command.LAZY_COMMANDS`); errors become exit codes in
:mod:`keepup._cli.exit_codes` only. ``main`` is the console-script entry point."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from keepup._cli.command import KeepupGroup
from keepup._cli.context import CliContext

__all__ = ["app", "main"]

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


VERSIONED = ("keepup-runtime", "runtime-core", "runtime-persistence", "runtime-execution")


def _print_version(value: bool) -> None:
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    first, *rest = VERSIONED
    sys.stdout.write(f"keepup {of(first)} ({', '.join(f'{n} {of(n)}' for n in rest)})\n")
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


def main() -> None:
    """Run the ``keepup`` command on ``sys.argv`` and exit with its exit code."""
    typer.main.get_command(app).main(prog_name="keepup")
