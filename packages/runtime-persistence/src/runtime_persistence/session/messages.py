"""The message log of a session: :class:`MessageLog` and its async twin :class:`AsyncMessageLog`
(append, last n, pop, clear; layout and concurrency rules in ``_async/messages.py``, the source;
the sync class is generated from it by scripts/gen_sync.py)."""

from runtime_persistence.session._async.messages import AsyncMessageLog
from runtime_persistence.session._message_records import MESSAGE_NS
from runtime_persistence.session._sync.messages import MessageLog

__all__ = ["MESSAGE_NS", "AsyncMessageLog", "MessageLog"]
