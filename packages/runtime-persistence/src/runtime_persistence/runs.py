"""The old import path ``runtime_persistence.runs``, kept working: the code lives in :mod:`runtime_persistence.session.runs`."""

from runtime_persistence.session.runs import (
    RUN_NS,
    RUN_STATUS_NS,
    RUN_THREAD_NS,
    AsyncRunRecords,
    RunRecords,
)

__all__ = [
    "RUN_NS",
    "RUN_STATUS_NS",
    "RUN_THREAD_NS",
    "AsyncRunRecords",
    "RunRecords",
]
