"""Run records: :class:`RunRecords` and its async twin :class:`AsyncRunRecords` (layout in
``_async/runs.py``, the source; the sync class is generated from it by scripts/gen_sync.py)."""

from runtime_persistence.session._async.runs import AsyncRunRecords
from runtime_persistence.session._records import RUN_NS, RUN_STATUS_NS, RUN_THREAD_NS
from runtime_persistence.session._sync.runs import RunRecords

__all__ = ["RUN_NS", "RUN_STATUS_NS", "RUN_THREAD_NS", "AsyncRunRecords", "RunRecords"]
