"""Run records: :class:`RunRecords` and its async twin :class:`AsyncRunRecords` (layout in
``_async/runs.py``, the source; the sync class is generated from it by scripts/gen_sync.py)."""

# Made lazy by scripts/gen_facade.py: add a re-export to the imports under TYPE_CHECKING,
# then run the script, which rewrites __all__, _SOURCES and __getattr__ from them.

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime_persistence.session._async.runs import (
        AsyncRunRecords,
    )
    from runtime_persistence.session._records import (
        RUN_NS,
        RUN_STATUS_NS,
        RUN_THREAD_NS,
    )
    from runtime_persistence.session._sync.runs import (
        RunRecords,
    )

__all__ = [
    "RUN_NS",
    "RUN_STATUS_NS",
    "RUN_THREAD_NS",
    "AsyncRunRecords",
    "RunRecords",
]

# Where each name is imported from, on first use.
_SOURCES: dict[str, str] = {
    "RUN_NS": "runtime_persistence.session._records",
    "RUN_STATUS_NS": "runtime_persistence.session._records",
    "RUN_THREAD_NS": "runtime_persistence.session._records",
    "AsyncRunRecords": "runtime_persistence.session._async.runs",
    "RunRecords": "runtime_persistence.session._sync.runs",
}


if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        source = _SOURCES.get(name)
        if source is not None:
            value = getattr(importlib.import_module(source), name)
            globals()[name] = value  # later lookups skip this function
            return value
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
