"""The session DB: sessions, runs, tasks and the event log of agent messages (with the
recorder), and the leases runs hold. The top layer of runtime-persistence: it may use
checkpoints (a session's threads) and everything below.

Each repository is written once, as async code in ``_async/`` (``AsyncSessions``,
``AsyncRunRecords``, ``AsyncTasks``, ``AsyncEvents``, ``AsyncMessageRecorder``, over one shared
base in ``_async/_repository.py``: read by id, compare-and-set with a status index, index walks);
scripts/gen_sync.py generates the sync classes into ``_sync/``. Key layouts and checks without
I/O live in ``_records.py``; ``sessions.py``, ``runs.py``, ``tasks.py`` and ``events.py`` are the
public modules re-exporting both twins."""

from runtime_persistence.session.events import (
    EVENT_NS,
    EVENT_TOPIC_NS,
    AsyncEventLog,
    AsyncEvents,
    AsyncMessageRecorder,
    Events,
    MessageRecorder,
)
from runtime_persistence.session.messages import MESSAGE_NS, AsyncMessageLog, MessageLog
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
