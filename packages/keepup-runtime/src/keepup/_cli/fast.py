"""The ``keepup`` command's fast path: a few hot read-only command lines, parsed by hand, run
without importing typer or click (importing typer alone costs more than the whole command may).

It runs exactly these, and only in the forms listed:

* ``keepup --help`` / ``-h``: the root help, rendered from :mod:`keepup._cli._root_help` (which
  ``scripts/gen_cli_help.py`` generates from the typer app) with a copy of click's layout, the
  plugin commands read from the installed distributions' metadata files;
* ``keepup --version`` / ``-V``;
* ``keepup [--store URL] [--keyring FILE] thread list [--limit N | -n N] [--before THREAD]
  [--since WHEN] [--until WHEN] [--json]`` (each option at most once, ``--opt VALUE`` or
  ``--opt=VALUE``, a separate value never starting with ``-``, N a plain number in range).

Anything else (another command, a repeated or unknown option, a value out of range, a bad
option, ``--`` or shell completion, an odd metadata file) returns None before doing anything,
and :func:`keepup.cli.main` hands the command line to the typer app, which then prints its own
help, result or usage error. What it runs prints the same bytes on stdout and stderr and exits
with the same code as the typer app (packages/keepup-runtime/tests/test_cli_fast_path.py runs
both on the same inputs)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textwrap import TextWrapper

    from keepup._cli.context import CliContext

__all__ = ["run", "version_line"]

VERSIONED = ("keepup-runtime", "runtime-core", "runtime-persistence", "runtime-execution")


def version_line() -> str:
    """What ``keepup --version`` prints: the versions of keepup and its packages."""
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    first, *rest = VERSIONED
    return f"keepup {of(first)} ({', '.join(f'{n} {of(n)}' for n in rest)})"


def run(argv: Sequence[str]) -> int | None:
    """Run ``argv`` (the arguments after ``keepup``) if this module fully understands it and
    return the exit code; None, having done nothing, for anything else."""
    if "_KEEPUP_COMPLETE" in os.environ:  # shell completion: typer's
        return None
    args = list(argv)
    if args in (["--help"], ["-h"]):
        text = _root_help()
        return None if text is None else _guarded(lambda: _echo(text))
    if args in (["--version"], ["-V"]):
        return _guarded(lambda: _write(version_line() + "\n"))
    parsed = _parse_thread_list(args)
    if parsed is None:
        return None
    return _thread_list(*parsed)


# ---------------------------------------------------------------------------------------------
# How the typer app ends a command (keepup._cli.command.KeepupGroup.main around typer.core._main,
# with standalone_mode=False inside): the same exit codes and lines for the same failures.


class _PacifyFlush:
    """click's PacifyFlushWrapper: a stream whose flush ignores a broken pipe (the reader went
    away), so that the interpreter's last flush does not print a second error."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped

    def flush(self) -> None:
        try:
            self.wrapped.flush()
        except OSError as e:
            import errno

            if e.errno != errno.EPIPE:
                raise

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.wrapped, attr)


def _guarded(body: Callable[[], None], on_close: Callable[[], None] | None = None) -> int:
    from keepup._cli.exit_codes import ExitCode, report

    try:
        try:
            try:
                body()
            finally:
                if on_close is not None:
                    on_close()
        except EOFError:
            sys.stderr.write("\n")
            sys.stderr.flush()
            sys.stderr.write("keepup: aborted; nothing was changed\n")
            return int(ExitCode.DECLINED)
        except KeyboardInterrupt:
            code = 130  # typer turns Ctrl-C into Exit(130): no message
        except OSError as e:
            import errno

            if e.errno != errno.EPIPE:
                raise
            sys.stdout = _PacifyFlush(sys.stdout)
            sys.stderr = _PacifyFlush(sys.stderr)
            sys.exit(1)
        else:
            code = 0
        sys.stdout.flush()
        return code
    except (Exception, KeyboardInterrupt) as exc:
        return report(exc)


def _write(text: str) -> None:
    sys.stdout.write(text)


