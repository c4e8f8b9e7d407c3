"""What every command shares: the global options and the runtime, opened on first use and closed
when the command ends."""

from __future__ import annotations

from dataclasses import dataclass, field

import typer

from keepup.runtime import Runtime, open_runtime

__all__ = ["CliContext", "runtime_of"]


@dataclass
class CliContext:
    """The global options of one ``keepup`` invocation."""

    store: str | None = None
    _runtime: Runtime | None = field(default=None, repr=False)

    def runtime(self, ctx: typer.Context) -> Runtime:
        """Open the runtime (the store named by ``--store``, ``KEEPUP_STORE_URL`` or the default
        under the Keepup home) once; it is closed when the command ends."""
        if self._runtime is None:
            self._runtime = open_runtime(self.store)
            ctx.find_root().call_on_close(self._close)
        return self._runtime

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
