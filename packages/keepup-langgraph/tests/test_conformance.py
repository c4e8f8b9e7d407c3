"""LangGraph's own checkpointer conformance suite (``langgraph-checkpoint-conformance``), in
full, on every Keepup driver, for the sync saver (its ``a*`` methods run the sync ones on a
worker thread) and the async one."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from keepup_langgraph import AsyncKeepupSaver, KeepupSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.report import ProgressCallbacks
from runtime_persistence import AsyncCheckpoints, Checkpoints, open_store, open_store_async
from runtime_persistence.testing import driver_params, isolated_url, split_mode

# Every capability of the published suite (0.0.2). LangGraph's newer, optional
# get_delta_channel_history is not overridden: its default walk over get_tuple serves it.
EXPECTED = {
    "put",
    "put_writes",
    "get_tuple",
    "list",
    "delete_thread",
    "delete_for_runs",
    "copy_thread",
    "prune",
}


async def _destroy(driver: Any) -> None:
    destroy = getattr(driver, "destroy", None)
    if destroy is not None:
        result = destroy()
        if inspect.isawaitable(result):
            await result
    closed = driver.close()
    if inspect.isawaitable(closed):
        await closed


# Every driver in both modes; to keep this package's quick run short, the runs that add the least
# (files, MySQL, and the async twins on servers) are marked slow and run in `nox -s stress`.
_QUICK = {"memory", "sqlite", "postgres", "redis", "memory+async", "sqlite+async"}
PARAMS = [
    p if p.values[0] in _QUICK else pytest.param(*p.values, id=p.id, marks=[*p.marks, pytest.mark.slow])
    for p in driver_params(modes=("sync", "async"))
]


@pytest.mark.parametrize("param", PARAMS)
def test_langgraph_conformance_suite_passes_in_full(param: str, tmp_path: Path) -> None:
    name, mode = split_mode(param)

    @checkpointer_test(name=f"KeepupSaver[{param}]")
    async def factory() -> AsyncIterator[Any]:
        url = isolated_url(name, tmp_path)
        if mode == "sync":
            driver: Any = await asyncio.to_thread(open_store, url)
            yield KeepupSaver(Checkpoints(driver))
            await asyncio.to_thread(lambda: asyncio.run(_destroy(driver)))
        else:
            driver = await open_store_async(url)
            yield AsyncKeepupSaver(AsyncCheckpoints(driver))
            await _destroy(driver)

    async def run() -> Any:
        return await validate(factory, progress=ProgressCallbacks.verbose())

    report = asyncio.run(run())
    report.print_report()
    results = report.results
    ran = {name for name, r in results.items() if r.detected}
    assert ran >= EXPECTED, f"capabilities not run: {EXPECTED - ran}"
    assert report.passed_all(), report.to_dict()
    assert sum(r.tests_failed for r in results.values()) == 0, report.to_dict()
