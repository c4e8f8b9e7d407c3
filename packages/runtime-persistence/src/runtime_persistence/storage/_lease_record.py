"""The stored shape of a lease, shared by :class:`Leases` and :class:`AsyncLeases` (no I/O).

Layout: namespace ``lease``, key = thread id, value = the lease in an envelope."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import msgspec
from runtime_core import Lease, RuntimeBusyError, ValidationError

__all__ = ["LEASE_NS", "LeaseRecord", "busy", "check_ttl", "lease_of", "owner", "record_of"]

LEASE_NS = "lease"


class LeaseRecord(msgspec.Struct, array_like=True, frozen=True):
    thread_id: str
    holder: str
    owner: str
    acquired_at: datetime
    expires_at: datetime


def record_of(lease: Lease) -> LeaseRecord:
    return LeaseRecord(lease.thread_id, lease.holder, lease.owner, lease.acquired_at, lease.expires_at)


def lease_of(rec: LeaseRecord) -> Lease:
    return Lease(rec.thread_id, rec.holder, rec.owner, rec.acquired_at, rec.expires_at)


def owner() -> str:
    """This process, as a lease names it: ``host:pid``."""
    import socket  # here, not at the top: a command that only reads never takes a lease

    return f"{socket.gethostname()}:{os.getpid()}"


def check_ttl(ttl: timedelta) -> None:
    if not isinstance(ttl, timedelta) or ttl <= timedelta(0):
        raise ValidationError(f"a lease ttl must be a positive timedelta, got {ttl!r:.60}")


def busy(thread_id: str, lease: Lease, action: str) -> RuntimeBusyError:
    """The error for ``action`` refused because ``lease`` holds ``thread_id``."""
    return RuntimeBusyError(
        f"cannot {action}: thread {thread_id} is held by run {lease.holder} ({lease.owner}) "
        f"until {lease.expires_at.isoformat()}; stop that run or wait for its lease to expire",
        thread_id=thread_id,
        holder=lease.holder,
    )
