"""The session DB: sessions, runs, tasks and the event log of agent messages (with the
recorder), and the leases runs hold. The top layer of runtime-persistence: it may use
checkpoints (a session's threads) and everything below."""

from runtime_persistence.session.events import (
    EVENT_NS,
    EVENT_TOPIC_NS,
    AsyncEventLog,
    AsyncEvents,
    AsyncMessageRecorder,
    Events,
    MessageRecorder,
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
    SESSION_STATUS_NS,
    AsyncSessions,
    Sessions,
)
from runtime_persistence.session.tasks import (
    TASK_CHILD_NS,
    TASK_LOG_NS,
    TASK_NS,
    AsyncTasks,
    Tasks,
)
from runtime_persistence.storage.leases import (
    LEASE_NS,
    Leases,
)

__all__ = [
    "EVENT_NS",
    "EVENT_TOPIC_NS",
    "LEASE_NS",
    "RUN_NS",
    "RUN_STATUS_NS",
    "RUN_THREAD_NS",
    "SESSION_NS",
    "SESSION_STATUS_NS",
    "TASK_CHILD_NS",
    "TASK_LOG_NS",
    "TASK_NS",
    "AsyncEventLog",
    "AsyncEvents",
    "AsyncMessageRecorder",
    "AsyncRunRecords",
    "AsyncSessions",
    "AsyncTasks",
    "Events",
    "Leases",
    "MessageRecorder",
    "RunRecords",
    "Sessions",
    "Tasks",
]
