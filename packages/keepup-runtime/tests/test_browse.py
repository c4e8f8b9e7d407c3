"""``keepup browse``, driven with Textual's pilot on an 80x24 terminal, over real SQLite stores
built with the library (the demo agent's thread, a fork of it, recorded messages)."""

from __future__ import annotations

import asyncio
import io
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("textual")

from keepup._browse.app import BrowseApp
from keepup._browse.dialogs import ConfirmScreen, NoticeScreen
from keepup._browse.screens import (
    MAX_MESSAGES,
    CheckpointsScreen,
    ConversationScreen,
    DiffScreen,
    EventScreen,
    EventsScreen,
    SearchScreen,
    ThreadsScreen,
)
from keepup._browse.source import StoreSource
from keepup._cli.browse import refusal
from keepup.cli import app as cli_app
from keepup.demo import DemoReport, run_demo
from keepup.runtime import open_runtime
from rich.console import Console
from runtime_core import CheckpointSource
from runtime_persistence import Events, MessageRecorder
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static
from typer.testing import CliRunner

Scenario = Callable[[BrowseApp, Pilot[None]], Awaitable[None]]


@dataclass
class Store:
    home: Path
    url: str
    report: DemoReport
    fork_id: str


def build(home: Path) -> Store:
    """The demo's thread (6 checkpoints with workspace snapshots, failed at the end), a fork
    named "retry" from its last good checkpoint, and three recorded messages."""
    with open_runtime(home=home) as rt:
        report = run_demo(rt)
        fork = rt.checkpoints.fork(report.last_good, name="retry")
        recorder = MessageRecorder(Events(rt.driver))
        recorder.record(
            "agents.chat", {"role": "user", "text": "Please fix the failing add() test"}, sender="alice"
        )
        recorder.record(
            "agents.chat",
            {"role": "assistant", "text": "Restoring the last good checkpoint, then retrying add()"},
            sender="coder",
            thread_id=report.thread_id,
        )
        recorder.record("agents.status", {"state": "idle"}, sender="coder")
        return Store(home, rt.driver.url, report, fork.id)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A store the read-only tests share."""
    return build(tmp_path_factory.mktemp("browse-home"))


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The store :func:`fresh` copies."""
    return build(tmp_path_factory.mktemp("browse-original"))


@pytest.fixture
def fresh(original: Store, tmp_path: Path) -> Store:
    """A store of its own, for the tests that write: a copy of the original's home (the store
    and its shadow-git snapshots). Its checkpoints still name the original's demo workspace, so
    a test that writes files builds its own store (:func:`build`)."""
    home = tmp_path / "home"
    shutil.copytree(original.home, home, ignore=shutil.ignore_patterns("demo"))
    url = original.url.replace(str(original.home), str(home))
    assert url != original.url
    return Store(home, url, original.report, original.fork_id)


def browse(store: Store, scenario: Scenario, size: tuple[int, int] = (80, 24)) -> None:
    browse_at(store.url, store.home, scenario, size)


def browse_at(url: str, home: Path, scenario: Scenario, size: tuple[int, int] = (80, 24)) -> None:
    """Run the browser on the store at ``url`` in a terminal of ``size`` and play ``scenario``."""

    async def main() -> None:
        async with await StoreSource.open(url, home=home) as source:
            app = BrowseApp(source, describe=refusal)
            async with app.run_test(size=size) as pilot:
                await pilot.pause()
                await scenario(app, pilot)

    asyncio.run(main())


def screen_text(app: BrowseApp) -> str:
    """What the terminal shows now, as plain text (the screen and the dialogs above it)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True, force_terminal=True)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


async def open_thread(app: BrowseApp, pilot: Pilot[None], thread_id: str) -> CheckpointsScreen:
    table = app.screen.query_one("#threads", DataTable)
    await pilot.press(*["down"] * table.get_row_index(thread_id), "enter")
    await pilot.pause()
    screen = app.screen_stack[2] if len(app.screen_stack) > 2 else app.screen
    assert isinstance(screen, CheckpointsScreen)
    return screen


async def select_checkpoint(app: BrowseApp, pilot: Pilot[None], checkpoint_id: str) -> None:
    """Put the cursor on the checkpoint's row (the arrow keys are exercised by open_thread)."""
    table = app.screen.query_one("#checkpoints", DataTable)
    table.move_cursor(row=table.get_row_index(checkpoint_id))
    await pilot.pause()


def head_of(store: Store, thread_id: str) -> Any:
    with open_runtime(store.url, home=store.home) as rt:
        return rt.checkpoints.latest(thread_id)