def _echo(text: str) -> None:
    """click.echo of ``text`` on stdout (a str, a newline, then a flush)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
# keepup [--store URL] [--keyring FILE] thread list [options]

_ROOT_OPTIONS = {"--store": "store", "--keyring": "keyring"}
_LIST_OPTIONS = {
    "--limit": "limit",
    "-n": "limit",
    "--before": "before",
    "--since": "since",
    "--until": "until",
}
_NUMBER = r"[0-9]{1,6}"  # patterns are compiled on first use (re caches them), not at import
_DEFAULT_LIMIT = 50


def _take_options(
    args: list[str], start: int, stop: int, known: dict[str, str], flags: dict[str, str], out: dict[str, Any]
) -> bool:
    """Read ``args[start:stop]`` as options into ``out``; False for anything unknown, repeated,
    or a separate value that looks like an option."""
    i = start
    while i < stop:
        arg = args[i]
        name, eq, value = arg.partition("=")
        given: str | bool
        if arg in flags:
            key, given = flags[arg], True
        elif eq and name in known and name.startswith("--"):
            key, given = known[name], value
        elif arg in known and i + 1 < stop and not args[i + 1].startswith("-"):
            key, given = known[arg], args[i + 1]
            i += 1
        else:
            return False
        if key in out:
            return False
        out[key] = given
        i += 1
    return True


def _parse_thread_list(
    args: list[str],
) -> tuple[str | None, str | None, int, str | None, str | None, str | None, bool] | None:
    try:
        at = args.index("thread")
    except ValueError:
        return None
    if args[at + 1 : at + 2] != ["list"]:
        return None
    root: dict[str, Any] = {}
    options: dict[str, Any] = {}
    if not _take_options(args, 0, at, _ROOT_OPTIONS, {}, root):
        return None
    if not _take_options(args, at + 2, len(args), _LIST_OPTIONS, {"--json": "json"}, options):
        return None
    limit = _DEFAULT_LIMIT
    if "limit" in options:
        from keepup._cli.thread_list import MAX_LIMIT

        if not re.fullmatch(_NUMBER, options["limit"]) or not 1 <= int(options["limit"]) <= MAX_LIMIT:
            return None  # typer says what is wrong with it
        limit = int(options["limit"])
    # --store/--keyring as typer reads them: the option, else the environment (unless empty).
    store = root["store"] if "store" in root else os.environ.get("KEEPUP_STORE_URL") or None
    keyring = root["keyring"] if "keyring" in root else os.environ.get("KEEPUP_KEYRING") or None
    return (
        store or None,
        keyring or None,
        limit,
        options.get("before"),
        options.get("since"),
        options.get("until"),
        bool(options.get("json", False)),
    )


def _thread_list(
    store: str | None,
    keyring: str | None,
    limit: int,
    before: str | None,
    since: str | None,
    until: str | None,
    json_: bool,
) -> int:
    from keepup._cli.context import CliContext

    state = CliContext(store=store, keyring=keyring)

    def body() -> None:
        from keepup._cli.ids import THREAD, resolve_with
        from keepup._cli.thread_list import list_threads

        def runtime() -> Any:
            return _open(state)

        full = None if before is None else resolve_with(lambda: runtime().driver, THREAD, before)
        list_threads(runtime, limit=limit, before=full, since=since, until=until, json_=json_)

    return _guarded(body, on_close=state.close)


def _open(state: CliContext) -> Any:
    return state.open_for("thread list")


# ---------------------------------------------------------------------------------------------
# keepup --help: click's plain help layout (typer._click.formatting), for the root group only.


def _terminal_columns() -> int:
    """shutil.get_terminal_size().columns, without importing shutil."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    try:
        lines = int(os.environ["LINES"])
    except (KeyError, ValueError):
        lines = 0
    if columns <= 0 or lines <= 0:
        try:
            size = os.get_terminal_size(sys.__stdout__.fileno())  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            size = os.terminal_size((80, 24))
        if columns <= 0:
            columns = size.columns or 80
    return columns


