"""The old import path ``runtime_persistence.export``, kept working: the code lives in :mod:`runtime_persistence.checkpoint.export`."""

from runtime_persistence.checkpoint.export import (
    EXPORT_MAGIC,
    EXPORT_VERSION,
    AsyncExportSection,
    ExportReport,
    ExportSection,
    Progress,
    export_threads,
    export_threads_async,
    import_threads,
    import_threads_async,
)

__all__ = [
    "EXPORT_MAGIC",
    "EXPORT_VERSION",
    "AsyncExportSection",
    "ExportReport",
    "ExportSection",
    "Progress",
    "export_threads",
    "export_threads_async",
    "import_threads",
    "import_threads_async",
]