def test_threads_list_each_fork_under_the_thread_it_came_from(shared: Store) -> None:
    async def scenario(app: BrowseApp, pilot: Pilot[None]) -> None:
        assert isinstance(app.screen, ThreadsScreen)
        lines = screen_text(app).splitlines()
        demo = next(i for i, line in enumerate(lines) if "keepup demo" in line)
        assert "└ ⑂ retry" in lines[demo + 1]
        assert "2 threads" in screen_text(app)

    browse(shared, scenario)


def test_checkpoints_show_the_forks_started_from_each(shared: Store) -> None:
    async def scenario(app: BrowseApp, pilot: Pilot[None]) -> None:
        screen = await open_thread(app, pilot, shared.report.thread_id)
        table = screen.query_one("#checkpoints", DataTable)
        assert table.row_count == len(shared.report.checkpoints)
        row = table.get_row(shared.report.last_good)
        assert str(row[-1]).startswith("⑂ 1 retry")
        assert [str(table.get_row(cp.id)[-1]) for cp in shared.report.checkpoints].count("") == 5
        text = screen_text(app)
        assert "⑂ 1 retry" in text
        for hint in ("d diff", "r restore", "f fork", "o open fork"):  # the keys fit in 80 columns
            assert hint in text
        # o opens the fork, which says where it came from
        await select_checkpoint(app, pilot, shared.report.last_good)
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(app.screen, CheckpointsScreen)
        assert app.screen.thread_id == shared.fork_id
        assert f"forked from checkpoint {shared.report.last_good}" in screen_text(app)

    browse(shared, scenario)


def test_a_checkpoint_opens_as_a_chat_of_its_messages(shared: Store) -> None:
    async def scenario(app: BrowseApp, pilot: Pilot[None]) -> None:
        await open_thread(app, pilot, shared.report.thread_id)
        await select_checkpoint(app, pilot, shared.report.failed)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConversationScreen)
        text = screen_text(app)
        assert "╭─ user" in text
        assert "Write calc.py with add, subtract and multiply" in text
        assert "tool · write_file" in text
        assert "error: the refactor of add() broke its test" in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, CheckpointsScreen)

    browse(shared, scenario)


def test_diff_compares_the_marked_checkpoint_with_the_selected_one(shared: Store) -> None:
    async def scenario(app: BrowseApp, pilot: Pilot[None]) -> None:
        await open_thread(app, pilot, shared.report.thread_id)
        await select_checkpoint(app, pilot, shared.report.last_good)
        await pilot.press("m")
        await pilot.pause()
        assert app.marked == shared.report.last_good
        await select_checkpoint(app, pilot, shared.report.failed)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, DiffScreen)
        comparison = app.screen.comparison
        assert (comparison.a.id, comparison.b.id) == (shared.report.last_good, shared.report.failed)
        assert comparison.files is not None
        assert [f.path for f in comparison.files] == ["calc.py"]
        assert any(e.path == "status" for e in comparison.state)
        text = screen_text(app)
        assert "files: 1 changed" in text
        assert "calc.py" in text
        assert "state: " in text

    browse(shared, scenario)


def test_diff_without_a_mark_compares_with_the_parent(shared: Store) -> None:
    async def scenario(app: BrowseApp, pilot: Pilot[None]) -> None:
        await open_thread(app, pilot, shared.report.thread_id)
        await select_checkpoint(app, pilot, shared.report.failed)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, DiffScreen)
        failed = next(cp for cp in shared.report.checkpoints if cp.id == shared.report.failed)
        assert app.screen.comparison.a.id == failed.parent_id

    browse(shared, scenario)


def test_restore_asks_first_and_no_writes_nothing(fresh: Store) -> None:
    before = head_of(fresh, fresh.report.thread_id)

    async def scenario(app: BrowseApp, pilot: Pilot[None]) -> None:
        await open_thread(app, pilot, fresh.report.thread_id)
        await select_checkpoint(app, pilot, fresh.report.last_good)
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        text = screen_text(app)
        assert "Restore thread" in text
        assert fresh.report.last_good in text
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, CheckpointsScreen)

    browse(fresh, scenario)
    assert head_of(fresh, fresh.report.thread_id).id == before.id


