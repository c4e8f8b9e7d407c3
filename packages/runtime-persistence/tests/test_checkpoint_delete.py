"""Checkpoints.delete: one checkpoint goes; the head, pinned checkpoints and fork origins stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from runtime_core import NotFoundError, RuntimeBusyError, ValidationError, new_id
from runtime_persistence import Checkpoints
from runtime_persistence.testing import TestStore, store_fixture

delete_store = store_fixture("memory", "sqlite", "file", modes=("sync", "async"))


@pytest.fixture
def store(delete_store: TestStore) -> Checkpoints:
    cps: Checkpoints = delete_store.make(Checkpoints)
    return cps


def _thread(store: Checkpoints, n: int = 4) -> tuple[str, list[str]]:
    thread = store.create_thread("t")
    ids = [store.save(thread.id, {"n": i}).id for i in range(n)]
    store.put_writes(ids[1], "task", {"result": "kept with its checkpoint"})
    return thread.id, ids


def test_delete_removes_one_checkpoint_and_its_writes(store: Checkpoints) -> None:
    thread_id, ids = _thread(store)
    removed: list[tuple[str, tuple[str, ...]]] = []
    store.add_removal_listener(lambda t, r: removed.append((t, r)))
    store.delete(ids[1])
    with pytest.raises(NotFoundError):
        store.get(ids[1])
    assert [c.id for c in store.list(thread_id)] == [ids[3], ids[2], ids[0]]
    assert [c.id for c in store.history(ids[3])] == [ids[3], ids[2], ids[0]]
    assert store.get(ids[2]).state == {"n": 2}
    assert removed == [(thread_id, (ids[1],))]
    with pytest.raises(NotFoundError):
        store.delete(ids[1])


def test_the_head_cannot_be_deleted(store: Checkpoints) -> None:
    _, ids = _thread(store)
    with pytest.raises(ValidationError, match="head"):
        store.delete(ids[-1])
    assert store.get(ids[-1]).id == ids[-1]


def test_a_fork_origin_cannot_be_deleted(store: Checkpoints) -> None:
    _, ids = _thread(store)
    store.fork(ids[1])
    with pytest.raises(ValidationError, match="fork"):
        store.delete(ids[1])


def test_a_pinned_checkpoint_cannot_be_deleted_until_unpinned(store: Checkpoints) -> None:
    _, ids = _thread(store)
    store.pin(ids[0])
    with pytest.raises(ValidationError, match="pinned"):
        store.delete(ids[0])
    store.unpin(ids[0])
    store.delete(ids[0])


def test_delete_is_refused_while_a_run_holds_the_thread(store: Checkpoints) -> None:
    thread_id, ids = _thread(store)
    run_id = new_id()
    store.leases.acquire(thread_id, run_id, timedelta(minutes=1))
    with pytest.raises(RuntimeBusyError) as caught:
        store.delete(ids[0])
    assert caught.value.holder == run_id
    assert store.get(ids[0]).id == ids[0]
