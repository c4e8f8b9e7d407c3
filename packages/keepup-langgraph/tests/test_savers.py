"""How the savers are built and used outside the conformance suite: from a URL (sync and
async), from a runtime, a graph run with ``ainvoke``, the async saver's sync methods from
another thread."""

from __future__ import annotations

import asyncio
import operator
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, TypedDict

import pytest
from keepup_langgraph import AsyncKeepupSaver, KeepupSaver
from langgraph.graph import END, START, StateGraph
from runtime_persistence import Checkpoints, open_store


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def _builder() -> Any:
    g = StateGraph(State)
    g.add_node("one", lambda s: {"log": ["one"]})
    g.add_node("two", lambda s: {"log": ["two"]})
    g.add_edge(START, "one")
    g.add_edge("one", "two")
    g.add_edge("two", END)
    return g


def test_async_saver_runs_a_graph_and_serves_sync_calls_from_other_threads(tmp_path: Path) -> None:
    async def main() -> None:
        async with await AsyncKeepupSaver.from_url(f"sqlite:///{tmp_path / 'a.db'}") as saver:
            graph = _builder().compile(checkpointer=saver)
            config: Any = {"configurable": {"thread_id": "a"}}
            out = await graph.ainvoke({"log": ["start"]}, config)
            assert out["log"] == ["start", "one", "two"]
            tup = await asyncio.to_thread(saver.get_tuple, config)
            assert tup is not None and tup.checkpoint["channel_values"]["log"] == out["log"]
            with pytest.raises(RuntimeError, match="a\\* methods"):
                saver.get_tuple(config)

    asyncio.run(main())


def test_from_runtime_shares_the_runtimes_store(tmp_path: Path) -> None:
    driver = open_store(f"sqlite:///{tmp_path / 'r.db'}")
    try:
        runtime = SimpleNamespace(checkpoints=Checkpoints(driver))
        saver = KeepupSaver.from_runtime(runtime)
        _builder().compile(checkpointer=saver).invoke({"log": []}, {"configurable": {"thread_id": "r"}})
        thread = runtime.checkpoints.find_thread("r")
        assert thread is not None and len(runtime.checkpoints.list(thread.id)) == 4
        saver.close()  # does not close the runtime's store
        assert runtime.checkpoints.latest(thread.id) is not None
    finally:
        driver.close()
