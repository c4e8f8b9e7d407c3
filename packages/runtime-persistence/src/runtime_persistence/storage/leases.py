"""Leases on threads: which run holds a thread and until when, moved by compare-and-set.

:class:`Leases` and its async twin :class:`AsyncLeases` keep the same promises; the sync class is
generated from the async one (``_async/leases.py``, scripts/gen_sync.py)."""

from runtime_persistence.storage._async.leases import AsyncLeases
from runtime_persistence.storage._lease_record import LEASE_NS
from runtime_persistence.storage._sync.leases import Leases

__all__ = ["LEASE_NS", "AsyncLeases", "Leases"]
