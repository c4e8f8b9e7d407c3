"""The task repository: :class:`Tasks` and its async twin :class:`AsyncTasks` (layout in
``_async/tasks.py``, the source; the sync class is generated from it by scripts/gen_sync.py)."""

from runtime_persistence.session._async.tasks import AsyncTasks
from runtime_persistence.session._records import TASK_CHILD_NS, TASK_EXTERNAL_NS, TASK_LOG_NS, TASK_NS
from runtime_persistence.session._sync.tasks import Tasks

__all__ = ["TASK_CHILD_NS", "TASK_EXTERNAL_NS", "TASK_LOG_NS", "TASK_NS", "AsyncTasks", "Tasks"]
