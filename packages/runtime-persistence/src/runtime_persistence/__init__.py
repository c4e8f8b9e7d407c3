"""runtime-persistence."""

from runtime_persistence.checkpoints import Checkpoints, RemovalListener, diff_states
from runtime_persistence.gc import register_blob_roots, unregister_blob_roots
from runtime_persistence.leases import Leases
from runtime_persistence.runs import RunRecords

__all__: list[str] = [
    "Checkpoints",
    "Leases",
    "RemovalListener",
    "RunRecords",
    "diff_states",
    "register_blob_roots",
    "unregister_blob_roots",
]
