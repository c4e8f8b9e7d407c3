"""The session DB: sessions, runs, tasks and the event log of agent messages (with the
recorder), and the leases runs hold. The top layer of runtime-persistence: it may use
checkpoints (a session's threads) and everything below.

Each repository is written once, as async code in ``_async/`` (``AsyncSessions``,
``AsyncRunRecords``, ``AsyncTasks``, ``AsyncEvents``, ``AsyncMessageRecorder``, over one shared
base in ``_async/_repository.py``: read by id, compare-and-set with a status index, index walks);
scripts/gen_sync.py generates the sync classes into ``_sync/``. Key layouts and checks without
I/O live in ``_records.py``; ``sessions.py``, ``runs.py``, ``tasks.py`` and ``events.py`` are the
public modules re-exporting both twins."""

# Made lazy by scripts/gen_facade.py: add a re-export to the imports under TYPE_CHECKING,
# then run the script, which rewrites __all__, _SOURCES and __getattr__ from them.

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime_persistence.session.events import (
        EVENT_NS,
        EVENT_TOPIC_NS,
        AsyncEventLog,
        AsyncEvents,
        AsyncMessageRecorder,
        Events,
        MessageRecorder,
    )
    from runtime_persistence.session.messages import (
        MESSAGE_NS,
        AsyncMessageLog,
        MessageLog,
    )
    from runtime_persistence.session.runs import (
        RUN_NS,
        RUN_STATUS_NS,
        RUN_THREAD_NS,
        AsyncRunRecords,
        RunRecords,
    )
    from runtime_persistence.session.sessions import (
        SESSION_NS,
        SESSION_RUN_NS,
        SESSION_STATUS_NS,
        SESSION_THREAD_NS,
        AsyncSessions,
        Sessions,
    )
    from runtime_persistence.session.sweeper import (
        AsyncSessionSweeper,
        SessionSweeper,
        SweeperThread,
        sweep_forever,
    )
    from runtime_persistence.session.tasks import (
        TASK_CHILD_NS,
        TASK_EXTERNAL_NS,
        TASK_LOG_NS,
        TASK_NS,
        AsyncTasks,
        Tasks,
    )
    from runtime_persistence.storage.leases import (
        LEASE_NS,
        AsyncLeases,
        Leases,
    )

__all__ = [
    "EVENT_NS",
    "EVENT_TOPIC_NS",
    "LEASE_NS",
    "MESSAGE_NS",
    "RUN_NS",
    "RUN_STATUS_NS",
    "RUN_THREAD_NS",
    "SESSION_NS",
    "SESSION_RUN_NS",
    "SESSION_STATUS_NS",
    "SESSION_THREAD_NS",
    "TASK_CHILD_NS",
    "TASK_EXTERNAL_NS",
    "TASK_LOG_NS",
    "TASK_NS",
    "AsyncEventLog",
    "AsyncEvents",
    "AsyncLeases",
    "AsyncMessageLog",
    "AsyncMessageRecorder",
    "AsyncRunRecords",
    "AsyncSessionSweeper",
    "AsyncSessions",
    "AsyncTasks",
    "Events",
    "Leases",
    "MessageLog",
    "MessageRecorder",
    "RunRecords",
    "SessionSweeper",
    "Sessions",
    "SweeperThread",
    "Tasks",
    "sweep_forever",
]

# Where each name is imported from, on first use.
_SOURCES: dict[str, str] = {
    "EVENT_NS": "runtime_persistence.session.events",
    "EVENT_TOPIC_NS": "runtime_persistence.session.events",
    "LEASE_NS": "runtime_persistence.storage.leases",
    "MESSAGE_NS": "runtime_persistence.session.messages",
    "RUN_NS": "runtime_persistence.session.runs",
    "RUN_STATUS_NS": "runtime_persistence.session.runs",
    "RUN_THREAD_NS": "runtime_persistence.session.runs",
    "SESSION_NS": "runtime_persistence.session.sessions",
    "SESSION_RUN_NS": "runtime_persistence.session.sessions",
    "SESSION_STATUS_NS": "runtime_persistence.session.sessions",
    "SESSION_THREAD_NS": "runtime_persistence.session.sessions",
    "TASK_CHILD_NS": "runtime_persistence.session.tasks",
    "TASK_EXTERNAL_NS": "runtime_persistence.session.tasks",
    "TASK_LOG_NS": "runtime_persistence.session.tasks",
    "TASK_NS": "runtime_persistence.session.tasks",
    "AsyncEventLog": "runtime_persistence.session.events",
    "AsyncEvents": "runtime_persistence.session.events",
    "AsyncLeases": "runtime_persistence.storage.leases",
    "AsyncMessageLog": "runtime_persistence.session.messages",
    "AsyncMessageRecorder": "runtime_persistence.session.events",
    "AsyncRunRecords": "runtime_persistence.session.runs",
    "AsyncSessionSweeper": "runtime_persistence.session.sweeper",
    "AsyncSessions": "runtime_persistence.session.sessions",
    "AsyncTasks": "runtime_persistence.session.tasks",
    "Events": "runtime_persistence.session.events",
    "Leases": "runtime_persistence.storage.leases",
    "MessageLog": "runtime_persistence.session.messages",
    "MessageRecorder": "runtime_persistence.session.events",
    "RunRecords": "runtime_persistence.session.runs",
    "SessionSweeper": "runtime_persistence.session.sweeper",
    "Sessions": "runtime_persistence.session.sessions",
    "SweeperThread": "runtime_persistence.session.sweeper",
    "Tasks": "runtime_persistence.session.tasks",
    "sweep_forever": "runtime_persistence.session.sweeper",
}

# Submodules reachable as attributes, as they were when this module imported them.
_SUBMODULES = frozenset(
    {
        "_async",
        "_message_records",
        "_records",
        "_sync",
        "events",
        "kilocode",
        "messages",
        "recorder",
        "runs",
        "sessions",
        "sweeper",
        "tasks",
        "transfer",
    }
)


if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        source = _SOURCES.get(name)
        if source is not None:
            value = getattr(importlib.import_module(source), name)
            globals()[name] = value  # later lookups skip this function
            return value
        if name in _SUBMODULES:
            return importlib.import_module(f"{__name__}.{name}")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
