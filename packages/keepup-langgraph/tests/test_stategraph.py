"""A real LangGraph ``StateGraph`` (pure-Python nodes, no model) on KeepupSaver: invoke, state
history, ``update_state`` from an old checkpoint (a branch), an interrupt and its resume, a
subgraph (a checkpoint namespace of the same thread), and a process killed between a node's
writes and its checkpoint, after which the graph resumes without losing or repeating the node.
The lineage (every parent link, in every namespace) equals SqliteSaver's on the same graph."""

from __future__ import annotations

import operator
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from keepup_langgraph import KeepupSaver
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from runtime_persistence import open_store
from runtime_persistence.testing import driver_params, isolated_url

DRIVERS = driver_params(["sqlite", "postgres", "redis"])


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def _graph(checkpointer: BaseCheckpointSaver[Any]) -> Any:
    def s1(state: State) -> dict[str, list[str]]:
        return {"log": ["s1"]}

    def s2(state: State) -> dict[str, list[str]]:
        return {"log": ["s2"]}

    sub = StateGraph(State)
    sub.add_node("s1", s1)
    sub.add_node("s2", s2)
    sub.add_edge(START, "s1")
    sub.add_edge("s1", "s2")
    sub.add_edge("s2", END)

    def a(state: State) -> dict[str, list[str]]:
        return {"log": ["a"]}

    def ask(state: State) -> dict[str, list[str]]:
        answer = interrupt("continue?")
        return {"log": [f"answer:{answer}"]}

    def c(state: State) -> dict[str, list[str]]:
        return {"log": ["c"]}

    g = StateGraph(State)
    g.add_node("a", a)
    g.add_node("sub", sub.compile())
    g.add_node("ask", ask)
    g.add_node("c", c)
    g.add_edge(START, "a")
    g.add_edge("a", "sub")
    g.add_edge("sub", "ask")
    g.add_edge("ask", "c")
    g.add_edge("c", END)
    return g.compile(checkpointer=checkpointer)


def _script(checkpointer: BaseCheckpointSaver[Any], thread: str) -> dict[str, Any]:
    """The same story on any saver; returns what a test compares."""
    graph = _graph(checkpointer)
    config: Any = {"configurable": {"thread_id": thread}}
    first = graph.invoke({"log": ["start"]}, config, durability="sync")
    interrupted = "__interrupt__" in first
    paused = graph.get_state(config)
    done = graph.invoke(Command(resume="yes"), config, durability="sync")
    history = list(graph.get_state_history(config))
    old = next(s for s in history if s.values.get("log") == ["start", "a"])
    branched = graph.update_state(old.config, {"log": ["edited"]})
    after_branch = graph.get_state(branched)
    return {
        "interrupted": interrupted,
        "paused_next": paused.next,
        "done": done["log"],
        "history_values": [s.values.get("log") for s in history],
        "branch_values": after_branch.values["log"],
        "branch_parent": after_branch.parent_config["configurable"]["checkpoint_id"]
        if after_branch.parent_config
        else None,
        "old_id": old.config["configurable"]["checkpoint_id"],
        "lineage": _lineage(checkpointer, thread),
    }


def _lineage(saver: BaseCheckpointSaver[Any], thread: str) -> list[tuple[Any, ...]]:
    """Every checkpoint of the thread, in every namespace, ordered by its LangGraph id, as
    (namespace kind, step, source, position of its parent in that order, pending channels)."""
    tuples = list(saver.list({"configurable": {"thread_id": thread}}))
    tuples.sort(key=lambda t: t.checkpoint["id"])
    position = {t.checkpoint["id"]: i for i, t in enumerate(tuples)}
    out = []
    for t in tuples:
        parent = t.parent_config["configurable"]["checkpoint_id"] if t.parent_config else None
        out.append(
            (
                t.config["configurable"]["checkpoint_ns"].split(":")[0],
                t.metadata.get("step"),
                t.metadata.get("source"),
                position.get(parent, "missing") if parent else None,
                sorted(w[1] for w in t.pending_writes or []),
            )
        )
    return out


@pytest.fixture
def keepup_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = isolated_url(request.param, tmp_path)
    yield url
    driver = open_store(url)
    destroy = getattr(driver, "destroy", None)
    if destroy is not None:
        destroy()
    driver.close()