def _wrapper(width: int, initial_indent: str = "", subsequent_indent: str = "") -> TextWrapper:
    from textwrap import TextWrapper

    class Wrapper(TextWrapper):
        # click's: a word longer than the line is cut where the line ends.
        def _handle_long_word(
            self, reversed_chunks: list[str], cur_line: list[str], cur_len: int, width: int
        ) -> None:
            space_left = max(width - cur_len, 1)
            last = reversed_chunks[-1]
            cur_line.append(last[:space_left])
            reversed_chunks[-1] = last[space_left:]

    return Wrapper(
        width, initial_indent=initial_indent, subsequent_indent=subsequent_indent, replace_whitespace=False
    )


def _wrap_text(
    text: str, width: int, initial_indent: str = "", subsequent_indent: str = "", paragraphs: bool = False
) -> str:
    text = text.expandtabs()
    wrapper = _wrapper(width, initial_indent, subsequent_indent)
    if not paragraphs:
        return wrapper.fill(text)
    found: list[tuple[int, bool, str]] = []
    buf: list[str] = []
    indent: int | None = None

    def flush() -> None:
        if not buf:
            return
        if buf[0].strip() == "\b":
            found.append((indent or 0, True, "\n".join(buf[1:])))
        else:
            found.append((indent or 0, False, " ".join(buf)))
        del buf[:]

    for line in text.splitlines():
        if not line:
            flush()
            indent = None
        else:
            stripped = line
            if indent is None:
                stripped = line.lstrip()
                indent = len(line) - len(stripped)
            buf.append(stripped)
    flush()
    out = []
    for extra, raw, chunk in found:
        wrapper.initial_indent = initial_indent + " " * extra
        wrapper.subsequent_indent = subsequent_indent + " " * extra
        if raw:
            lines = chunk.splitlines()
            out.append(
                "\n".join(
                    (wrapper.initial_indent if i == 0 else wrapper.subsequent_indent) + line
                    for i, line in enumerate(lines)
                )
            )
        else:
            out.append(wrapper.fill(chunk))
    return "\n\n".join(out)


def _definition_list(rows: Sequence[tuple[str, str]], width: int, indent: int) -> str:
    first_col = min(max(len(first) for first, _ in rows), 30) + 2
    out = []
    for first, second in rows:
        out.append(f"{'':>{indent}}{first}")
        if not second:
            out.append("\n")
            continue
        if len(first) <= first_col - 2:
            out.append(" " * (first_col - len(first)))
        else:
            out.append("\n" + " " * (first_col + indent))
        lines = _wrap_text(second, max(width - first_col - 2, 10), paragraphs=True).splitlines()
        if lines:
            out.append(f"{lines[0]}\n")
            out.extend(f"{'':>{first_col + indent}}{line}\n" for line in lines[1:])
        else:
            out.append("\n")
    return "".join(out)


def _root_help() -> str | None:
    """``keepup --help`` as the typer app prints it (without the final newline), or None when
    something about the environment is not plain enough to be sure."""
    import codecs

    from keepup._cli import _root_help as generated

    try:
        if codecs.lookup(sys.stdout.encoding).name != "utf-8":
            return None  # click would re-wrap the stream; let it
    except (AttributeError, LookupError, TypeError):
        return None
    plugins = _plugin_rows(generated.PLUGIN_GROUP, generated.PLUGIN_COMMANDS, generated.BUILTIN_NAMES)
    if plugins is None:
        return None
    rows = [*generated.COMMAND_ROWS, *plugins]
    if any("\033" in text for row in rows for text in row):
        return None
    width = max(min(_terminal_columns(), 80) - 2, 50)
    prefix = f"Usage: {generated.PROG} "
    if width >= len(prefix) + 20:
        usage = _wrap_text(generated.USAGE_ARGS, width, prefix, " " * len(prefix))
    else:
        indent = " " * (len("Usage: ") + 4)
        usage = prefix + "\n" + _wrap_text(generated.USAGE_ARGS, width, indent, indent)
    parts = [usage, "\n"]
    if generated.HELP_TEXT:
        parts += ["\n", _wrap_text(generated.HELP_TEXT, width, "  ", "  ", paragraphs=True), "\n"]
    parts += ["\nOptions:\n", _definition_list(generated.OPTION_ROWS, width, 2)]
    if rows:
        parts += ["\nCommands:\n", _definition_list(rows, width, 2)]
    return "".join(parts).rstrip("\n")


