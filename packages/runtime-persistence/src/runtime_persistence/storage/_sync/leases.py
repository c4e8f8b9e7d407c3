# Generated from packages/runtime-persistence/src/runtime_persistence/storage/_async/leases.py by scripts/gen_sync.py: edit that file and rerun the script.
"""Leases on threads, stored through the driver and moved by compare-and-set.

A lease says which run holds a thread and until when. The execution layer takes and renews it
(heartbeats); persistence reads it to refuse a restore or a prune while a run is active. An
expired lease (its runner crashed) blocks nothing and may be taken over by anyone."""

from __future__ import annotations

from datetime import timedelta

from runtime_core import (
    Clock,
    ConflictError,
    CorruptionError,
    Driver,
    Lease,
    RuntimeBusyError,
    Serializer,
    SystemClock,
    validate_id,
)

from runtime_persistence.storage._lease_record import (
    LEASE_NS,
    LeaseRecord,
    busy,
    check_ttl,
    lease_of,
    owner,
    record_of,
)
from runtime_persistence.storage.serialization import EnvelopeSerializer

__all__ = ["Leases"]


class Leases:
    """:class:`runtime_core.LeaseStore` over any driver (written once, as the async code in
    ``storage/_async/leases.py``; the sync class is generated from it).

    Every change is a compare-and-set on the lease key, so two processes racing for a thread
    cannot both believe they hold it. ``clock`` is injectable so expiry can be tested without
    sleeping; all processes sharing a store should agree on the time (leases are wall-clock)."""

    def __init__(
        self, driver: Driver, *, clock: Clock | None = None, serializer: Serializer | None = None
    ) -> None:
        self._driver = driver
        self._clock: Clock = clock or SystemClock()
        self._serializer: Serializer = serializer or EnvelopeSerializer()

    def _read(self, thread_id: str) -> tuple[Lease | None, int | None]:
        entry = self._driver.get(LEASE_NS, thread_id)
        if entry is None:
            return None, None
        rec: LeaseRecord = self._serializer.loads(entry.value, LeaseRecord, at=(LEASE_NS, thread_id))
        if rec.thread_id != thread_id:
            raise CorruptionError(
                f"the lease at {thread_id!r:.200} is thread {rec.thread_id!r:.200}'s: it was copied "
                "or moved from another key"
            )
        return lease_of(rec), entry.version

    def _encode(self, lease: Lease) -> bytes:
        return self._serializer.dumps(record_of(lease), at=(LEASE_NS, lease.thread_id))

    def acquire(self, thread_id: str, holder: str, ttl: timedelta) -> Lease:
        """Take ``thread_id`` for ``holder`` (a run id) for ``ttl``.

        Re-acquiring a lease the same holder still has extends it. Raises RuntimeBusyError (naming
        the holder) if another holder has a live lease, ValidationError on bad input."""
        validate_id(thread_id, "thread id")
        check_ttl(ttl)
        now = self._clock.now()
        lease = Lease(thread_id, holder, owner(), now, now + ttl)
        current, version = self._read(thread_id)
        if current is not None and current.is_live(now) and current.holder != holder:
            raise RuntimeBusyError(
                f"thread {thread_id} is held by run {current.holder} ({current.owner}) until "
                f"{current.expires_at.isoformat()}",
                thread_id=thread_id,
                holder=current.holder,
            )
        try:
            if version is None:
                self._driver.put(LEASE_NS, thread_id, self._encode(lease), if_absent=True)
            else:
                self._driver.put(LEASE_NS, thread_id, self._encode(lease), if_version=version)
        except ConflictError:
            # somebody else moved the lease between our read and write: report who holds it now
            now_holder, _ = self._read(thread_id)
            raise RuntimeBusyError(
                f"thread {thread_id} was taken by run "
                f"{now_holder.holder if now_holder else 'unknown'} while acquiring it",
                thread_id=thread_id,
                holder=now_holder.holder if now_holder else None,
            ) from None
        return lease

    def renew(self, lease: Lease, ttl: timedelta) -> Lease:
        """Extend ``lease`` by ``ttl`` from now. Raises ConflictError if the lease was lost: released,
        or expired and taken by another holder. An expired lease nobody took is still renewed."""
        check_ttl(ttl)
        current, version = self._read(lease.thread_id)
        if current is None or version is None or current.holder != lease.holder:
            raise ConflictError(
                f"the lease of run {lease.holder} on thread {lease.thread_id} was lost"
                + (f": run {current.holder} holds it now" if current else "")
            )
        now = self._clock.now()
        renewed = Lease(lease.thread_id, lease.holder, current.owner, current.acquired_at, now + ttl)
        self._driver.put(LEASE_NS, lease.thread_id, self._encode(renewed), if_version=version)
        return renewed

    def release(self, lease: Lease) -> None:
        """Give the thread up. A no-op if the lease is no longer ours (lost or already released)."""
        current, version = self._read(lease.thread_id)
        if current is None or version is None or current.holder != lease.holder:
            return
        try:
            self._driver.delete(LEASE_NS, lease.thread_id, if_version=version)
        except ConflictError:
            return

    def current(self, thread_id: str) -> Lease | None:
        """The live lease on ``thread_id``, or None (never an expired one)."""
        validate_id(thread_id, "thread id")
        lease, _ = self._read(thread_id)
        if lease is None or not lease.is_live(self._clock.now()):
            return None
        return lease

    def check_free(self, thread_id: str, action: str) -> None:
        """Raise RuntimeBusyError naming the holder if a live lease holds ``thread_id``."""
        lease = self.current(thread_id)
        if lease is not None:
            raise busy(thread_id, lease, action)
