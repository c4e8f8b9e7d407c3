"""Regenerate the SVG screenshots of ``keepup browse`` shown in docs/browse.md.

    uv run python scripts/browse_screenshots.py [OUT_DIR]     # default: docs/

Builds a store with the library in a scratch Keepup home (the demo agent's thread, a fork of its
last good checkpoint, a short support chat and a few recorded messages), drives the browser with
Textual's pilot on an 80x24 terminal, and saves one SVG per screen."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from keepup._browse.app import BrowseApp
from keepup._browse.source import StoreSource
from keepup._cli.browse import refusal
from keepup.demo import DemoReport, run_demo
from keepup.runtime import open_runtime
from runtime_persistence import Events, MessageRecorder
from textual.pilot import Pilot
from textual.widgets import DataTable

CHAT = [
    {"role": "system", "content": "You are a support agent for the Acme calculator."},
    {"role": "user", "content": "multiply(2, 3) returns 5 since this morning. Can you look?"},
    {
        "role": "assistant",
        "content": "Let me run the tests first.",
        "tool_calls": [{"id": "c1", "name": "run_tests", "arguments": {"path": "test_calc.py"}}],
    },
    {"role": "tool", "name": "run_tests", "tool_call_id": "c1", "content": '{"passed": 2, "failed": 1}'},
    {
        "role": "assistant",
        "content": "test_multiply fails: multiply() adds instead of multiplying. "
        "Restoring the last good checkpoint fixes it; I will fork from there and retry.",
    },
]


def build(home: Path) -> tuple[str, DemoReport, str]:
    with open_runtime(home=home) as rt:
        report = run_demo(rt)
        rt.checkpoints.fork(report.last_good, name="retry")
        chat = rt.checkpoints.create_thread("support chat")
        rt.checkpoints.save(chat.id, {"messages": CHAT[:2], "status": "running"}, label="question")
        rt.checkpoints.save(chat.id, {"messages": CHAT, "status": "completed"}, label="answered")
        recorder = MessageRecorder(Events(rt.driver))
        for topic, sender, text in [
            ("agents.chat", "alice", "multiply(2, 3) returns 5 since this morning"),
            ("agents.tasks", "planner", "assign: fix multiply() to coder"),
            ("agents.chat", "coder", "test_multiply fails: multiply() adds instead of multiplying"),
            ("agents.chat", "coder", "restored the last good checkpoint; retrying multiply()"),
            ("agents.status", "coder", "idle"),
        ]:
            recorder.record(topic, {"text": text}, sender=sender, thread_id=report.thread_id)
        return rt.driver.url, report, chat.id


async def shoot(home: Path, url: str, report: DemoReport, chat_id: str, out: Path) -> None:
    async with await StoreSource.open(url, home=home) as source:
        app = BrowseApp(source, describe=refusal)
        async with app.run_test(size=(80, 24)) as pilot:

            async def settle() -> None:
                await pilot.pause()
                await pilot.pause()

            def save(name: str) -> None:
                app.save_screenshot(f"browse-{name}.svg", str(out))

            await settle()
            save("threads")
            await open_row(pilot, app, "#threads", report.thread_id)
            await settle()
            await open_row(pilot, app, "#checkpoints", report.last_good, enter=False)
            await pilot.press("m")
            await settle()
            save("checkpoints")
            await open_row(pilot, app, "#checkpoints", report.failed, enter=False)
            await pilot.press("d")
            await settle()
            save("diff")
            await pilot.press("escape")
            await open_row(pilot, app, "#checkpoints", report.last_good, enter=False)
            await pilot.press("r")
            await settle()
            save("restore")
            await pilot.press("n")
            with open_runtime(url, home=home) as rt:
                rt.leases.acquire(report.thread_id, f"{report.run_id}+worker-7", timedelta(minutes=10))
            await pilot.press("r")
            await settle()
            save("refused")
            await pilot.press("enter", "escape")
            await settle()
            await open_row(pilot, app, "#threads", chat_id)
            await settle()
            await pilot.press("enter")
            await settle()
            save("conversation")
            await pilot.press("escape", "escape")
            await pilot.press("slash")
            await settle()
            await pilot.press(*"multiply", "enter")
            await settle()
            save("search")


async def open_row(
    pilot: Pilot[None], app: BrowseApp, table_id: str, key: str, *, enter: bool = True
) -> None:
    table = app.screen.query_one(table_id, DataTable)
    await pilot.press(*["up"] * table.row_count, *["down"] * table.get_row_index(key))
    if enter:
        await pilot.press("enter")


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs").resolve()
    home = Path(tempfile.mkdtemp(prefix="keepup-"))
    try:
        url, report, chat_id = build(home)
        asyncio.run(shoot(home, url, report, chat_id, out))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"screenshots written to {out}")


if __name__ == "__main__":
    main()