def test_restore_confirmed_writes_a_new_head_with_that_state(fresh: Store) -> None:
    workspace = Path(fresh.report.workspace)
    files_before = (workspace / "calc.py").read_text()

    async def scenario(app: BrowseApp, pilot: Pilot[None]) -> None:
        await open_thread(app, pilot, fresh.report.thread_id)
        await select_checkpoint(app, pilot, fresh.report.last_good)
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert isinstance(app.screen, NoticeScreen)
        assert "new head" in app.screen.message
        await pilot.press("enter")
        await pilot.pause()
        table = app.screen.query_one("#checkpoints", DataTable)
        assert table.row_count == len(fresh.report.checkpoints) + 1  # the table shows the new head

    browse(fresh, scenario)
    head = head_of(fresh, fresh.report.thread_id)
    good = next(cp for cp in fresh.report.checkpoints if cp.id == fresh.report.last_good)
    assert head.source is CheckpointSource.RESTORE
    assert head.metadata["restored_from"] == good.id
    assert head.state == good.state
    assert (workspace / "calc.py").read_text() == files_before  # files only when asked


def test_restore_with_the_files_option_brings_the_workspace_back(tmp_path: Path) -> None:
    fresh = build(tmp_path / "home")
    workspace = Path(fresh.report.workspace)

    def changed_since_last_good() -> list[str]:
        with open_runtime(fresh.url, home=fresh.home) as rt:
            good = rt.checkpoints.get(fresh.report.last_good)
            assert good.workspace is not None
            return [f.path for f in rt.snapshots(workspace).diff(good.workspace.commit)]

    assert changed_since_last_good() == ["calc.py"]

    async def scenario(app: BrowseApp, pilot: Pilot[None]) -> None:
        await open_thread(app, pilot, fresh.report.thread_id)
        await select_checkpoint(app, pilot, fresh.report.last_good)
        await pilot.press("r")
        await pilot.pause()
        text = screen_text(app)
        assert "also restore the workspace files" in text
        question = str(app.screen.query_one("#question", Static).content)
        assert f"Workspace: {workspace} (a rescue snapshot is taken first)" in question
        await pilot.click("#option")
        await pilot.press("y")
        await pilot.pause()
        assert isinstance(app.screen, NoticeScreen)
        assert "files: 1 changed" in app.screen.message

    browse(fresh, scenario)
    assert changed_since_last_good() == []


def test_restore_is_refused_plainly_while_a_run_holds_the_thread(fresh: Store) -> None:
    thread_id = fresh.report.thread_id
    with open_runtime(fresh.url, home=fresh.home) as rt:
        rt.leases.acquire(thread_id, f"{fresh.report.run_id}+browser-test", timedelta(minutes=5))
        before = rt.checkpoints.latest(thread_id)
    cli = CliRunner().invoke(
        cli_app,
        ["--store", fresh.url, "checkpoint", "restore", fresh.report.last_good, "--yes"],
        env={"KEEPUP_HOME": str(fresh.home)},
    )
    assert cli.exit_code == 7
    refusal = cli.stderr.strip().removeprefix("keepup: ")

    async def scenario(app: BrowseApp, pilot: Pilot[None]) -> None:
        await open_thread(app, pilot, thread_id)
        assert f"● run {fresh.report.run_id} holds this thread" in screen_text(app)
        await select_checkpoint(app, pilot, fresh.report.last_good)
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, NoticeScreen)  # no confirmation is even offered
        assert app.screen.message == refusal
        assert fresh.report.run_id in screen_text(app)
        assert "Restore refused" in screen_text(app)

    browse(fresh, scenario)
    assert head_of(fresh, thread_id).id == before.id


def test_fork_confirmed_starts_a_named_thread_at_the_checkpoint(fresh: Store) -> None:
    async def scenario(app: BrowseApp, pilot: Pilot[None]) -> None:
        await open_thread(app, pilot, fresh.report.thread_id)
        await select_checkpoint(app, pilot, fresh.report.failed)
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        box = app.screen.query_one("#text", Input)
        assert box.value == "fork of keepup demo at step 5"
        assert box.has_focus
        await pilot.press(*"second try", "enter")  # typing replaces the default
        await pilot.pause()
        assert isinstance(app.screen, NoticeScreen)
        await pilot.press("enter")
        await pilot.pause()
        row = app.screen.query_one("#checkpoints", DataTable).get_row(fresh.report.failed)
        assert str(row[-1]) == "⑂ 1 second try"
        await pilot.press("escape")  # back on the threads, the new fork is listed
        await pilot.pause()
        assert isinstance(app.screen, ThreadsScreen)
        assert "└ ⑂ second try" in screen_text(app)

    browse(fresh, scenario)
    with open_runtime(fresh.url, home=fresh.home) as rt:
        forks = [t for t in rt.checkpoints.list_threads() if t.forked_from == fresh.report.failed]
    assert [t.name for t in forks] == ["second try"]