@pytest.mark.parametrize("keepup_url", DRIVERS, indirect=True)
def test_a_stategraph_story_matches_sqlitesaver_link_for_link(keepup_url: str, tmp_path: Path) -> None:
    with SqliteSaver.from_conn_string(str(tmp_path / "peer.db")) as peer:
        expected = _script(peer, "t-1")
    with KeepupSaver.from_url(keepup_url) as saver:
        got = _script(saver, "t-1")
        # the subgraph lives in a namespace of the same Keepup thread, not a thread of its own
        threads = saver.checkpoints.list_threads(limit=100)
        assert [t.external_key for t in threads] == ["t-1"]
        assert len(saver.checkpoints.namespaces(threads[0].id)) == 2
    assert got["interrupted"] and got["paused_next"] == ("ask",)
    # the subgraph shares the parent's "log" channel, so its output repeats the parent's input
    assert got["done"] == ["start", "a", "start", "a", "s1", "s2", "answer:yes", "c"]
    assert got["branch_values"] == ["start", "a", "edited"]
    assert got["branch_parent"] == got["old_id"]
    for key in ("interrupted", "paused_next", "done", "history_values", "branch_values"):
        assert got[key] == expected[key], key
    assert got["lineage"] == expected["lineage"]


def test_an_update_from_an_old_checkpoint_is_a_recorded_branch(tmp_path: Path) -> None:
    with KeepupSaver.from_url(f"sqlite:///{tmp_path / 'k.db'}") as saver:
        got = _script(saver, "t-2")
        thread = saver.checkpoints.find_thread("t-2")
        assert thread is not None
        head = saver.checkpoints.latest(thread.id)
        assert head is not None and head.branch
        assert head.external_key is not None
        parent = saver.checkpoints.get(head.parent_id or "")
        assert parent.external_key == got["old_id"]
        assert not parent.branch


CHILD = r"""
import operator, os, sys, time
from typing import Annotated, TypedDict
from langgraph.graph import END, START, StateGraph
from keepup_langgraph import KeepupSaver

url, marker, effects = sys.argv[1:4]

class State(TypedDict):
    log: Annotated[list[str], operator.add]

def before(state):
    return {"log": ["before"]}

def work(state):
    with open(effects, "a") as f:
        f.write("work\n")
    return {"log": ["work"]}

def after(state):
    return {"log": ["after"]}

class StopsBeforeTheCheckpoint(KeepupSaver):
    written = False

    def put_writes(self, config, writes, task_id, task_path=""):
        super().put_writes(config, writes, task_id, task_path)
        if any(channel == "log" and value == ["work"] for channel, value in writes):
            self.written = True

    def put(self, config, checkpoint, metadata, new_versions):
        if metadata.get("step") == 2:  # the checkpoint that follows work's step
            while not self.written:  # LangGraph saves a task's writes on a worker thread
                time.sleep(0.01)
            open(marker, "w").close()
            time.sleep(600)  # killed here: work's writes are stored, its checkpoint is not
        return super().put(config, checkpoint, metadata, new_versions)

g = StateGraph(State)
g.add_node("before", before)
g.add_node("work", work)
g.add_node("after", after)
g.add_edge(START, "before")
g.add_edge("before", "work")
g.add_edge("work", "after")
g.add_edge("after", END)
graph = g.compile(checkpointer=StopsBeforeTheCheckpoint.from_url(url))
graph.invoke({"log": ["start"]}, {"configurable": {"thread_id": "crash"}}, durability="sync")
"""


@pytest.mark.parametrize("keepup_url", DRIVERS, indirect=True)
def test_a_process_killed_between_a_nodes_writes_and_its_checkpoint_resumes_without_repeating_it(
    keepup_url: str, tmp_path: Path
) -> None:
    marker, effects = tmp_path / "marker", tmp_path / "effects"
    child = subprocess.Popen([sys.executable, "-c", CHILD, keepup_url, str(marker), str(effects)])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, "the child ended before reaching the checkpoint"
            assert time.monotonic() < deadline, "the child never reached the checkpoint"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    assert effects.read_text() == "work\n"

    from langgraph.graph import StateGraph as _SG  # the same graph, in this process

    def before(state: State) -> dict[str, list[str]]:
        return {"log": ["before"]}

    def work(state: State) -> dict[str, list[str]]:
        with open(effects, "a") as f:
            f.write("work\n")
        return {"log": ["work"]}

    def after(state: State) -> dict[str, list[str]]:
        return {"log": ["after"]}

    g = _SG(State)
    g.add_node("before", before)
    g.add_node("work", work)
    g.add_node("after", after)
    g.add_edge(START, "before")
    g.add_edge("before", "work")
    g.add_edge("work", "after")
    g.add_edge("after", END)
    with KeepupSaver.from_url(keepup_url) as saver:
        graph = g.compile(checkpointer=saver)
        config: Any = {"configurable": {"thread_id": "crash"}}
        stored = saver.get_tuple(config)
        assert stored is not None and stored.checkpoint["channel_values"]["log"] == ["start", "before"]
        assert ("log", ["work"]) in [(w[1], w[2]) for w in stored.pending_writes or []]
        final = graph.invoke(None, config, durability="sync")
    assert final["log"] == ["start", "before", "work", "after"]
    assert effects.read_text() == "work\n", "the node ran again after the crash"
