"""Checkpoints and threads on every available driver: save, get, latest, list, history, writes,
fork, restore, replay, diff, copy, delete."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from runtime_core import (
    CheckpointSource,
    CheckpointStore,
    ConflictError,
    DiffKind,
    ManualClock,
    NotFoundError,
    RuntimeBusyError,
    ValidationError,
    new_id,
)
from runtime_persistence import Checkpoints
from runtime_persistence.testing import TestStore, store_fixture

ckpt_store = store_fixture(modes=("sync", "async"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def cps(ckpt_store: TestStore, clock: ManualClock) -> Checkpoints:
    return ckpt_store.make(Checkpoints, clock=clock)


def _state(i: int, n_messages: int = 3) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": f"m{j}"} for j in range(n_messages)],
        "step": i,
    }


def test_checkpoints_implements_the_core_protocol(cps: Checkpoints) -> None:
    assert isinstance(cps, CheckpointStore)


def test_save_defaults_parent_to_head_and_moves_head(cps: Checkpoints) -> None:
    t = cps.create_thread("t")
    a = cps.save(t.id, _state(0))
    b = cps.save(t.id, _state(1))
    assert a.parent_id is None and a.step == 0
    assert b.parent_id == a.id and b.step == 1
    assert cps.get_thread(t.id).head == b.id
    latest = cps.latest(t.id)
    assert latest is not None and latest.id == b.id and latest.state == _state(1)


def test_get_returns_state_and_fields(cps: Checkpoints) -> None:
    t = cps.create_thread()
    big = {
        "messages": [{"role": "user", "content": "x" * 500, "i": i} for i in range(50)],
        "n": 1,
        "blob": "y" * 5000,
    }
    cp = cps.save(t.id, big, label="v1", metadata={"kind": "test"}, source=CheckpointSource.INPUT, step=7)
    got = cps.get(cp.id)
    assert got.state == big
    assert (got.label, got.metadata, got.source, got.step) == (
        "v1",
        {"kind": "test"},
        CheckpointSource.INPUT,
        7,
    )


def test_two_writers_on_one_parent_get_one_conflict(cps: Checkpoints) -> None:
    t = cps.create_thread()
    a = cps.save(t.id, _state(0))
    cps.save(t.id, _state(1), parent_id=a.id)
    with pytest.raises(ConflictError):
        cps.save(t.id, _state(2), parent_id=a.id)
    assert len(cps.list(t.id)) == 2


def test_latest_of_empty_thread_is_none_and_unknown_thread_raises(cps: Checkpoints) -> None:
    t = cps.create_thread()
    assert cps.latest(t.id) is None
    with pytest.raises(NotFoundError):
        cps.latest(new_id())
    with pytest.raises(NotFoundError):
        cps.save(new_id(), {})


def test_list_is_newest_first_and_pages_with_before_and_after(cps: Checkpoints) -> None:
    t = cps.create_thread()
    ids = [cps.save(t.id, _state(i)).id for i in range(12)]
    assert [c.id for c in cps.list(t.id, limit=5)] == ids[::-1][:5]
    page2 = cps.list(t.id, before=ids[7], limit=3)
    assert [c.id for c in page2] == [ids[6], ids[5], ids[4]]
    assert [c.id for c in cps.list(t.id, after=ids[9])] == [ids[11], ids[10]]
    assert [c.id for c in cps.list(t.id, after=ids[2], before=ids[6])] == [ids[5], ids[4], ids[3]]
    assert cps.list(t.id, limit=0) == []


def test_list_filters_by_metadata(cps: Checkpoints) -> None:
    t = cps.create_thread()
    for i in range(10):
        cps.save(t.id, _state(i), metadata={"parity": "even" if i % 2 == 0 else "odd", "i": i})
    evens = cps.list(t.id, metadata={"parity": "even"}, limit=3)
    assert [c.metadata["i"] for c in evens] == [8, 6, 4]
    assert cps.list(t.id, metadata={"parity": "even", "i": 3}) == []
    assert cps.list(t.id, metadata={"parity": "x' OR 1=1 --"}) == []


def test_list_rejects_a_bound_from_another_thread(cps: Checkpoints) -> None:
    t1, t2 = cps.create_thread(), cps.create_thread()
    other = cps.save(t2.id, {})
    cps.save(t1.id, {})
    with pytest.raises(ValidationError):
        cps.list(t1.id, before=other.id)


def test_history_crosses_forks(cps: Checkpoints) -> None:
    t = cps.create_thread()
    a = cps.save(t.id, _state(0))
    b = cps.save(t.id, _state(1))
    cps.save(t.id, _state(2))
    fork = cps.fork(b.id, name="alt")
    assert fork.parent_thread_id == t.id and fork.forked_from == b.id
    x = cps.save(fork.id, _state(10))
    assert [c.id for c in cps.history(x.id)] == [x.id, fork.head, b.id, a.id]
    first = cps.get(fork.head or "")
    assert first.source is CheckpointSource.FORK and first.state == b.state and first.parent_id == b.id


def test_pending_writes_come_back_with_their_checkpoint(cps: Checkpoints, clock: ManualClock) -> None:
    t = cps.create_thread()
    cp = cps.save(t.id, _state(0))
    cps.put_writes(cp.id, "task-1", {"tool_result": {"ok": True, "out": "z" * 2000}})
    clock.advance(1)
    cps.put_writes(cp.id, "task-2", {"tool_result": "second"})
    cps.put_writes(cp.id, "task-1", {"tool_result": {"ok": True, "out": "retried"}})
    got = cps.get(cp.id)
    writes = {(w.task_id, w.channel): w.value for w in got.pending_writes}
    assert writes == {
        ("task-1", "tool_result"): {"ok": True, "out": "retried"},
        ("task-2", "tool_result"): "second",
    }
    later = cps.save(t.id, _state(1))
    assert cps.get(later.id).pending_writes == ()
    listed = {c.id: c for c in cps.list(t.id)}
    assert len(listed[cp.id].pending_writes) == 2
    latest = cps.latest(t.id)
    assert latest is not None and latest.pending_writes == ()
    with pytest.raises(NotFoundError):
        cps.put_writes(new_id(), "t", {"a": 1})


def test_restore_writes_a_new_head_that_can_be_undone(cps: Checkpoints) -> None:
    t = cps.create_thread()
    a = cps.save(t.id, _state(0))
    b = cps.save(t.id, _state(1))
    r = cps.restore(a.id)
    assert r.source is CheckpointSource.RESTORE and r.parent_id == b.id and r.state == a.state
    assert cps.get_thread(t.id).head == r.id
    undo = cps.restore(b.id)
    assert undo.state == b.state
    assert [c.id for c in cps.list(t.id)] == [undo.id, r.id, b.id, a.id]


def test_restore_is_refused_under_a_live_lease_but_not_an_expired_one(
    cps: Checkpoints, clock: ManualClock
) -> None:
    t = cps.create_thread()
    a = cps.save(t.id, _state(0))
    cps.save(t.id, _state(1))
    run_id = new_id()
    cps.leases.acquire(t.id, run_id, timedelta(seconds=30))
    with pytest.raises(RuntimeBusyError) as info:
        cps.restore(a.id)
    assert info.value.holder == run_id and run_id in str(info.value)
    clock.advance(31)
    assert cps.restore(a.id).state == a.state


def test_replay_walks_forward_and_backward_with_a_callback(cps: Checkpoints) -> None:
    t = cps.create_thread()
    ids = [cps.save(t.id, _state(i)).id for i in range(6)]
    seen: list[str] = []
    forward = [c.id for c in cps.replay(ids[1], ids[4], callback=lambda c: seen.append(c.id))]
    assert forward == ids[1:5] and seen == forward
    assert [c.id for c in cps.replay(ids[1], ids[4], reverse=True)] == ids[1:5][::-1]
    assert [c.id for c in cps.replay(ids[4], ids[1])] == ids[1:5][::-1]
    assert [c.id for c in cps.replay(ids[3])] == ids[3:]


def test_replay_across_a_fork_and_refuses_unrelated_checkpoints(cps: Checkpoints) -> None:
    t = cps.create_thread()
    a = cps.save(t.id, _state(0))
    b = cps.save(t.id, _state(1))
    c = cps.save(t.id, _state(2))
    f = cps.fork(b.id)
    x = cps.save(f.id, _state(9))
    assert [cp.id for cp in cps.replay(a.id, x.id)] == [a.id, b.id, f.head, x.id]
    with pytest.raises(ValidationError):
        list(cps.replay(c.id, x.id))


def test_diff_is_path_level_and_works_across_threads(cps: Checkpoints) -> None:
    t1, t2 = cps.create_thread(), cps.create_thread()
    a = cps.save(t1.id, {"messages": [{"role": "user", "content": "hi"}], "step": 1, "gone": True})
    b = cps.save(
        t2.id,
        {
            "messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "yo"}],
            "step": 1,
            "new/key": 1,
        },
    )
    entries = {(d.path, d.kind) for d in cps.diff(a.id, b.id)}
    assert entries == {
        ("messages/0/content", DiffKind.CHANGED),
        ("messages/1", DiffKind.ADDED),
        ("gone", DiffKind.REMOVED),
        ("new~1key", DiffKind.ADDED),
    }
    assert cps.diff(a.id, a.id) == []


def test_thread_create_get_list_rename_metadata(cps: Checkpoints, clock: ManualClock) -> None:
    made = []
    for i in range(5):
        made.append(cps.create_thread(f"t{i}", metadata={"team": "a" if i % 2 else "b"}))
        clock.advance(1)
    listed = cps.list_threads(limit=3)
    assert [t.id for t in listed] == [t.id for t in made[::-1][:3]]
    assert [t.id for t in cps.list_threads(before=listed[-1].id)] == [made[1].id, made[0].id]
    assert {t.id for t in cps.list_threads(metadata={"team": "a"})} == {made[1].id, made[3].id}
    renamed = cps.rename_thread(made[0].id, "renamed")
    assert cps.get_thread(made[0].id).name == "renamed" == renamed.name
    merged = cps.update_thread_metadata(made[0].id, {"x": 1})
    assert merged.metadata == {"team": "b", "x": 1}
    replaced = cps.update_thread_metadata(made[0].id, {"y": 2}, merge=False)
    assert replaced.metadata == {"y": 2}
    with pytest.raises(ConflictError):
        cps.create_thread(thread_id=made[0].id)
    with pytest.raises(ValidationError):
        cps.rename_thread(made[0].id, "bad\x00name")


def test_copy_thread_duplicates_every_checkpoint(cps: Checkpoints) -> None:
    t = cps.create_thread("orig", metadata={"k": 1})
    saved = [cps.save(t.id, _state(i, 40), label="keep" if i == 1 else None) for i in range(4)]
    cps.put_writes(saved[-1].id, "task", {"c": 5})
    copy = cps.copy_thread(t.id, name="copy")
    assert copy.name == "copy" and copy.metadata == {"k": 1} and copy.id != t.id
    copied = cps.list(copy.id)
    assert [c.state for c in copied] == [c.state for c in saved[::-1]]
    assert {c.id for c in copied}.isdisjoint({c.id for c in saved})
    assert copied[0].pending_writes[0].value == 5
    assert [c.id for c in cps.history(copied[0].id)] == [c.id for c in copied]
    assert copied[2].label == "keep"
    cps.save(copy.id, _state(99))
    assert len(cps.list(t.id)) == 4


def test_delete_thread_removes_its_checkpoints(cps: Checkpoints) -> None:
    t = cps.create_thread()
    cp = cps.save(t.id, _state(0))
    removed: list[tuple[str, tuple[str, ...]]] = []
    cps.add_removal_listener(lambda th, ids: removed.append((th, ids)))
    cps.delete_thread(t.id)
    with pytest.raises(NotFoundError):
        cps.get_thread(t.id)
    with pytest.raises(NotFoundError):
        cps.get(cp.id)
    assert removed == [(t.id, (cp.id,))]
    assert t.id not in {x.id for x in cps.list_threads()}


def test_delete_thread_is_refused_under_a_live_lease(cps: Checkpoints) -> None:
    t = cps.create_thread()
    cps.leases.acquire(t.id, new_id(), timedelta(minutes=1))
    with pytest.raises(RuntimeBusyError):
        cps.delete_thread(t.id)


def test_bad_input_is_refused_before_anything_is_written(cps: Checkpoints) -> None:
    t = cps.create_thread()
    with pytest.raises(ValidationError):
        cps.save(t.id, {"x": object()})
    with pytest.raises(ValidationError):
        cps.save(t.id, {"": 1})
    with pytest.raises(ValidationError):
        cps.get("not-an-id")
    with pytest.raises(ValidationError):
        cps.list(t.id, limit=-1)
    assert cps.latest(t.id) is None


def test_a_second_store_object_sees_the_same_data(ckpt_store: TestStore, cps: Checkpoints) -> None:
    t = cps.create_thread()
    cp = cps.save(t.id, _state(3, 60))
    if ckpt_store.url is None:
        other = ckpt_store.make(Checkpoints)
        assert other.get(cp.id).state == cp.state
        return
    driver = ckpt_store.open()
    try:
        other = Checkpoints(driver)
        assert other.get(cp.id).state == cp.state
        latest = other.latest(t.id)
        assert latest is not None and latest.id == cp.id
    finally:
        driver.close()


def test_a_head_moved_by_another_writer_is_the_default_parent(ckpt_store: TestStore) -> None:
    one, two = ckpt_store.make(Checkpoints), ckpt_store.make(Checkpoints)
    t = one.create_thread()
    first = one.save(t.id, {"n": 1})
    second = two.save(t.id, {"n": 2})
    third = one.save(t.id, {"n": 3})  # `one` last wrote `first`; the head is now `second`
    assert (second.parent_id, third.parent_id) == (first.id, second.id)
    with pytest.raises(ConflictError):
        two.save(t.id, {"n": 4}, parent_id=second.id)
    assert [c.id for c in two.list(t.id)] == [third.id, second.id, first.id]


def test_a_thread_deleted_and_recreated_by_another_writer_is_not_extended_from_its_old_head(
    ckpt_store: TestStore,
) -> None:
    # the recreated head key starts again at version 1, the version `one` last wrote
    one, two = ckpt_store.make(Checkpoints), ckpt_store.make(Checkpoints)
    t = one.create_thread(thread_id=new_id())
    old = one.save(t.id, {"big": "x" * 2000})
    two.delete_thread(t.id)
    two.create_thread(thread_id=t.id)
    fresh = two.save(t.id, {"n": 1})
    later = one.save(t.id, {"big": "x" * 2000})
    assert (later.parent_id, later.step) == (fresh.id, 1)
    assert old.id not in [c.id for c in two.list(t.id)]
    assert two.get(later.id).state == {"big": "x" * 2000}
