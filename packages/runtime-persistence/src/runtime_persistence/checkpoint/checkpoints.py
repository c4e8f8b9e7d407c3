"""Threads of checkpoints over any storage driver: save, list, history, fork, restore, replay,
diff, retention and garbage collection (:class:`Checkpoints`).

Layout in the driver (every namespace starts with ``ckpt`` or ``thread``)::

    thread        {thread_id}                      thread record (name, metadata, fork origin); CAS
    thread.head   {thread_id}                      the head: id, seq and step of the newest checkpoint; CAS
    thread.fork   {src_thread}/{seq}/{fork_thread} a fork starts from that checkpoint (protects it)
    ckpt          {thread_id}/{seq:012d}           checkpoint record (channel refs, not values); create-only
    ckpt          {thread_id}/{seq:012d}/w/{h}     a pending write of that checkpoint (h: task+channel)
    ckpt.id       {checkpoint_id}                  -> (thread id, seq), so ``get`` by id is one lookup
    ckpt.pin      {thread_id}/{checkpoint_id}      a pin: retention never removes the checkpoint
    ckpt.blob     {sha256}                         content-addressed channel values (see ``_state``)

**No silent forks.** A thread is one linear chain. Each checkpoint takes the next *sequence
slot* of its thread (the head's seq + 1) with a create-only put: of two writers extending the
same parent exactly one creates the slot, the other gets ConflictError and nothing of it is
visible. The head key moves by compare-and-set in the same batch (one transaction on drivers
with atomic batches); on other drivers it is moved right after, and readers that find the slot
after the head already taken (a crash between the two writes) follow it, so ``latest`` stays
exact and constant-time.

**Order.** Slots sort by key, so listing newest first is a reverse range scan that stops after
``limit`` records; nothing sorts a whole thread. Within a thread the lineage is the slot order,
so history skips over pruned checkpoints; it crosses into the parent thread at the fork origin.

**Writes go bottom-up.** New blobs, then the id entry, then the record (the commit point), then
the head. A crash leaves at most unreferenced blobs or a dangling id entry, which :meth:`gc`
removes; an acknowledged checkpoint is always complete.

**One logic, sync and async.** :class:`AsyncCheckpoints` is written once as async code in
``_async/`` and :class:`Checkpoints` is generated from it (``scripts/gen_sync.py``); both keep the
same promises and raise the same errors. The class is assembled from parts grouped by what they
do: ``core`` (state, record reads, the head, the commit path), ``threads``, ``commits`` (save,
put_writes), ``reads`` (get, latest, list, history), ``travel`` (fork, restore, replay, diff) and
``retention`` (pin, prune, delete, gc). What does no I/O is shared: ``_records`` (record shapes and
keys), ``_state`` (state encoding), ``_shared`` (validation, caches, :func:`diff_states`).
"""

# Made lazy by scripts/gen_facade.py: add a re-export to the imports under TYPE_CHECKING,
# then run the script, which rewrites __all__, _SOURCES and __getattr__ from them.

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime_persistence.checkpoint._async.checkpoints import (
        AsyncCheckpoints,
    )
    from runtime_persistence.checkpoint._records import (
        CKPT_ID_NS,
        CKPT_NS,
        CKPT_PIN_NS,
        FORK_NS,
        HEAD_NS,
        THREAD_NS,
    )
    from runtime_persistence.checkpoint._shared import (
        AsyncRemovalListener,
        RemovalListener,
        diff_states,
    )
    from runtime_persistence.checkpoint._sync.checkpoints import (
        Checkpoints,
    )

__all__ = [
    "CKPT_ID_NS",
    "CKPT_NS",
    "CKPT_PIN_NS",
    "FORK_NS",
    "HEAD_NS",
    "THREAD_NS",
    "AsyncCheckpoints",
    "AsyncRemovalListener",
    "Checkpoints",
    "RemovalListener",
    "diff_states",
]

# Where each name is imported from, on first use.
_SOURCES: dict[str, str] = {
    "CKPT_ID_NS": "runtime_persistence.checkpoint._records",
    "CKPT_NS": "runtime_persistence.checkpoint._records",
    "CKPT_PIN_NS": "runtime_persistence.checkpoint._records",
    "FORK_NS": "runtime_persistence.checkpoint._records",
    "HEAD_NS": "runtime_persistence.checkpoint._records",
    "THREAD_NS": "runtime_persistence.checkpoint._records",
    "AsyncCheckpoints": "runtime_persistence.checkpoint._async.checkpoints",
    "AsyncRemovalListener": "runtime_persistence.checkpoint._shared",
    "Checkpoints": "runtime_persistence.checkpoint._sync.checkpoints",
    "RemovalListener": "runtime_persistence.checkpoint._shared",
    "diff_states": "runtime_persistence.checkpoint._shared",
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
