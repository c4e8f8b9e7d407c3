"""Export and import of threads together with sessions, tasks and events (when asked): the
sections the checkpoint export carries after its threads (frames and checks described in
``_async/transfer.py``, the source; the sync twin is generated from it by scripts/gen_sync.py).

:func:`export_all` and :func:`import_all` take a :class:`Checkpoints`; their async twins
:func:`export_all_async` and :func:`import_all_async` an :class:`AsyncCheckpoints`."""

from runtime_persistence.session._async.transfer import (
    SECTION_NAMES,
    AsyncEventsSection,
    AsyncSessionsSection,
    AsyncTasksSection,
)
from runtime_persistence.session._async.transfer import export_all as export_all_async
from runtime_persistence.session._async.transfer import import_all as import_all_async
from runtime_persistence.session._sync.transfer import (
    EventsSection,
    SessionsSection,
    TasksSection,
    export_all,
    import_all,
)

__all__ = [
    "SECTION_NAMES",
    "AsyncEventsSection",
    "AsyncSessionsSection",
    "AsyncTasksSection",
    "EventsSection",
    "SessionsSection",
    "TasksSection",
    "export_all",
    "export_all_async",
    "import_all",
    "import_all_async",
]
