"""``keepup checkpoint show/diff`` read what a LangGraph graph saved through KeepupSaver: the
keepup-langgraph adapter registers a value decoder (entry point ``keepup.value_decoders``), so
the command line shows the graph's channel values and pending writes, not opaque bytes, and
without deserializing any object."""

from __future__ import annotations

import json
import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

from keepup._cli.values import decoders
from keepup.cli import app
from keepup_langgraph import KeepupSaver
from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph
from typer.testing import CliRunner


class State(TypedDict):
    log: Annotated[list[str], operator.add]
    messages: Annotated[list[Any], operator.add]


def _cli(home: Path, store: str, *args: str) -> Any:
    env = {"KEEPUP_HOME": str(home), "KEEPUP_STORE_URL": store, "KEEPUP_DEBUG": None}
    result = CliRunner().invoke(app, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_show_and_diff_render_langgraph_values(tmp_path: Path) -> None:
    assert any(d.__module__ == "keepup_langgraph.values" for d in decoders())
    store = f"sqlite:///{tmp_path / 'graph.db'}"

    def hello(state: State) -> dict[str, Any]:
        return {"log": ["hello"], "messages": [HumanMessage(content="hi there")]}

    g = StateGraph(State)
    g.add_node("hello", hello)
    g.add_edge(START, "hello")
    g.add_edge("hello", END)
    with KeepupSaver.from_url(store) as saver:
        g.compile(checkpointer=saver).invoke(
            {"log": ["start"], "messages": []}, {"configurable": {"thread_id": "t"}}
        )
        thread = saver.checkpoints.find_thread("t")
        assert thread is not None
        ids = [cp.id for cp in saver.checkpoints.list(thread.id)]
    newest, previous = ids[0], ids[1]

    shown = _cli(tmp_path, store, "checkpoint", "show", newest)
    assert shown["state"]["v:log"] == ["start", "hello"]
    message = shown["state"]["v:messages"][0]
    assert message["type"] == "langchain_core.messages.human.HumanMessage"
    assert message["value"]["content"] == "hi there"
    before = _cli(tmp_path, store, "checkpoint", "show", previous)
    assert ["log", ["hello"]] in [[w["channel"], w["value"]] for w in before["pending_writes"]]

    diff = _cli(tmp_path, store, "checkpoint", "diff", previous, newest)
    changes = {c["path"]: c for c in diff["changes"]}
    assert changes["v:log/1"]["kind"] == "added" and changes["v:log/1"]["new"] == "hello"
