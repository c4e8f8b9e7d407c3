# Generated from packages/runtime-persistence/src/runtime_persistence/session/_async/events.py by scripts/gen_sync.py: edit that file and rerun the script.
"""The event log (:class:`Events`) and the message recorder (:class:`MessageRecorder`)
a message broker calls for every message that crosses it. Written once as async code in
``session/_async/``; the sync twins in ``session/_sync/`` are generated from it.

Layout::

    event        {event_id}                 the event, create-only (never rewritten)
    event.topic  {topic_hash}/{event_id}    index: events of a topic (written before the event;
                                            an entry whose event is missing, left by a crash, is
                                            skipped)

``topic_hash`` is the first 32 hex digits of the SHA-256 of the topic, so any topic (up to 200
characters, ``/`` included) makes a fixed-length prefix that no other topic's prefix extends.

Order: events are read in the order of their ids. Ids made by :func:`runtime_core.new_id` at
append time (as the recorder does) are time-ordered to the millisecond across processes and
strictly ordered within one process. A follower that pages with ``after`` may therefore miss an
event appended by another process in the same millisecond as the last one it read; a follower
that must see everything re-reads a short window behind its cursor.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from runtime_core import (
    Clock,
    ConflictError,
    Event,
    SystemClock,
    ValidationError,
    new_id,
    validate_id,
)

from runtime_persistence.session._records import (
    EVENT_NS,
    EVENT_TOPIC_NS,
    MARK,
    EventLog,
    check_limit,
    topic_prefix,
)
from runtime_persistence.session._sync._repository import Repository

__all__ = ["Events", "MessageRecorder"]


class Events(Repository[Event]):
    """An event log over any driver: append-only, read oldest first (the sync class implements
    :class:`runtime_core.EventLog`; the async one has the same methods, guarantees and errors).

    ``clock`` and ``serializer`` are the same knobs as the other repositories' (the clock is not
    used by the log itself: an event carries its own ``created_at``)."""

    _record = Event
    _ns = EVENT_NS
    _what = "event"

    @property
    def clock(self) -> Clock:
        """The clock this log was built with (a recorder stamps events with it)."""
        return self._clock

    def append(self, event: Event) -> Event:
        """Store ``event`` under its id, create-only; durable (as the driver) when it returns.
        Raises ValidationError (nothing written) if it is not an Event or cannot be stored, and
        ConflictError if an event with this id exists."""
        if not isinstance(event, Event):
            raise ValidationError(f"append() takes a runtime_core.Event, got {type(event).__name__}")
        data = self._ser.dumps(event, at=(EVENT_NS, event.id))
        index_key = topic_prefix(event.topic) + event.id
        self._driver.put(EVENT_TOPIC_NS, index_key, MARK)
        try:
            self._driver.put(EVENT_NS, event.id, data, if_absent=True)
        except ConflictError:
            existing = self._driver.get(EVENT_NS, event.id)
            if existing is not None and self._decode(event.id, existing.value).topic != event.topic:
                self._driver.delete(EVENT_TOPIC_NS, index_key)  # ours pointed at another topic's event
            raise ConflictError(f"event {event.id} already exists") from None
        return event

    def get(self, event_id: str) -> Event:
        """The event. Raises NotFoundError, ValidationError for a malformed id."""
        return (self._read(event_id))[0]

    def read(
        self, *, topic: str | None = None, after: str | None = None, limit: int = 100
    ) -> Iterator[Event]:
        """Events oldest first (id order), only those of ``topic`` if given (through the topic
        index: a topic read never scans other topics), starting after the event id ``after``,
        at most ``limit``. Arguments are checked when called (ValidationError), before the
        first event is read."""
        if topic is not None:
            Event(id=new_id(), topic=topic, created_at=self._clock.now())  # the same topic rules
        if after is not None:
            validate_id(after, "after (an event id)")
        check_limit(limit)
        return self._events(topic, after, limit)

    def _events(self, topic: str | None, after: str | None, limit: int) -> Iterator[Event]:
        if limit == 0:
            return
        if topic is None:
            # a page is read whole first, so no driver cursor stays open while the caller works
            for entry in [e for e in self._driver.scan(EVENT_NS, after=after, limit=limit)]:
                yield self._decode(entry.key, entry.value)
            return
        prefix = topic_prefix(topic)
        left = limit
        cursor = prefix + after if after is not None else None
        for event in self._candidates(EVENT_TOPIC_NS, prefix, limit, reverse=False, cursor=cursor):
            if event.topic == topic:  # a hash collision or a refused duplicate id
                yield event
                left -= 1
                if left == 0:
                    return


class MessageRecorder:
    """Records every message that crosses a message broker as an :class:`~runtime_core.Event` in
    an event log (the broker calls :meth:`record` once per message).

    Each event gets a new time-sortable id and ``created_at`` from ``clock`` (by default the
    log's clock when it has one, else the system clock)."""

    def __init__(self, events: EventLog, *, clock: Clock | None = None) -> None:
        if not isinstance(events, EventLog):
            raise ValidationError(f"{type(self).__name__} needs an event log, got {type(events).__name__}")
        self._events = events
        log_clock = getattr(events, "clock", None)
        self._clock: Clock = clock or (log_clock if isinstance(log_clock, Clock) else SystemClock())

    def record(
        self,
        topic: str,
        payload: Any,
        *,
        sender: str | None = None,
        recipient: str | None = None,
        thread_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Event:
        """Append one message and return its event; durable (as the log) when it returns.
        Raises ValidationError (nothing written) on a bad topic, payload (plain data only),
        sender, recipient, thread id or metadata."""
        event = Event(
            id=new_id(),
            topic=topic,
            created_at=self._clock.now(),
            payload=payload,
            sender=sender,
            recipient=recipient,
            thread_id=thread_id,
            metadata=metadata if metadata is not None else {},
        )
        return self._events.append(event)
