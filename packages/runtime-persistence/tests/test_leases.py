"""Leases on threads on every available driver: acquire, renew, release, expiry, takeover."""

from __future__ import annotations

from datetime import timedelta

import pytest
from runtime_core import ConflictError, LeaseStore, ManualClock, RuntimeBusyError, ValidationError, new_id
from runtime_persistence import Leases
from runtime_persistence.testing import TestStore, store_fixture

lease_store = store_fixture(modes=("sync", "async"))
TTL = timedelta(seconds=30)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def leases(lease_store: TestStore, clock: ManualClock) -> Leases:
    leases: Leases = lease_store.make(Leases, clock=clock)
    return leases


def test_leases_implement_the_core_protocol(leases: Leases) -> None:
    assert isinstance(leases, LeaseStore)


def test_a_live_lease_blocks_another_holder_and_names_the_holder(leases: Leases) -> None:
    thread, run_a, run_b = new_id(), new_id(), new_id()
    lease = leases.acquire(thread, run_a, TTL)
    assert leases.current(thread) == lease
    with pytest.raises(RuntimeBusyError) as info:
        leases.acquire(thread, run_b, TTL)
    assert info.value.holder == run_a


def test_an_expired_lease_blocks_nothing_and_can_be_taken_over(leases: Leases, clock: ManualClock) -> None:
    thread, run_a, run_b = new_id(), new_id(), new_id()
    old = leases.acquire(thread, run_a, TTL)
    clock.advance(TTL + timedelta(seconds=1))
    assert leases.current(thread) is None
    new = leases.acquire(thread, run_b, TTL)
    assert leases.current(thread) == new
    with pytest.raises(ConflictError):
        leases.renew(old, TTL)


def test_renew_extends_and_release_frees(leases: Leases, clock: ManualClock) -> None:
    thread, run = new_id(), new_id()
    lease = leases.acquire(thread, run, TTL)
    clock.advance(20)
    renewed = leases.renew(lease, TTL)
    assert renewed.expires_at == clock.now() + TTL
    clock.advance(20)
    assert leases.current(thread) is not None
    leases.release(renewed)
    assert leases.current(thread) is None
    leases.release(renewed)  # releasing twice is harmless
    with pytest.raises(ConflictError):
        leases.renew(renewed, TTL)


def test_releasing_a_lost_lease_does_not_free_the_new_holder(leases: Leases, clock: ManualClock) -> None:
    thread = new_id()
    old = leases.acquire(thread, new_id(), TTL)
    clock.advance(TTL * 2)
    new = leases.acquire(thread, new_id(), TTL)
    leases.release(old)
    assert leases.current(thread) == new


def test_same_holder_reacquires(leases: Leases) -> None:
    thread, run = new_id(), new_id()
    leases.acquire(thread, run, TTL)
    assert leases.acquire(thread, run, TTL * 2).holder == run


def test_bad_ttl_is_refused(leases: Leases) -> None:
    with pytest.raises(ValidationError):
        leases.acquire(new_id(), new_id(), timedelta(0))
