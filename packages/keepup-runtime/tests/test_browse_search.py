"""The browser's search over recorded messages: today the documented fallback, a substring scan
of the event log, on a real SQLite store through the async repositories."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from keepup._browse.search import SearchHit, search_messages, text_of
from keepup._browse.source import unique_prefixes
from runtime_core import Event, ValidationError
from runtime_persistence import AsyncEvents, AsyncMessageRecorder, open_store_async

T = TypeVar("T")


def on_store(tmp_path: Path, body: Callable[[AsyncEvents], Awaitable[T]]) -> T:
    async def main() -> T:
        driver = await open_store_async(f"sqlite:///{tmp_path / 'events.db'}")
        try:
            return await body(AsyncEvents(driver))
        finally:
            await driver.close()

    return asyncio.run(main())


async def record_three(events: AsyncEvents) -> None:
    recorder = AsyncMessageRecorder(events)
    await recorder.record("agents.chat", {"role": "user", "text": "The Build is red"}, sender="alice")
    await recorder.record(
        "agents.chat", {"role": "assistant", "content": "Fixing the build now"}, sender="coder"
    )
    await recorder.record("agents.status", {"state": "idle", "note": "nothing to build"}, sender="builder")


def test_search_ignores_case_and_returns_the_newest_first(tmp_path: Path) -> None:
    async def body(events: AsyncEvents) -> list[SearchHit]:
        await record_three(events)
        return await search_messages(events, "BUILD")

    hits = on_store(tmp_path, body)
    assert [h.event.sender for h in hits] == ["builder", "coder", "alice"]
    assert [h.text[h.start : h.end] for h in hits] == ["build", "build", "Build"]


def test_search_matches_the_topic_and_the_sender_too(tmp_path: Path) -> None:
    async def body(events: AsyncEvents) -> tuple[list[SearchHit], list[SearchHit]]:
        await record_three(events)
        return await search_messages(events, "status"), await search_messages(events, "alice")

    by_topic, by_sender = on_store(tmp_path, body)
    assert [h.event.topic for h in by_topic] == ["agents.status"]
    assert [h.event.sender for h in by_sender] == ["alice"]
    assert by_topic[0].start == by_topic[0].end  # not in the text: nothing to highlight


def test_search_stops_at_the_limit(tmp_path: Path) -> None:
    async def body(events: AsyncEvents) -> list[SearchHit]:
        recorder = AsyncMessageRecorder(events)
        for i in range(1005):  # more than one page of the log
            await recorder.record("agents.chat", f"message {i}")
        return await search_messages(events, "message", limit=3)

    hits = on_store(tmp_path, body)
    assert [h.text for h in hits] == ["message 1004", "message 1003", "message 1002"]


def test_search_that_matches_nothing_is_empty(tmp_path: Path) -> None:
    async def body(events: AsyncEvents) -> list[SearchHit]:
        await record_three(events)
        return await search_messages(events, "deploy")

    assert on_store(tmp_path, body) == []


@pytest.mark.parametrize("query", ["", "   "])
def test_an_empty_query_is_refused(tmp_path: Path, query: str) -> None:
    with pytest.raises(ValidationError, match="what to search for"):
        on_store(tmp_path, lambda events: search_messages(events, query))


def test_the_text_of_a_message_is_its_text_or_content_or_its_json() -> None:
    from datetime import UTC, datetime

    from runtime_core import new_id

    def event(payload: object) -> Event:
        return Event(id=new_id(), topic="t", created_at=datetime.now(UTC), payload=payload)

    assert text_of(event("plain")) == "plain"
    assert text_of(event({"text": "hello", "role": "user"})) == "hello"
    assert text_of(event({"content": "hi"})) == "hi"
    assert text_of(event({"n": 1, "a": [1]})) == '{"a": [1], "n": 1}'


def test_unique_prefixes_tell_ids_of_one_millisecond_apart() -> None:
    ids = [
        "01a225fb-8258-7389-8a1c-aad773dd1ed5",
        "01a225fb-8258-7400-8a1c-aad773dd1ed5",
        "01a225fb-84eb-7272-864d-e69ce289c995",
    ]
    shown = unique_prefixes(ids)
    assert shown == {
        ids[0]: "01a225fb-8258-73",
        ids[1]: "01a225fb-8258-74",
        ids[2]: "01a225fb-84eb",
    }