# ---------------------------------------------------------------------------------------------
# The plugin commands, as importlib.metadata.entry_points(group=...) finds them (keepup._cli.
# command._plugins and _plugin_help), read from the metadata folders on sys.path directly.

_HEADER = r"[\x21-\x39\x3b-\x7e]+:"


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        return None


def _metadata_folders() -> list[str] | None:
    """Every distribution's metadata folder in the order importlib.metadata.distributions()
    yields them, the first of each name only; None if anything is unusual."""
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if getattr(finder, "find_distributions", None) is not None and finder is not PathFinder:
            return None  # another finder adds distributions
    seen: set[str] = set()
    folders = []
    for root in sys.path:
        if os.path.basename(root).lower().endswith(".egg"):
            return None
        try:
            children = os.listdir(root or ".")
        except OSError:
            if os.path.isfile(root):
                return None  # a zip file: importlib.metadata would look inside
            continue
        groups: dict[str, list[str]] = {}
        for child in children:
            low = child.lower()
            if low.endswith((".dist-info", ".egg-info")):
                if not child.endswith((".dist-info", ".egg-info")):
                    return None  # upper case: named from its metadata, not its folder
                groups.setdefault(_normalize(low.rpartition(".")[0].partition("-")[0]), []).append(child)
        for children_of_name in groups.values():
            for child in children_of_name:
                key = _normalize(child.rpartition(".")[0].partition("-")[0])
                if key not in seen:
                    seen.add(key)
                    folders.append(os.path.join(root, child) if root else child)
    return folders


def _headers(text: str) -> dict[str, str] | None:
    """The first value of each header of a METADATA file (email's compat32 reading, folded lines
    joined), or None when it is not plain ASCII headers."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        if not line:
            break
        if not line.isascii() or line.startswith("From "):
            return None
        if line[0] in " \t":
            if current is None:
                return None
            current.append("\n" + line)
            continue
        if re.match(_HEADER, line) is None:
            return None
        name, _, value = line.partition(":")
        current = [value.lstrip(" \t")]
        found.setdefault(name.lower(), current)
    return {name: "".join(parts) for name, parts in found.items()}


def _plugin_rows(
    group: str, declared: dict[str, str], builtin: Sequence[str]
) -> list[tuple[str, str]] | None:
    folders = _metadata_folders()
    if folders is None:
        return None
    found: dict[str, str] = {}  # command -> the metadata folder of its distribution
    for folder in folders:
        try:
            text = _read(os.path.join(folder, "entry_points.txt"))
        except UnicodeDecodeError:
            return None
        if not text:
            continue
        section = None
        for line in map(str.strip, text.splitlines()):
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line.strip("[]")
                continue
            if section is None:
                continue
            if "=" not in line:
                return None  # importlib.metadata would raise
            if section == group:
                name = line.split("=", 1)[0].strip()
                if name not in builtin:
                    found.setdefault(name, folder)
    rows = []
    for name in sorted({*declared, *found} - set(builtin)):
        if name not in found:
            dist = declared[name]
            rows.append((name, f"(from {dist}, not installed: pip install {dist})"))
            continue
        try:
            text = _read(os.path.join(found[name], "METADATA")) or _read(
                os.path.join(found[name], "PKG-INFO")
            )
        except UnicodeDecodeError:
            return None
        headers = None if not text else _headers(text)
        if headers is None or "name" not in headers or "\n" in headers["name"]:
            return None
        summary = " ".join(headers.get("summary", "").split())
        source = headers["name"]
        rows.append((name, f"{summary} (from {source})" if summary else f"(from {source})"))
    return rows
