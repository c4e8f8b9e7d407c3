"""Retention on every available driver: what prune removes, what it never removes, and that the
lineage stays readable."""

from __future__ import annotations

from datetime import timedelta

import pytest
from runtime_core import ManualClock, RuntimeBusyError, ValidationError, new_id
from runtime_persistence import Checkpoints
from runtime_persistence.testing import TestStore, store_fixture

prune_store = store_fixture(modes=("sync", "async"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def cps(prune_store: TestStore, clock: ManualClock) -> Checkpoints:
    return prune_store.make(Checkpoints, clock=clock)


def _fill(cps: Checkpoints, clock: ManualClock, n: int, **labels: str) -> list[str]:
    t = cps.create_thread()
    ids = []
    for i in range(n):
        ids.append(cps.save(t.id, {"i": i, "pad": "p" * 400}, label=labels.get(f"c{i}")).id)
        clock.advance(60)
    return ids


def _thread(cps: Checkpoints, cp_id: str) -> str:
    return cps.get(cp_id).thread_id


def test_keep_last_removes_older_checkpoints(cps: Checkpoints, clock: ManualClock) -> None:
    ids = _fill(cps, clock, 10)
    t = _thread(cps, ids[0])
    report = cps.prune(t, keep_last=3)
    assert set(report.removed) == set(ids[:7]) and set(report.kept) == set(ids[7:])
    assert [c.id for c in cps.list(t)] == ids[7:][::-1]
    assert [c.id for c in cps.history(ids[-1])] == ids[7:][::-1]


def test_dry_run_reports_and_removes_nothing(cps: Checkpoints, clock: ManualClock) -> None:
    ids = _fill(cps, clock, 6)
    t = _thread(cps, ids[0])
    report = cps.prune(t, keep_last=2, dry_run=True)
    assert report.dry_run and set(report.removed) == set(ids[:4])
    assert len(cps.list(t)) == 6


def test_older_than_keeps_recent_checkpoints(cps: Checkpoints, clock: ManualClock) -> None:
    ids = _fill(cps, clock, 10)  # one a minute; the clock is now 10 minutes past the first
    t = _thread(cps, ids[0])
    report = cps.prune(t, older_than=timedelta(minutes=4, seconds=30))
    assert set(report.removed) == set(ids[:6])


def test_labeled_pinned_head_and_fork_sources_are_never_removed(cps: Checkpoints, clock: ManualClock) -> None:
    ids = _fill(cps, clock, 8, c1="release")
    t = _thread(cps, ids[0])
    cps.pin(ids[2])
    fork = cps.fork(ids[4])
    report = cps.prune(t, keep_last=0)
    assert set(report.removed) == {ids[0], ids[3], ids[5], ids[6]}
    assert report.protected == {
        ids[7]: "head",
        ids[1]: "labeled 'release'",
        ids[2]: "pinned",
        ids[4]: "fork source",
    }
    assert [c.id for c in cps.history(fork.head or "")][1:] == [ids[4], ids[2], ids[1]]
    cps.unpin(ids[2])
    assert ids[2] in cps.prune(t, keep_last=0).removed
    assert ids[1] in cps.prune(t, keep_last=0, keep_labeled=False).removed


def test_children_of_pruned_checkpoints_stay_readable(cps: Checkpoints, clock: ManualClock) -> None:
    ids = _fill(cps, clock, 5)
    t = _thread(cps, ids[0])
    cps.pin(ids[0])
    cps.prune(t, keep_last=1)
    head = cps.get(ids[4])
    assert head.parent_id == ids[3]  # the link names a removed id; history skips it
    assert [c.id for c in cps.history(ids[4])] == [ids[4], ids[0]]
    assert [c.id for c in cps.replay(ids[0])] == [ids[0], ids[4]]


def test_prune_is_refused_under_a_live_lease(cps: Checkpoints, clock: ManualClock) -> None:
    ids = _fill(cps, clock, 3)
    t = _thread(cps, ids[0])
    cps.leases.acquire(t, new_id(), timedelta(minutes=1))
    with pytest.raises(RuntimeBusyError):
        cps.prune(t, keep_last=1)
    assert len(cps.list(t)) == 3


def test_removed_ids_are_reported_to_listeners(cps: Checkpoints, clock: ManualClock) -> None:
    ids = _fill(cps, clock, 4)
    t = _thread(cps, ids[0])
    seen: list[tuple[str, tuple[str, ...]]] = []
    direct: list[tuple[str, ...]] = []
    cps.add_removal_listener(lambda th, removed: seen.append((th, removed)))
    cps.prune(t, keep_last=2, on_removed=lambda th, removed: direct.append(removed))
    assert seen == [(t, (ids[1], ids[0]))] and direct == [(ids[1], ids[0])]


def test_prune_needs_a_rule(cps: Checkpoints, clock: ManualClock) -> None:
    ids = _fill(cps, clock, 2)
    with pytest.raises(ValidationError):
        cps.prune(_thread(cps, ids[0]))
