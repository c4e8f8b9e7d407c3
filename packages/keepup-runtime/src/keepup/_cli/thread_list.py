"""``keepup thread list`` itself, without typer: :mod:`keepup._cli.threads` runs it for the typer
command, and :mod:`keepup._cli.fast` for the command line it parses by hand."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from keepup._cli.ids import CHECKPOINT, THREAD, abbreviate
from keepup._cli.moments import within
from keepup._cli.rendering import Column, out_console, print_json, table, when
from keepup._cli.shapes import thread_json

if TYPE_CHECKING:
    from runtime_persistence import Checkpoints
    from runtime_persistence.checkpoint._sync.listing import ThreadLister

    from keepup.runtime import Runtime

__all__ = ["MAX_LIMIT", "list_threads"]

MAX_LIMIT = 10_000
"""The most threads ``--limit`` may ask for."""


def list_threads(
    runtime_of: Callable[[], Runtime],
    *,
    limit: int,
    before: str | None,
    since: str | None,
    until: str | None,
    json_: bool,
) -> None:
    """Print the threads, newest first: ``before`` a full thread id (the page before it), the
    window ``since``/``until`` by the time they were last updated."""
    window = since is not None or until is not None
    threads = _lister(runtime_of()).list_threads(limit=MAX_LIMIT if window else limit, before=before)
    if window:
        threads = within(threads, lambda t: t.updated_at, since, until)[:limit]
    if json_:
        print_json({"threads": [thread_json(t) for t in threads]})
        return
    if not threads:
        out_console().print("no threads yet: run `keepup demo` to make one")
        return
    driver = runtime_of().driver
    tids = abbreviate(driver, THREAD, [t.id for t in threads])
    cids = abbreviate(driver, CHECKPOINT, [c for t in threads for c in (t.head, t.forked_from)])
    table(
        None,
        [
            Column("thread", 100, wrap=False),
            Column("name", 90),
            Column("head", 40, wrap=False),
            Column("forked from", 30, wrap=False),
            Column("updated", 60),
        ],
        [
            (
                tids[t.id],
                t.name or "-",
                None if t.head is None else cids[t.head],
                None if t.forked_from is None else cids[t.forked_from],
                when(t.updated_at),
            )
            for t in threads
        ],
    )


def _lister(runtime: Runtime) -> Checkpoints | ThreadLister:
    """What lists the threads: the runtime's checkpoint store if it is built already, else a
    :class:`ThreadLister` over the same driver and serializer, which lists, verifies and follows
    heads with the store's own code but loads none of its other parts (nor the checkpoint,
    artifact, workspace and session records of runtime_core): about a third of what the whole
    store costs ``keepup thread list`` to import."""
    if "checkpoints" in vars(runtime):
        return runtime.checkpoints
    from runtime_persistence.checkpoint._sync.listing import ThreadLister

    return ThreadLister(runtime.driver, serializer=runtime.serializer)
