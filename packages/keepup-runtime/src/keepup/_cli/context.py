"""What every command shares: the global options and the runtime, opened on first use and closed
when the command ends.

Commands that only read open an SQLite store read-only: they never create a store file or its
folders (a missing store is "no store at …", exit 4), and they work in a read-only home."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # typer only in annotations: the fast path (keepup._cli.fast) runs without it
    import typer

    from keepup.runtime import Runtime

__all__ = [
    "READ_ONLY_COMMANDS",
    "CliContext",
    "keyring_option_of",
    "read_only_url",
    "runtime_of",
    "shown_url",
]

READ_ONLY_COMMANDS = frozenset(
    {
        "thread list",
        "thread show",
        "checkpoint list",
        "checkpoint show",
        "checkpoint diff",
        "checkpoint replay",
        "checkpoint export",
        "artifact list",
        "artifact versions",
        "artifact get",
        "snapshot list",
        "snapshot diff",
        "run list",
        "run show",
        "store info",
        "session list",
        "session show",
        "task list",
        "task tree",
        "task show",
        "messages recent",
        "messages show",
        "messages search",
        "messages export",
        "messages stats",
    }
)
"""The commands that never write to the store (``GROUP VERB``)."""

STORELESS_COMMANDS = frozenset({"snapshot list", "snapshot diff"})
"""Read-only commands that do not use the store at all."""


def read_only_url(url: str) -> str | None:
    """``url`` opened read-only, for the schemes that can be (SQLite); None for the others."""
    if url.split(":", 1)[0].lower() != "sqlite":  # not urlsplit: it raises on a malformed host
        return None
    return url + ("&" if "?" in url else "?") + "read_only=1"


def shown_url(url: str) -> str:
    """``url`` without the read-only flag :func:`read_only_url` added."""
    for added in ("?read_only=1", "&read_only=1"):
        if url.endswith(added):
            return url[: -len(added)]
    return url


def _command_of(ctx: typer.Context) -> str:
    names = []
    node: typer.Context | None = ctx
    while node is not None and node.parent is not None:
        names.append(node.info_name or "")
        node = node.parent  # type: ignore[assignment]
    return " ".join(reversed(names))


class CliContext:
    """The global options of one ``keepup`` invocation. (A plain class: building a dataclass at
    import costs ``keepup thread list`` more than the rest of this module.)"""

    def __init__(self, store: str | None = None, keyring: str | None = None) -> None:
        self.store = store
        self.keyring = keyring  # --keyring FILE (else $KEEPUP_KEYRING, else <home>/keyring.toml)
        self._runtime: Runtime | None = None

    def __repr__(self) -> str:
        return f"CliContext(store={self.store!r}, keyring={self.keyring!r})"

    def runtime(self, ctx: typer.Context) -> Runtime:
        """Open the runtime (the store named by ``--store``, ``KEEPUP_STORE_URL`` or the default
        under the Keepup home) once; it is closed when the command ends. Commands that only read
        open it read-only where the store can be."""
        if self._runtime is None:
            self.open_for(_command_of(ctx))
            ctx.find_root().call_on_close(self._close)
        assert self._runtime is not None
        return self._runtime

    def open_for(self, command: str) -> Runtime:
        """Open the runtime for ``command`` (``GROUP VERB``) once, as :meth:`runtime` does; the
        caller closes it with :meth:`close`."""
        if self._runtime is None:
            from runtime_core import NotFoundError

            from keepup.runtime import keepup_home, open_runtime, resolved_store_url

            url = resolved_store_url(self.store)
            read_only = read_only_url(url) if command in READ_ONLY_COMMANDS else None
            if command in STORELESS_COMMANDS:
                # Snapshots live in the home's shadow folder, not in the store: leave it alone.
                self._runtime = open_runtime("memory://", keepup_home())
            elif read_only is None:
                self._runtime = open_runtime(url, keyring=self.keyring)
            else:
                try:
                    self._runtime = open_runtime(read_only, keepup_home(), keyring=self.keyring)
                except NotFoundError:
                    raise NotFoundError(
                        f"no store at {url} (commands that only read never create one; "
                        f"`keepup demo` makes one, --store names another){_absolute_hint(url)}"
                    ) from None
        return self._runtime

    def close(self) -> None:
        """Close the runtime if it was opened."""
        self._close()

    def _close(self) -> None:
        if self._runtime is not None:
            runtime, self._runtime = self._runtime, None
            runtime.close()


def runtime_of(ctx: typer.Context) -> Runtime:
    """The runtime of the command being run."""
    state = ctx.find_root().obj
    if not isinstance(state, CliContext):
        state = CliContext()
        ctx.find_root().obj = state
    return state.runtime(ctx)


def store_option_of(ctx: typer.Context) -> str | None:
    """The ``--store`` URL given on the command line (None: environment or default)."""
    state = ctx.find_root().obj
    return state.store if isinstance(state, CliContext) else None


def keyring_option_of(ctx: typer.Context) -> str | None:
    """The ``--keyring`` file given on the command line (None: environment or the home's file)."""
    state = ctx.find_root().obj
    return state.keyring if isinstance(state, CliContext) else None


def _absolute_hint(url: str) -> str:
    """A hint for ``sqlite:///home/me/k.db`` (relative, by SQLAlchemy's convention) when the
    absolute ``/home/me/k.db`` exists: the old reading of three slashes."""
    from urllib.parse import unquote

    head, _, rest = url.partition("sqlite:///")
    if head or not rest or rest.startswith("/"):
        return ""
    path = unquote(rest.split("?", 1)[0])
    if not Path(path).exists() and Path("/" + path).exists():
        return f"; three slashes is a relative path: did you mean sqlite:////{rest}?"
    return ""
