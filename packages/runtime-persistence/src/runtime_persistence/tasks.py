"""The old import path ``runtime_persistence.tasks``, kept working: the code lives in :mod:`runtime_persistence.session.tasks`."""

from runtime_persistence.session.tasks import (
    TASK_CHILD_NS,
    TASK_EXTERNAL_NS,
    TASK_LOG_NS,
    TASK_NS,
    AsyncTasks,
    Tasks,
)

__all__ = [
    "TASK_CHILD_NS",
    "TASK_EXTERNAL_NS",
    "TASK_LOG_NS",
    "TASK_NS",
    "AsyncTasks",
    "Tasks",
]
