"""Keeping a lease alive while a run works: a background thread that renews it (heartbeats) and
knows when it was lost."""

from __future__ import annotations

import threading
from datetime import timedelta

from runtime_core import (
    Clock,
    ConflictError,
    Lease,
    LeaseStore,
    NotFoundError,
    NullTelemetry,
    SystemClock,
    Telemetry,
)

__all__ = ["LeaseKeeper"]


class LeaseKeeper:
    """Renews ``lease`` every ``every`` seconds on a daemon thread until :meth:`stop`.

    :meth:`valid` is False once the lease is known lost (a renewal found another holder) or may
    have expired (no successful renewal within ``ttl``, measured on ``clock.monotonic`` from before
    the renewal was sent, so the estimate errs on the safe side; a process that was paused finds
    its lease expired when it wakes, before it touches anything). A runner checks it before
    every tool call and checkpoint, so that a runner that lost its thread stops touching it."""

    def __init__(
        self,
        leases: LeaseStore,
        lease: Lease,
        *,
        ttl: timedelta,
        every: float,
        telemetry: Telemetry | None = None,
        since: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._leases = leases
        self._lease = lease
        self._ttl = ttl
        self._every = every
        self._telemetry: Telemetry = telemetry or NullTelemetry()
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._renewing = threading.Lock()
        self._stop = threading.Event()
        self._lost: str | None = None
        # ``since``: the monotonic time just before the lease was acquired (the safe side)
        self._valid_until = (self._clock.monotonic() if since is None else since) + ttl.total_seconds()
        self._thread = threading.Thread(target=self._loop, name="keepup-heartbeat", daemon=True)
        self.renewals = 0

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    @property
    def lease(self) -> Lease:
        with self._lock:
            return self._lease

    @property
    def lost_reason(self) -> str | None:
        """Why the lease is no longer ours (None while it is)."""
        with self._lock:
            if self._lost is not None:
                return self._lost
            if self._clock.monotonic() >= self._valid_until:
                return "no heartbeat succeeded within the lease ttl"
            return None

    def valid(self) -> bool:
        return self.lost_reason is None

    def ensure(self) -> str | None:
        """None if the lease is ours; else why not. When only the local estimate ran out (the
        heartbeat thread was starved or paused) one renewal is tried now: it succeeds if nobody took
        the lease meanwhile, and fails (lost) if somebody did."""
        reason = self.lost_reason
        if reason is None:
            return None
        with self._lock:
            hard = self._lost is not None
        if hard or not self.renew_now():
            return self.lost_reason or reason
        return None

    def renew_now(self) -> bool:
        """Renew once, now; return whether the lease is still ours."""
        with self._renewing:  # the heartbeat thread and a runner's own check never race
            return self._renew()

    def _renew(self) -> bool:
        with self._lock:
            if self._lost is not None:
                return False
            lease = self._lease
        sent = self._clock.monotonic()
        try:
            renewed = self._leases.renew(lease, self._ttl)
        except (ConflictError, NotFoundError) as exc:
            if self._still_ours(lease):  # the version moved under a concurrent write, not a new holder
                return self.valid()
            with self._lock:
                self._lost = str(exc)
            self._telemetry.event(
                "run.lease_lost", thread_id=lease.thread_id, holder=lease.holder, reason=str(exc)
            )
            return False
        except Exception as exc:  # a storage hiccup: keep trying until the ttl runs out
            self._telemetry.event(
                "run.heartbeat_failed", thread_id=lease.thread_id, error=f"{type(exc).__name__}: {exc}"
            )
            return self.valid()
        with self._lock:
            self._lease = renewed
            self._valid_until = sent + self._ttl.total_seconds()
            self.renewals += 1
        return True

    def _still_ours(self, lease: Lease) -> bool:
        try:
            current = self._leases.current(lease.thread_id)
        except Exception:
            return False
        return current is not None and current.holder == lease.holder

    def stop(self) -> Lease:
        """Stop renewing; return the last lease held (for release)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        return self.lease

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            if not self.renew_now() and self._lost is not None:
                return
