"""The session DB: :class:`Sessions` and its async twin :class:`AsyncSessions`, sessions with
heartbeats and stale-session cleanup (layout and the touch-against-cleanup rule in
``_async/sessions.py``, the source; the sync class is generated from it by scripts/gen_sync.py)."""

from runtime_persistence.session._async.sessions import AsyncSessions
from runtime_persistence.session._records import (
    SESSION_NS,
    SESSION_RUN_NS,
    SESSION_STATUS_NS,
    SESSION_THREAD_NS,
)
from runtime_persistence.session._sync.sessions import Sessions

__all__ = [
    "SESSION_NS",
    "SESSION_RUN_NS",
    "SESSION_STATUS_NS",
    "SESSION_THREAD_NS",
    "AsyncSessions",
    "Sessions",
]
