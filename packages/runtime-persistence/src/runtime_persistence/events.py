"""The old import path ``runtime_persistence.events``, kept working: the code lives in :mod:`runtime_persistence.session.events`."""

from runtime_persistence.session.events import (
    EVENT_NS,
    EVENT_TOPIC_NS,
    AsyncEventLog,
    AsyncEvents,
    AsyncMessageRecorder,
    Events,
    MessageRecorder,
)

__all__ = [
    "EVENT_NS",
    "EVENT_TOPIC_NS",
    "AsyncEventLog",
    "AsyncEvents",
    "AsyncMessageRecorder",
    "Events",
    "MessageRecorder",
]
