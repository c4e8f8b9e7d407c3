"""The old import path ``runtime_persistence.export``, kept working: the code lives in :mod:`runtime_persistence.checkpoint.export`."""

from runtime_persistence.checkpoint.export import (
    EXPORT_MAGIC,
    EXPORT_VERSION,
    ExportReport,
    Progress,
    export_threads,
    import_threads,
)

__all__ = [
    "EXPORT_MAGIC",
    "EXPORT_VERSION",
    "ExportReport",
    "Progress",
    "export_threads",
    "import_threads",
]
