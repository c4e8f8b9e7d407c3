"""Search over recorded messages, behind one function the browser calls.

Today this is the documented **fallback**: a case-insensitive substring scan over the event log
(every event's topic, sender, recipient and payload as JSON text), newest first, at most
:data:`SCAN_LIMIT` events read. It needs nothing but the event log, so it works on every store.
When a ranked full-text index (SQLite FTS5, PostgreSQL full text) is available, swap it in here:
:func:`search_messages` is the only caller-facing name, and :class:`SearchHit` its result."""

from __future__ import annotations

import json
from dataclasses import dataclass

from runtime_core import Event, ValidationError
from runtime_persistence import AsyncEvents

__all__ = ["SCAN_LIMIT", "SearchHit", "search_messages", "text_of"]

SCAN_LIMIT = 100_000
"""The fallback reads at most this many events (the newest) per search."""

_PAGE = 1000


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
    window: list[Event] = []
    after: str | None = None
    while True:
        page = [e async for e in events.read(after=after, limit=_PAGE)]
        window.extend(page)
        if len(window) > SCAN_LIMIT:
            window = window[-SCAN_LIMIT:]
        if len(page) < _PAGE:
            break
        after = page[-1].id
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
