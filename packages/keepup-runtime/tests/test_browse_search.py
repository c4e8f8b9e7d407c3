"""The browser's search over recorded messages: today the documented fallback, a substring scan
of the event log, on a real SQLite store through the async repositories."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from keepup._browse.search import SearchHit, floor_id, newest_events, search_messages, text_of
from keepup._browse.source import unique_prefixes
from runtime_core import Event, ValidationError, validate_id
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


def id_at(moment: datetime, n: int) -> str:
    """A valid event id of the millisecond ``moment`` (n tells ids of one millisecond apart)."""
    digits = f"{int(moment.timestamp() * 1000):012x}"
    return f"{digits[:8]}-{digits[8:]}-7000-8000-{n + 1:012x}"


class CountingEvents(AsyncEvents):
    """The real event log, counting the events it reads."""

    read_count = 0

    def read(
        self, *, topic: str | None = None, after: str | None = None, limit: int = 100
    ) -> AsyncIterator[Event]:
        inner = super().read(topic=topic, after=after, limit=limit)

        async def counted() -> AsyncIterator[Event]:
            async for event in inner:
                self.read_count += 1
                yield event

        return counted()


async def append_at(events: AsyncEvents, moment: datetime, n: int, text: str) -> None:
    await events.append(Event(id=id_at(moment, n), topic="agents.chat", created_at=moment, payload=text))


def test_the_newest_events_are_found_without_reading_the_old_ones(tmp_path: Path) -> None:
    now = datetime.now(UTC)

    async def body(_: AsyncEvents) -> tuple[list[Event], int]:
        driver = await open_store_async(f"sqlite:///{tmp_path / 'counted.db'}")
        try:
            events = CountingEvents(driver)
            for n in range(300):  # a month ago
                await append_at(events, now - timedelta(days=30), n, f"old {n}")
            for n in range(5):  # just now
                await append_at(events, now - timedelta(seconds=5), n, f"new {n}")
            events.read_count = 0
            newest = await newest_events(events, 3, now=now)
            return newest, events.read_count
        finally:
            await driver.close()

    newest, read = on_store(tmp_path, body)
    assert [e.payload for e in newest] == ["new 2", "new 3", "new 4"]
    assert read == 5  # the last minute held enough: not one old event was read


def test_the_newest_events_of_an_old_log_are_found_by_widening_the_window(tmp_path: Path) -> None:
    long_ago = datetime(2001, 1, 1, tzinfo=UTC)

    async def body(events: AsyncEvents) -> tuple[list[Event], list[Event]]:
        for n in range(4):
            await append_at(events, long_ago + timedelta(days=n), n, f"message {n}")
        return await newest_events(events, 2), await newest_events(events, 10)

    two, all_of_them = on_store(tmp_path, body)
    assert [e.payload for e in two] == ["message 2", "message 3"]
    assert [e.payload for e in all_of_them] == [f"message {n}" for n in range(4)]


def test_floor_id_is_below_every_id_of_its_millisecond() -> None:
    moment = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    floor = floor_id(moment)
    assert validate_id(floor) == floor
    assert floor < id_at(moment, 0) < floor_id(moment + timedelta(milliseconds=1))


def test_the_browser_searches_what_the_recorder_recorded_first_ranked_with_highlights(tmp_path: Path) -> None:
    """`keepup browse` finds messages `keepup recorder` stored (the message store's full-text
    search), best first, before the event log's matches; each hit opens as an event."""
    import json

    from keepup._browse.source import StoreSource
    from runtime_persistence import Incoming, MessageStore, open_store

    url = f"sqlite:///{tmp_path / 'recorded.db'}"
    now = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    driver = open_store(url)
    store = MessageStore(driver)
    store.append(
        [
            Incoming(
                "agents.ops",
                json.dumps({"id": f"m{i}", "sender": "alice", "seq": i, "text": text}).encode(),
                now,
                "zmq",
            )
            for i, text in enumerate(["the deploy failed on staging", "rolling back", "deploy fixed"], 1)
        ]
    )
    store.close()
    driver.close()

    async def main() -> list[SearchHit]:
        async with await StoreSource.open(url, home=tmp_path / "home") as source:
            await AsyncMessageRecorder(source.events).record("agents.chat", {"text": "deploy from the log"})
            return await source.search("deploy")

    hits = asyncio.run(main())
    recorded = [h for h in hits if "recorded_offset" in h.event.metadata]
    assert sorted(h.event.payload["id"] for h in recorded) == ["m1", "m3"]
    assert all(h.text[h.start : h.end].lower() == "deploy" for h in recorded)
    assert all(h.event.sender == "alice" and h.event.topic == "agents.ops" for h in recorded)
    validate_id(recorded[0].event.id)
    assert hits[-1].text == "deploy from the log"  # the event log's match comes after the ranked ones
    assert len({h.event.id for h in hits}) == 3
