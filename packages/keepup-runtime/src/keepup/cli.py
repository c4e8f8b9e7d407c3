"""The ``keepup`` command: inspect, restore, fork and prune what agent runs stored.

Every group lives in its own private module under :mod:`keepup._cli`; errors become exit codes in
:mod:`keepup._cli.exit_codes` only. ``main`` is the console-script entry point."""

from __future__ import annotations

from typing import Annotated

import typer

from keepup._cli import artifacts, checkpoints, demos, runs, snapshots, stores, threads
from keepup._cli.command import KeepupGroup
from keepup._cli.context import CliContext

__all__ = ["app", "main"]

app = typer.Typer(
    cls=KeepupGroup,
    name="keepup",
    help="Keepup: checkpoints, artifacts and workspace snapshots of agent runs.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            envvar="KEEPUP_STORE_URL",
            metavar="URL",
            help="Store URL (sqlite:///path, postgresql://…, …); default: keepup.db in $KEEPUP_HOME.",
        ),
    ] = None,
) -> None:
    ctx.obj = CliContext(store=store or None)


app.add_typer(checkpoints.app, name="checkpoint")
app.add_typer(threads.app, name="thread")
app.add_typer(artifacts.app, name="artifact")
app.add_typer(snapshots.app, name="snapshot")
app.add_typer(runs.app, name="run")
app.add_typer(stores.app, name="store")
app.command("demo")(demos.demo)


def main() -> None:
    """Run the ``keepup`` command on ``sys.argv`` and exit with its exit code."""
    typer.main.get_command(app).main(prog_name="keepup")
