# Generated from packages/runtime-persistence/src/runtime_persistence/checkpoint/_async/checkpoints.py by scripts/gen_sync.py: edit that file and rerun the script.
"""The checkpoint store, written once as async code (:class:`Checkpoints`); the sync
:class:`Checkpoints` in ``_sync/checkpoints.py`` is generated from it. The layout in the driver
and the guarantees are described in ``checkpoint/checkpoints.py``."""

from __future__ import annotations

from runtime_persistence.checkpoint._sync.commits import _Commits
from runtime_persistence.checkpoint._sync.retention import _Retention
from runtime_persistence.checkpoint._sync.threads import _Threads
from runtime_persistence.checkpoint._sync.travel import _Travel

__all__ = ["Checkpoints"]


class Checkpoints(_Threads, _Commits, _Travel, _Retention):
    """:class:`runtime_core.CheckpointStore` over any :class:`runtime_core.Driver`.

    ``leases`` is the lease store consulted by restore, prune and delete_thread (default: an
    :class:`Leases` on the same driver). ``clock`` stamps records and judges ages (retention,
    garbage collection, leases). An instance may be shared by the threads (sync class) or the
    tasks (async class) of one process; any number of processes may use the same store.

    The operations are grouped by what they do: threads (``_async/threads.py``), saving
    (``_async/commits.py``), reads and history (``_async/reads.py``), time travel: fork, restore,
    replay, diff (``_async/travel.py``), retention and gc (``_async/retention.py``), over the
    shared core of record reads and the commit path (``_async/core.py``), which is built on
    :class:`ThreadLister` (``_async/listing.py``: listing threads and reading heads, usable
    alone)."""
