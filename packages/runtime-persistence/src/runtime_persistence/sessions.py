"""The old import path ``runtime_persistence.sessions``, kept working: the code lives in :mod:`runtime_persistence.session.sessions`."""

from runtime_persistence.session.sessions import (
    SESSION_NS,
    SESSION_RUN_NS,
    SESSION_STATUS_NS,
    SESSION_THREAD_NS,
    AsyncSessions,
    Sessions,
)

__all__ = [
    "SESSION_NS",
    "SESSION_RUN_NS",
    "SESSION_STATUS_NS",
    "SESSION_THREAD_NS",
    "AsyncSessions",
    "Sessions",
]
