"""The root command group: every error raised below it ends here, as one line on stderr and the
exit code of its type (see :mod:`keepup._cli.exit_codes`), never as a traceback. Usage errors
(unknown option, missing argument) are one line too, exit 2.

Help is click's plain layout (no Rich boxes); :func:`tidy_help` replaces typer's type labels
(``<str>``, ``<bool>``, ``{THREAD}``) with the usual ``THREAD``, ``[END]``, ``N``, ``TEXT``."""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Sequence
from typing import Any

import typer
import typer.main
from typer._click.exceptions import ClickException, NoArgsIsHelpError  # typer vendors click
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from keepup._cli.exit_codes import CliFailure, ExitCode, report

__all__ = ["LAZY_COMMANDS", "PLUGIN_COMMANDS", "PLUGIN_GROUP", "KeepupGroup", "tidy_help"]

LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "keepup._cli.demos",
        "Run a scripted agent (no model, no network) that edits files, checkpoints and fails; "
        "print what to try next.",
    ),
    "checkpoint": ("keepup._cli.checkpoints", "Checkpoints: the saved points of a thread."),
    "thread": ("keepup._cli.threads", "Threads: named lines of checkpoints."),
    "artifact": (
        "keepup._cli.artifacts",
        "Artifacts: versioned files a run produced (reports, images, diffs).",
    ),
    "snapshot": ("keepup._cli.snapshots", "Workspace snapshots (shadow git, kept outside the workspace)."),
    "run": ("keepup._cli.runs", "Runs of agents on the durable runner."),
    "store": ("keepup._cli.stores", "The store: info, schema migrations, garbage collection, health checks."),
    "session": ("keepup._cli.sessions", "Sessions: list, show, close, and sweep stale ones."),
    "task": ("keepup._cli.tasks", "Tasks: a tree of work items with statuses, progress, logs and assignees."),
    "browse": (
        "keepup._cli.browse",
        "Browse threads, checkpoints, conversations, diffs and recorded messages in the terminal.",
    ),
    "broker": ("keepup._cli.broker", "Run the ZeroMQ message broker (XSUB frontend, XPUB backend)."),
    "recorder": ("keepup._cli.recorder", "Record every message of a broker (ZeroMQ, NATS JetStream, MQTT)."),
    "messages": ("keepup._cli.messages", "Recorded messages: recent, show, search, export, stats."),
}
"""The root's commands: name -> (the module whose ``app`` implements it, its one-line help).

A command's module (and the store packages it needs) is imported only when that command runs,
so ``keepup --help`` and completion start in a blink; the help listed here is what
``keepup --help`` shows."""


PLUGIN_GROUP = "keepup.commands"
"""The entry-point group where other distributions add commands (``serve = "module:app"``, a
typer app or a click command); one is imported only when its command runs."""

PLUGIN_COMMANDS: dict[str, str] = {"serve": "keepup-server"}
"""Commands that Keepup's own distributions add through :data:`PLUGIN_GROUP`: name -> the
distribution that declares it. The one fact installed metadata cannot give while that
distribution is absent: such a command is still listed, and running it names the package to
install. Everything else comes from metadata (an installed plugin's help line is its
distribution's summary), and tests/test_cli_plugins.py checks this table against the entry
points the workspace's distributions declare, so it cannot drift from them."""


class MissingPlugin(CliFailure):
    """A command whose distribution is not installed."""

    code = ExitCode.DRIVER_UNAVAILABLE


@functools.cache
def _plugins() -> dict[str, Any]:
    """The installed plugin commands: name -> entry point (reading metadata, importing nothing)."""
    from importlib.metadata import entry_points

    found: dict[str, Any] = {}
    for ep in entry_points(group=PLUGIN_GROUP):
        if ep.name not in LAZY_COMMANDS:  # a plugin never shadows a built-in command
            found.setdefault(ep.name, ep)
    return found


def _plugin_help(name: str) -> str:
    """A plugin command's line in ``keepup --help``: its distribution's summary (read from
    metadata, importing nothing), or the package to install when it is absent."""
    found = _plugins().get(name)
    if found is None:
        dist = PLUGIN_COMMANDS[name]
        return f"(from {dist}, not installed: pip install {dist})"
    source = getattr(found, "dist", None)
    if source is None:
        return ""
    summary = " ".join((source.metadata["Summary"] or "").split())
    return f"{summary} (from {source.name})" if summary else f"(from {source.name})"


