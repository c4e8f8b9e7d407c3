"""The event log and message recorder on every available driver: create-only appends, reads in
order by topic and cursor, bad input refused before writing."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from runtime_core import (
    ConflictError,
    CorruptionError,
    Event,
    EventLog,
    ManualClock,
    NotFoundError,
    ValidationError,
    new_id,
)
from runtime_persistence import Events, MessageRecorder
from runtime_persistence.session.events import EVENT_NS, EVENT_TOPIC_NS, AsyncMessageRecorder
from runtime_persistence.testing import TestStore, blocking, store_fixture, unwrap

event_store = store_fixture(modes=("sync", "async"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def events(event_store: TestStore, clock: ManualClock) -> Events:
    events: Events = event_store.make(Events, clock=clock)
    return events


@pytest.fixture
def recorder(event_store: TestStore, events: Events) -> MessageRecorder:
    if event_store.is_async:
        assert event_store.portal is not None
        recorder: MessageRecorder = blocking(AsyncMessageRecorder(unwrap(events)), event_store.portal)
        return recorder
    return MessageRecorder(events)


def test_events_implement_the_core_protocol(events: Events) -> None:
    assert isinstance(events, EventLog)


def test_a_recorded_message_reads_back_whole(
    recorder: MessageRecorder, events: Events, clock: ManualClock
) -> None:
    thread = new_id()
    payload = {
        "text": "hi",
        "n": [1, 2.5, None, True],
        "raw": b"\x00\xff",
        "at": datetime(2025, 2, 3, tzinfo=UTC),
    }
    event = recorder.record(
        "agents/planner", payload, sender="planner", recipient="coder", thread_id=thread, metadata={"k": "v"}
    )
    assert event.created_at == clock.now()
    assert (event.sender, event.recipient, event.thread_id) == ("planner", "coder", thread)
    assert events.get(event.id) == event
    assert list(events.read()) == [event]


def test_unknown_event_ids_raise_not_found(events: Events) -> None:
    with pytest.raises(NotFoundError):
        events.get(new_id())


def test_append_is_create_only(events: Events, clock: ManualClock) -> None:
    event = events.append(Event(new_id(), "t", clock.now(), payload=1))
    with pytest.raises(ConflictError):
        events.append(Event(event.id, "t", clock.now(), payload=2))
    assert events.get(event.id).payload == 1


def test_a_duplicate_id_under_another_topic_does_not_leak_into_that_topic(
    events: Events, clock: ManualClock
) -> None:
    event = events.append(Event(new_id(), "a", clock.now()))
    with pytest.raises(ConflictError):
        events.append(Event(event.id, "b", clock.now()))
    assert list(events.read(topic="b")) == []
    assert list(events.read(topic="a")) == [event]


def test_read_is_oldest_first_and_pages_with_after(recorder: MessageRecorder, events: Events) -> None:
    made = [recorder.record("t", i) for i in range(7)]
    assert list(events.read()) == made
    assert list(events.read(limit=3)) == made[:3]
    assert list(events.read(after=made[2].id, limit=3)) == made[3:6]
    assert list(events.read(after=made[-1].id)) == []
    assert list(events.read(limit=0)) == []


def test_a_topic_read_sees_only_its_topic_even_when_names_nest(
    recorder: MessageRecorder, events: Events, event_store: TestStore
) -> None:
    made = [recorder.record(topic, i) for i, topic in enumerate(["a", "a/b", "b", "a", "a/b", "a"])]
    on_a = [e for e in made if e.topic == "a"]
    assert list(events.read(topic="a")) == on_a
    assert list(events.read(topic="a/b")) == [e for e in made if e.topic == "a/b"]
    assert list(events.read(topic="a", after=on_a[0].id, limit=1)) == [on_a[1]]
    assert list(events.read(topic="nobody")) == []
    # one index entry per event: a topic read scans its own entries, not the log
    assert len(list(event_store.driver.scan(EVENT_TOPIC_NS))) == len(made)


def test_a_topic_read_pages_past_index_entries_whose_event_is_missing(
    recorder: MessageRecorder, events: Events, event_store: TestStore
) -> None:
    prefix = hashlib.sha256(b"t").hexdigest()[:32] + "/"  # the documented index layout
    first = recorder.record("t", 0)
    for _ in range(3):  # appends that crashed between the index entry and the event
        event_store.driver.put(EVENT_TOPIC_NS, prefix + new_id(), b"\x01")
    second = recorder.record("t", 1)
    assert list(events.read(topic="t", limit=2)) == [first, second]


def test_bad_input_is_refused_before_anything_is_written(
    recorder: MessageRecorder, events: Events, event_store: TestStore
) -> None:
    with pytest.raises(ValidationError):
        recorder.record("", 1)
    with pytest.raises(ValidationError):
        recorder.record("t", object())
    with pytest.raises(ValidationError):
        recorder.record("t", 1, sender=42)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        recorder.record("t", 1, recipient="bad\nname")
    with pytest.raises(ValidationError):
        recorder.record("t", 1, thread_id="not-an-id")
    with pytest.raises(ValidationError):
        recorder.record("t", 1, metadata={"x": b"not json"})
    with pytest.raises(ValidationError):
        events.append({"topic": "t"})  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        events.read(after="not-an-id")
    with pytest.raises(ValidationError):
        events.read(limit=-1)
    with pytest.raises(ValidationError):
        events.read(topic="")
    assert list(event_store.driver.scan(EVENT_NS)) == []
    assert list(event_store.driver.scan(EVENT_TOPIC_NS)) == []


def test_a_damaged_event_raises_corruption(
    recorder: MessageRecorder, events: Events, event_store: TestStore
) -> None:
    event = recorder.record("t", "payload")
    entry = event_store.driver.get(EVENT_NS, event.id)
    assert entry is not None
    event_store.driver.put(EVENT_NS, event.id, entry.value[:-3])
    with pytest.raises(CorruptionError):
        list(events.read(topic="t"))


def test_the_recorder_accepts_any_event_log() -> None:
    class _ListLog:
        def __init__(self) -> None:
            self.items: list[Event] = []

        def append(self, event: Event) -> Event:
            self.items.append(event)
            return event

        def read(self, *, topic: str | None = None, after: str | None = None, limit: int = 100) -> object:
            return iter(self.items)

    log = _ListLog()
    event = MessageRecorder(log, clock=ManualClock()).record("t", 1)  # type: ignore[arg-type]
    assert log.items == [event]
    with pytest.raises(ValidationError):
        MessageRecorder(object())  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        AsyncMessageRecorder(object())  # type: ignore[arg-type]
