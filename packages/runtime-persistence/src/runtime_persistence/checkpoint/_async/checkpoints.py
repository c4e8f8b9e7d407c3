"""The checkpoint store, written once as async code (:class:`AsyncCheckpoints`); the sync
:class:`Checkpoints` in ``_sync/checkpoints.py`` is generated from it. The layout in the driver
and the guarantees are described in ``checkpoint/checkpoints.py``."""

from __future__ import annotations

from runtime_persistence.checkpoint._async.commits import _AsyncCommits
from runtime_persistence.checkpoint._async.retention import _AsyncRetention
from runtime_persistence.checkpoint._async.threads import _AsyncThreads
from runtime_persistence.checkpoint._async.travel import _AsyncTravel

__all__ = ["AsyncCheckpoints"]


class AsyncCheckpoints(_AsyncThreads, _AsyncCommits, _AsyncTravel, _AsyncRetention):
    """:class:`runtime_core.CheckpointStore` over any :class:`runtime_core.AsyncDriver`.

    ``leases`` is the lease store consulted by restore, prune and delete_thread (default: an
    :class:`AsyncLeases` on the same driver). ``clock`` stamps records and judges ages (retention,
    garbage collection, leases). An instance may be shared by the threads (sync class) or the
    tasks (async class) of one process; any number of processes may use the same store.

    The operations are grouped by what they do: threads (``_async/threads.py``), saving
    (``_async/commits.py``), reads and history (``_async/reads.py``), time travel: fork, restore,
    replay, diff (``_async/travel.py``), retention and gc (``_async/retention.py``), over the
    shared core of record reads and the commit path (``_async/core.py``), which is built on
    :class:`AsyncThreadLister` (``_async/listing.py``: listing threads and reading heads, usable
    alone)."""
