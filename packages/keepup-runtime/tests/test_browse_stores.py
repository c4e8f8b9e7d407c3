"""``keepup browse`` over the server stores, whose async drivers are native (psycopg's async
pool, redis.asyncio): the threads with their forks, a conversation, a restore and a search, on the
real servers (each test in its own key prefix, destroyed afterwards)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("textual")

from keepup._browse.app import BrowseApp
from keepup._browse.dialogs import NoticeScreen
from keepup._browse.screens import CheckpointsScreen, ConversationScreen, EventScreen, SearchScreen
from keepup._browse.source import StoreSource
from keepup.runtime import open_runtime
from runtime_core import CheckpointSource
from runtime_persistence import Events, MessageRecorder
from runtime_persistence.testing import open_test_store
from textual.widgets import DataTable


@pytest.mark.parametrize("backend", ["postgres", "redis"])
def test_browse_reads_and_restores_on_a_server_store(backend: str, tmp_path: Path) -> None:
    with open_test_store(backend, tmp_path) as store:
        assert store.url is not None
        with open_runtime(store.driver, home=tmp_path) as rt:
            thread = rt.checkpoints.create_thread("on a server")
            first = rt.checkpoints.save(
                thread.id, {"messages": [{"role": "user", "content": "hello from the server"}]}
            )
            rt.checkpoints.save(
                thread.id,
                {
                    "messages": [
                        {"role": "user", "content": "hello from the server"},
                        {"role": "assistant", "content": "hi"},
                    ]
                },
            )
            rt.checkpoints.fork(first.id, name="server fork")
            MessageRecorder(Events(rt.driver)).record(
                "agents.chat", {"text": "a recorded greeting"}, sender="bot"
            )

        async def main() -> None:
            async with await StoreSource.open(store.url or "", home=tmp_path) as source:
                app = BrowseApp(source)
                async with app.run_test(size=(80, 24)) as pilot:
                    await pilot.pause()
                    names = [
                        str(r[1])
                        for r in (app.screen.query_one("#threads", DataTable).get_row_at(i) for i in range(2))
                    ]
                    assert names == ["on a server", "└ ⑂ server fork"]
                    await pilot.press("enter")
                    await pilot.pause()
                    assert isinstance(app.screen, CheckpointsScreen)
                    table = app.screen.query_one("#checkpoints", DataTable)
                    assert str(table.get_row(first.id)[-1]) == "⑂ 1 server fork"
                    table.move_cursor(row=table.get_row_index(first.id))
                    await pilot.press("enter")
                    await pilot.pause()
                    assert isinstance(app.screen, ConversationScreen)
                    await pilot.press("r")
                    await pilot.pause()
                    await pilot.press("y")
                    await pilot.pause()
                    assert isinstance(app.screen, NoticeScreen)
                    assert "new head" in app.screen.message
                    await pilot.press("enter", "escape", "escape", "slash")
                    await pilot.pause()
                    assert isinstance(app.screen, SearchScreen)
                    await pilot.press(*"greeting", "enter")
                    await pilot.pause()
                    await pilot.press("enter")
                    await pilot.pause()
                    assert isinstance(app.screen, EventScreen)
                    assert app.screen.event.sender == "bot"

        asyncio.run(main())
        with open_runtime(store.driver, home=tmp_path) as rt:
            head = rt.checkpoints.latest(thread.id)
            assert head is not None
            assert head.source is CheckpointSource.RESTORE
            assert head.metadata["restored_from"] == first.id