def _missing(name: str, dist: str) -> TyperCommand:
    """A stand-in for a plugin command that is not installed: whatever its arguments, it says
    which package to install."""

    def run() -> None:
        raise MissingPlugin(f"`keepup {name}` needs the {dist} package: pip install {dist}")

    return TyperCommand(
        name,
        callback=run,
        help=f"(from {dist}, not installed: pip install {dist})",
        add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


def _value_label(label: str | None) -> str | None:
    if not label:
        return label
    inner = label.strip("<>")
    if "|" in inner:
        return f"[{inner}]"
    if inner.startswith(("int", "float")):
        return "N"
    if inner in {"str", "text"} or inner.startswith("list"):
        return "TEXT"
    return inner.upper()


def _tidy_param(param: object) -> None:
    # typer < 0.29 (pinned: 0.29 validates every parameter through pydantic, +210 ms a command)
    # labels values {THREAD}, <int range>, <str>; most command lines say THREAD, N, TEXT.
    if getattr(param, "_keepup_tidy", False):
        return
    if isinstance(param, TyperArgument):
        original_argument = param.make_metavar

        def argument_metavar(ctx: Any, *, usage: bool = False) -> str:
            name = original_argument(ctx, usage=False).split(":", 1)[0].rstrip(".").strip("[]{}").upper()
            shown = name if param.required or not usage else f"[{name}]"
            return shown + ("..." if param.nargs != 1 else "")

        param.make_metavar = argument_metavar  # type: ignore[method-assign]
    elif isinstance(param, TyperOption) and param.metavar is None:
        original_option = param.make_metavar

        def option_metavar(ctx: Any) -> str:
            return _value_label(original_option(ctx)) or ""

        param.make_metavar = option_metavar  # type: ignore[method-assign]
    param._keepup_tidy = True  # type: ignore[attr-defined]


def tidy_help(command: Any) -> None:
    """Give every parameter below ``command`` the plain labels of most command lines."""
    for param in command.params:
        _tidy_param(param)
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            tidy_help(sub)


class KeepupGroup(TyperGroup):
    """A typer group that maps errors to exit codes in one place.

    Usage errors (unknown options, missing arguments) print one line and exit 2."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = [*super().list_commands(ctx), *(n for n in LAZY_COMMANDS if n not in self.commands)]
        extra = {*PLUGIN_COMMANDS, *_plugins()} - {*names, *LAZY_COMMANDS}
        return [*names, *sorted(extra)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = self.commands.get(cmd_name)
        if found is None and cmd_name in LAZY_COMMANDS:
            module = importlib.import_module(LAZY_COMMANDS[cmd_name][0])
            found = typer.main.get_command(module.app)
        elif found is None and cmd_name in _plugins():
            loaded = _plugins()[cmd_name].load()
            found = typer.main.get_command(loaded) if isinstance(loaded, typer.Typer) else loaded
        elif found is None and cmd_name in PLUGIN_COMMANDS:
            return _missing(cmd_name, PLUGIN_COMMANDS[cmd_name])
        if found is not None and cmd_name not in self.commands:
            found.name = cmd_name
            tidy_help(found)
            self.add_command(found, cmd_name)
        return found

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [
            (
                name,
                LAZY_COMMANDS[name][1]
                if name in LAZY_COMMANDS
                else self.commands[name].get_short_help_str()
                if name in self.commands
                else _plugin_help(name),
            )
            for name in self.list_commands(ctx)
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            tidy_help(self)
            result = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
            code = result if isinstance(result, int) else 0
            if standalone_mode:
                sys.stdout.flush()
                sys.exit(code)
            return result
        except ClickException as exc:
            if isinstance(exc, NoArgsIsHelpError):
                exc.show()
                if standalone_mode:
                    sys.exit(exc.exit_code)
                raise
            sys.stderr.write(_usage_line(exc) + "\n")
            sys.stderr.flush()
            if standalone_mode:
                sys.exit(exc.exit_code)
            raise
        except typer.Abort:
            sys.stderr.write("keepup: aborted; nothing was changed\n")
            if standalone_mode:
                sys.exit(int(ExitCode.DECLINED))
            raise
        except (Exception, KeyboardInterrupt) as exc:
            code = report(exc)
            if standalone_mode:
                sys.exit(code)
            return code


def _usage_line(error: ClickException) -> str:
    """One line for a usage error: what was wrong and where to read the help."""
    message = " ".join(error.format_message().split()).rstrip(".")
    path = getattr(getattr(error, "ctx", None), "command_path", None)
    where = f"; see `{path} --help`" if isinstance(path, str) and path else ""
    return f"keepup: usage: {message}{where}"
