"""Events: messages recorded as they cross an agent message broker."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from runtime_core._validation import check_aware, check_metadata, check_name, check_plain
from runtime_core.ids import validate_id

__all__ = ["Event", "EventLog"]


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded message: where it went, who sent it, what it said."""

    id: str
    topic: str
    created_at: datetime
    payload: Any = None
    sender: str | None = None
    recipient: str | None = None
    thread_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_id(self.id, "event id")
        check_name(self.topic, "event topic", allow_empty=False)
        check_aware(self.created_at, "created_at")
        check_plain(self.payload, "event payload")
        if self.sender is not None:
            check_name(self.sender, "event sender", allow_empty=False)
        if self.recipient is not None:
            check_name(self.recipient, "event recipient", allow_empty=False)
        if self.thread_id is not None:
            validate_id(self.thread_id, "thread id")
        object.__setattr__(self, "metadata", check_metadata(self.metadata, "event metadata"))


@runtime_checkable
class EventLog(Protocol):
    """An append-only log of events, read back in order."""

    def append(self, event: Event) -> Event: ...

    def read(
        self, *, topic: str | None = None, after: str | None = None, limit: int = 100
    ) -> Iterator[Event]:
        """Events oldest first, after the event id ``after``."""
        ...
