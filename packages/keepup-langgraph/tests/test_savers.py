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


def _lg_checkpoint(i: int) -> Any:
    from datetime import UTC, datetime

    from langgraph.checkpoint.base.id import uuid6

    return {
        "v": 4,
        "id": str(uuid6(clock_seq=i)),
        "ts": datetime.now(UTC).isoformat(),
        "channel_values": {"step": i},
        "channel_versions": {"step": f"{i + 1:032}.0"},
        "versions_seen": {},
        "updated_channels": ["step"],
    }


def test_a_put_after_another_saver_moved_the_head_branches_as_it_would_have(tmp_path: Path) -> None:
    """Planted bug: the saver trusts the head it remembers from its own last put (it would
    extend a head that another saver has moved since, or fail with ConflictError)."""
    url = f"sqlite:///{tmp_path / 'g.db'}"
    with KeepupSaver.from_url(url) as mine, KeepupSaver.from_url(url) as other:
        base: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
        c1 = mine.put(base, _lg_checkpoint(1), {"step": 1}, {})
        c2 = mine.put(c1, _lg_checkpoint(2), {"step": 2}, {})
        c3 = other.put(c2, _lg_checkpoint(3), {"step": 3}, {})  # extends c2: the head moved
        c4 = mine.put(c2, _lg_checkpoint(4), {"step": 4}, {})  # after c2 again: a branch
        c5 = mine.put(c4, _lg_checkpoint(5), {"step": 5}, {})  # extends its own head
        latest = KeepupSaver.from_url(url)
        try:
            parent = {
                t.config["configurable"]["checkpoint_id"]: (t.parent_config or {})
                .get("configurable", {})
                .get("checkpoint_id")
                for t in latest.list(base)
            }
            head = latest.get_tuple(base)
        finally:
            latest.close()
        ids = [c["configurable"]["checkpoint_id"] for c in (c1, c2, c3, c4, c5)]
        assert parent == {ids[0]: None, ids[1]: ids[0], ids[2]: ids[1], ids[3]: ids[1], ids[4]: ids[3]}
        assert head is not None and head.config["configurable"]["checkpoint_id"] == ids[4]
