"""``keepup browse``: the terminal browser (Textual, the ``tui`` extra of keepup-runtime)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from runtime_core import DriverUnavailableError, NotFoundError, ValidationError

from keepup._cli.context import keyring_option_of, read_only_url, store_option_of
from keepup._cli.exit_codes import describe

__all__ = ["TUI_EXTRA", "app", "browse", "refusal"]

TUI_EXTRA = "keepup-runtime[tui]"

app = typer.Typer(rich_markup_mode=None, add_completion=False)


def _require_textual() -> None:
    try:
        import textual  # noqa: F401
    except ImportError:
        raise DriverUnavailableError(
            f"keepup browse needs Textual, which is not installed: pip install '{TUI_EXTRA}'"
        ) from None


@app.command("browse")
def browse(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option("--store", metavar="URL", help="Store URL to browse (default: as for every command)."),
    ] = None,
) -> None:
    """Browse threads, checkpoints (with their forks), conversations, diffs, recorded messages
    and search in the terminal; restore and fork after a confirmation."""
    _require_textual()
    from runtime_persistence.storage.stores import open_store

    from keepup.runtime import keepup_home, resolved_store_url

    url = resolved_store_url(store or store_option_of(ctx))
    read_only = read_only_url(url)
    if read_only is not None:  # never create a store just to browse it
        try:
            open_store(read_only).close()
        except NotFoundError:
            raise NotFoundError(
                f"no store at {url} (`keepup demo` makes one, --store names another)"
            ) from None
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise ValidationError(
            "keepup browse is interactive: run it in a terminal (scripts use `keepup thread list --json` and friends)"
        )
    from keepup.runtime import resolved_keyring

    ring = resolved_keyring(keyring_option_of(ctx))  # an encrypted store: read with its keyring
    asyncio.run(_run(url, keepup_home(), ring))


async def _run(url: str, home: Path, ring: Any = None) -> None:
    from runtime_persistence import EnvelopeSerializer

    from keepup._browse.app import BrowseApp
    from keepup._browse.source import StoreSource

    serializer = None if ring is None else EnvelopeSerializer(keyring=ring)
    async with await StoreSource.open(url, home=home, serializer=serializer) as source:
        await BrowseApp(source, describe=refusal).run_async()


def refusal(error: BaseException) -> str:
    """What the browser shows for a refused or failed write: the line ``keepup`` would print
    for the same error (a busy thread's names the run), without its ``keepup:`` prefix."""
    return describe(error).removeprefix("keepup: ")
