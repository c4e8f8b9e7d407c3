"""The event log and the message recorder: :class:`Events` and :class:`MessageRecorder`, and
their async twins :class:`AsyncEvents` and :class:`AsyncMessageRecorder` (layout and ordering
rules in ``_async/events.py``, the source; the sync classes are generated from it by
scripts/gen_sync.py). :class:`AsyncEventLog` is what an async recorder writes to."""

from runtime_persistence.session._async.events import AsyncEvents, AsyncMessageRecorder
from runtime_persistence.session._records import EVENT_NS, EVENT_TOPIC_NS, AsyncEventLog
from runtime_persistence.session._sync.events import Events, MessageRecorder

__all__ = [
    "EVENT_NS",
    "EVENT_TOPIC_NS",
    "AsyncEventLog",
    "AsyncEvents",
    "AsyncMessageRecorder",
    "Events",
    "MessageRecorder",
]