def test_events_list_recorded_messages_newest_first_and_open_one(shared: Store) -> None:
    async def scenario(app: BrowseApp, pilot: Pilot[None]) -> None:
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, EventsScreen)
        table = app.screen.query_one("#events", DataTable)
        assert [str(table.get_row_at(i)[1]) for i in range(table.row_count)] == [
            "agents.status",
            "agents.chat",
            "agents.chat",
        ]
        assert "3 recorded messages" in screen_text(app)
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, EventScreen)
        assert "Restoring the last good checkpoint" in screen_text(app)

    browse(shared, scenario)


def test_the_events_of_a_thread_are_only_its_own(shared: Store) -> None:
    async def scenario(app: BrowseApp, pilot: Pilot[None]) -> None:
        await open_thread(app, pilot, shared.report.thread_id)
        await pilot.press("e")
        await pilot.pause()
        table = app.screen.query_one("#events", DataTable)
        assert table.row_count == 1
        assert "Restoring the last good" in str(table.get_row_at(0)[3])

    browse(shared, scenario)


def test_search_lists_matching_messages_with_the_match_highlighted(shared: Store) -> None:
    async def scenario(app: BrowseApp, pilot: Pilot[None]) -> None:
        await pilot.press("slash")
        await pilot.pause()
        assert isinstance(app.screen, SearchScreen)
        await pilot.press(*"ADD()", "enter")
        await pilot.pause()
        table = app.screen.query_one("#hits", DataTable)
        assert table.row_count == 2
        assert [str(table.get_row_at(i)[2]) for i in range(2)] == ["coder", "alice"]
        snippet = table.get_row_at(1)[3]
        highlighted = [snippet.plain[s.start : s.end] for s in snippet.spans if "yellow" in str(s.style)]
        assert highlighted == ["add()"]
        assert "2 messages match 'ADD()'" in screen_text(app)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, EventScreen)
        assert app.screen.event.sender == "coder"

    browse(shared, scenario)


def test_fork_declined_with_escape_writes_nothing(fresh: Store) -> None:
    async def scenario(app: BrowseApp, pilot: Pilot[None]) -> None:
        await open_thread(app, pilot, fresh.report.thread_id)
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press(*"never mind", "escape")
        await pilot.pause()
        assert isinstance(app.screen, CheckpointsScreen)

    browse(fresh, scenario)
    with open_runtime(fresh.url, home=fresh.home) as rt:
        assert sorted(t.name for t in rt.checkpoints.list_threads()) == ["keepup demo", "retry"]


def test_a_stray_enter_in_the_restore_dialog_declines(fresh: Store) -> None:
    before = head_of(fresh, fresh.report.thread_id)

    async def scenario(app: BrowseApp, pilot: Pilot[None]) -> None:
        await open_thread(app, pilot, fresh.report.thread_id)
        await select_checkpoint(app, pilot, fresh.report.last_good)
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")  # the focus is on No
        await pilot.pause()
        assert isinstance(app.screen, CheckpointsScreen)

    browse(fresh, scenario)
    assert head_of(fresh, fresh.report.thread_id).id == before.id


def test_a_thread_deleted_under_the_browser_is_a_notice_not_a_crash(fresh: Store) -> None:
    async def scenario(app: BrowseApp, pilot: Pilot[None]) -> None:
        with open_runtime(fresh.url, home=fresh.home) as rt:  # another process deletes it
            rt.delete_thread(fresh.fork_id)
        await open_thread(app, pilot, fresh.fork_id)
        notice = app.screen
        assert isinstance(notice, NoticeScreen)
        assert notice.message == f"error: thread {fresh.fork_id} not found"
        await pilot.press("enter", "escape")
        await pilot.pause()
        assert isinstance(app.screen, ThreadsScreen)
        assert app.is_running

    browse(fresh, scenario)


def test_a_long_conversation_shows_its_newest_messages_and_says_what_it_left_out(tmp_path: Path) -> None:
    with open_runtime(home=tmp_path) as rt:
        thread = rt.checkpoints.create_thread("long talk")
        turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}"} for i in range(450)]
        cp = rt.checkpoints.save(thread.id, {"messages": turns})
        url = rt.driver.url

    async def scenario(app: BrowseApp, pilot: Pilot[None]) -> None:
        await open_thread(app, pilot, thread.id)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConversationScreen)
        shown = [str(w.content) for w in app.screen.query(".message")]
        assert len(shown) == MAX_MESSAGES
        assert shown[0] == f"turn {450 - MAX_MESSAGES}"
        assert shown[-1] == "turn 449"
        assert f"… {450 - MAX_MESSAGES} earlier messages not shown" in screen_text(app)
        assert cp.id in str(app.screen.query_one(".note", Static).content)

    browse_at(url, tmp_path, scenario)
