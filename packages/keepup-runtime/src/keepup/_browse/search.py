"""Search over recorded messages, behind the functions the browser calls.

Two sources, best first: what ``keepup recorder`` recorded (:func:`search_recorded`: the message
store's ranked full-text search, SQLite FTS5 on the default store), then the event log of
``MessageRecorder`` (:func:`search_messages`: a case-insensitive substring scan over every
event's topic, sender, recipient and payload as JSON text, newest first, at most
:data:`SCAN_LIMIT` events read; it needs nothing but the event log, so it works on every store).
:class:`SearchHit` is the result of both."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from runtime_core import Event, ValidationError
from runtime_persistence import AsyncEvents, AsyncMessageStore, RecordedMessage
from runtime_persistence import SearchHit as RecordedHit

__all__ = [
    "SCAN_LIMIT",
    "SearchHit",
    "event_of",
    "floor_id",
    "newest_events",
    "search_messages",
    "search_recorded",
    "text_of",
]

SCAN_LIMIT = 100_000
"""The fallback reads at most this many events (the newest) per search."""

_PAGE = 1000
_FIRST_SPAN = timedelta(minutes=1)
_GROWTH = 8
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def floor_id(moment: datetime) -> str:
    """The smallest id of the millisecond ``moment`` (ids are UUIDv7, ordered by time)."""
    ms = max(0, int((moment - _EPOCH).total_seconds() * 1000))
    digits = f"{ms:012x}"
    return f"{digits[:8]}-{digits[8:]}-7000-8000-000000000000"


async def newest_events(events: AsyncEvents, count: int, *, now: datetime | None = None) -> list[Event]:
    """The newest ``count`` events of the log (fewer if it holds fewer), oldest first.

    The log is read forward only, so this reads the events of the last minute, then of a window
    eight times longer, and so on until it has ``count`` (or has read the whole log): the work is
    about the number of events in the first window that holds ``count``, not the size of the log."""
    if count < 1:
        return []
    now = now or datetime.now(UTC)
    span = _FIRST_SPAN
    while True:
        start = now - span
        after = floor_id(start) if start > _EPOCH + timedelta(days=1) else None
        found: list[Event] = []
        cursor = after
        while True:
            page = [e async for e in events.read(after=cursor, limit=_PAGE)]
            found.extend(page)
            if len(found) > count:
                del found[: len(found) - count]
            if len(page) < _PAGE:
                break
            cursor = page[-1].id
        if len(found) >= count or after is None:
            return found
        span *= _GROWTH


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One message that matched: the event, the text that was searched, and where the first
    match starts and ends in it (for highlighting)."""

    event: Event
    text: str
    start: int
    end: int


def text_of(event: Event) -> str:
    """The searchable text of an event: a string payload as is, a message's ``text`` or
    ``content`` field, else the payload as JSON."""
    payload = event.payload
    if isinstance(payload, str):
        return payload
    if isinstance(payload, dict):
        for field in ("text", "content"):
            value = payload.get(field)
            if isinstance(value, str):
                return value
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)


async def search_messages(events: AsyncEvents, query: str, *, limit: int = 200) -> list[SearchHit]:
    """Recorded messages whose text, topic, sender or recipient contains ``query`` (ignoring
    case), newest first, at most ``limit``. Raises ValidationError for an empty query.

    The fallback scan reads the newest :data:`SCAN_LIMIT` events; a ranked index replaces it
    without changing this signature."""
    needle = query.strip().casefold()
    if not needle:
        raise ValidationError("say what to search for")
    if limit < 1:
        raise ValidationError("limit must be at least 1")
    window = await newest_events(events, SCAN_LIMIT)
    hits: list[SearchHit] = []
    for event in reversed(window):
        text = text_of(event)
        at = text.casefold().find(needle)
        if at >= 0:
            hits.append(SearchHit(event, text, at, at + len(needle)))
        elif any(needle in (v or "").casefold() for v in (event.topic, event.sender, event.recipient)):
            hits.append(SearchHit(event, text, 0, 0))
        if len(hits) == limit:
            break
    return hits


def event_of(message: RecordedMessage) -> Event:
    """A recorded message as an event the browser can show: a stable id made of its receive time
    and its offset (UUIDv7-shaped, so ids sort by time), its topic and sender, and the message
    as JSON (``text``, ``conversation``, ``body``...) for payload."""
    ms = max(0, int((message.received_at - _EPOCH).total_seconds() * 1000))
    digits, tail = f"{ms:012x}"[-12:], f"{message.offset:012x}"[-12:]
    event_id = f"{digits[:8]}-{digits[8:]}-7000-8000-{tail}"
    payload, metadata = message.to_json(), {"recorded_offset": message.offset}
    try:
        return Event(
            event_id, message.topic or "-", message.received_at, payload, message.sender, metadata=metadata
        )
    except ValidationError:  # a topic or sender name the event model cannot hold: shown as "-"
        return Event(event_id, "-", message.received_at, payload, metadata=metadata)


def _hit_of(found: RecordedHit) -> SearchHit:
    """The store's hit with its ``[match]`` marks turned into the browser's highlight offsets."""
    snippet = found.snippet
    start = snippet.find("[")
    end = snippet.find("]", start + 1) if start >= 0 else -1
    if start >= 0 and end > start:
        text = (
            snippet[:start] + snippet[start + 1 : end] + snippet[end + 1 :].replace("[", "").replace("]", "")
        )
        return SearchHit(event_of(found.message), text, start, end - 1)
    return SearchHit(event_of(found.message), snippet, 0, 0)


async def search_recorded(messages: AsyncMessageStore, query: str, *, limit: int = 200) -> list[SearchHit]:
    """What ``keepup recorder`` recorded matching every word of ``query``, best first (the
    store's full-text search), at most ``limit``. Raises ValidationError for an empty query."""
    if not query.strip():
        raise ValidationError("say what to search for")
    found = await messages.search(query, limit=limit)
    return [_hit_of(h) for h in found if h.message.kind == "message"]
