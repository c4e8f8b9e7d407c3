"""What frameworks bring to the checkpoint store: external keys of threads and checkpoints
(unique, indexed, atomic get-or-create), namespaces inside a thread, explicit branches, pending
writes addressed by a checkpoint key before the checkpoint exists, the metadata index across
threads, and deleting a run's newest checkpoints with the head moved back."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from runtime_core import ConflictError, CorruptionError, NotFoundError, ValidationError
from runtime_persistence import Checkpoints, export_threads, import_threads, open_store
from runtime_persistence.checkpoint._records import CKPT_WRITE_NS, KeyedWrite, keyed_write_key
from runtime_persistence.storage.serialization import EnvelopeSerializer
from runtime_persistence.testing import TestStore, store_fixture

keyed_store = store_fixture(modes=("sync", "async"))
SPECIAL = {"__error__": -1, "__interrupt__": -3}


@pytest.fixture
def store(keyed_store: TestStore) -> Checkpoints:
    cps: Checkpoints = keyed_store.make(Checkpoints)
    return cps


def test_get_or_create_thread_returns_one_thread_per_external_key(store: Checkpoints) -> None:
    first = store.get_or_create_thread("lg-thread-1", name="chat")
    again = store.get_or_create_thread("lg-thread-1")
    other = store.get_or_create_thread("lg-thread-2")
    assert again.id == first.id and other.id != first.id
    assert first.external_key == "lg-thread-1"
    assert store.find_thread("lg-thread-1") == store.get_thread(first.id)
    assert store.find_thread("nobody") is None
    with pytest.raises(ConflictError):
        store.create_thread("dup", external_key="lg-thread-1")


def test_a_deleted_thread_frees_its_external_key(store: Checkpoints) -> None:
    thread = store.get_or_create_thread("k")
    store.delete_thread(thread.id)
    assert store.find_thread("k") is None
    assert store.get_or_create_thread("k").id != thread.id


def _create(url: str, key: str, out: multiprocessing.Queue[str]) -> None:
    driver = open_store(url)
    try:
        out.put(Checkpoints(driver).get_or_create_thread(key).id)
    finally:
        driver.close()


def test_get_or_create_is_atomic_across_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[str] = ctx.Queue()
    procs = [ctx.Process(target=_create, args=(url, "shared", out)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    ids = {out.get(timeout=5) for _ in procs}
    assert len(ids) == 1
    driver = open_store(url)
    try:
        assert [t.external_key for t in Checkpoints(driver).list_threads()] == ["shared"]
    finally:
        driver.close()


def test_checkpoint_keys_are_unique_per_namespace_and_found_by_index(store: Checkpoints) -> None:
    thread = store.create_thread()
    root = store.save(thread.id, {"x": 1}, external_key="c1")
    sub = store.save(thread.id, {"y": 2}, namespace="sub:abc", external_key="c1")
    assert store.get_by_key(thread.id, "c1").id == root.id
    assert store.get_by_key(thread.id, "c1", namespace="sub:abc").id == sub.id
    assert sub.namespace == "sub:abc" and sub.parent_id is None
    with pytest.raises(ConflictError, match="c1"):
        store.save(thread.id, {"x": 2}, external_key="c1")
    with pytest.raises(NotFoundError):
        store.get_by_key(thread.id, "nope")
    assert store.find_by_key(thread.id, "nope") is None


def test_each_namespace_has_its_own_head(store: Checkpoints) -> None:
    thread = store.create_thread()
    a = store.save(thread.id, {"n": 1})
    s1 = store.save(thread.id, {"n": 10}, namespace="sub")
    s2 = store.save(thread.id, {"n": 11}, namespace="sub", parent_id=s1.id)
    b = store.save(thread.id, {"n": 2}, parent_id=a.id)
    assert store.latest(thread.id).id == b.id  # type: ignore[union-attr]
    assert store.latest(thread.id, namespace="sub").id == s2.id  # type: ignore[union-attr]
    assert [c.id for c in store.list(thread.id)] == [b.id, a.id]
    assert [c.id for c in store.list(thread.id, namespace="sub")] == [s2.id, s1.id]
    assert store.namespaces(thread.id) == ["", "sub"]
    with pytest.raises(ConflictError):  # s1 is no longer the head of "sub"
        store.save(thread.id, {"n": 12}, namespace="sub", parent_id=s1.id)


def test_an_explicit_branch_from_an_old_checkpoint_is_recorded_and_becomes_the_head(
    store: Checkpoints,
) -> None:
    thread = store.create_thread()
    a = store.save(thread.id, {"n": 1})
    b = store.save(thread.id, {"n": 2})
    branch = store.save(thread.id, {"n": 3}, branch_from=a.id)
    assert branch.parent_id == a.id and branch.branch and not b.branch
    assert store.latest(thread.id).id == branch.id  # type: ignore[union-attr]
    assert store.get(branch.id).branch
    with pytest.raises(ConflictError):  # a writer that claims to extend b still conflicts
        store.save(thread.id, {"n": 4}, parent_id=b.id)
    root = store.save(thread.id, {"n": 0}, new_root=True)
    assert root.parent_id is None and root.branch
    with pytest.raises(ValidationError):
        store.save(thread.id, {}, parent_id=root.id, branch_from=a.id)


def test_keyed_writes_arrive_before_their_checkpoint_and_keep_task_path_and_index(store: Checkpoints) -> None:
    thread = store.create_thread()
    store.put_keyed_writes(thread.id, "future", "task-b", [("out", 2)], task_path="~b")
    store.put_keyed_writes(
        thread.id, "future", "task-a", [("out", 1), ("__error__", "boom")], task_path="~a", special=SPECIAL
    )
    cp = store.save(thread.id, {"s": 1}, external_key="future")
    got = [(w.task_id, w.channel, w.value, w.task_path, w.index) for w in store.get(cp.id).pending_writes]
    assert got == [
        ("task-a", "__error__", "boom", "~a", -1),
        ("task-a", "out", 1, "~a", 0),
        ("task-b", "out", 2, "~b", 0),
    ]


def test_regular_writes_are_first_write_wins_and_special_ones_replace(store: Checkpoints) -> None:
    thread = store.create_thread()
    cp = store.save(thread.id, {}, external_key="k")
    store.put_keyed_writes(thread.id, "k", "t", [("out", "first")], special=SPECIAL)
    store.put_keyed_writes(thread.id, "k", "t", [("out", "retry")], special=SPECIAL)
    store.put_keyed_writes(thread.id, "k", "t", [("__interrupt__", "one")], special=SPECIAL)
    store.put_keyed_writes(thread.id, "k", "t", [("__interrupt__", "two")], special=SPECIAL)
    values = {w.channel: w.value for w in store.get(cp.id).pending_writes}
    assert values == {"out": "first", "__interrupt__": "two"}


def test_keyed_writes_of_another_namespace_stay_apart(store: Checkpoints) -> None:
    thread = store.create_thread()
    root = store.save(thread.id, {}, external_key="k")
    sub = store.save(thread.id, {}, namespace="sub", external_key="k")
    store.put_keyed_writes(thread.id, "k", "t", [("c", "root")])
    store.put_keyed_writes(thread.id, "k", "t", [("c", "sub")], namespace="sub")
    assert [w.value for w in store.get(root.id).pending_writes] == ["root"]
    assert [w.value for w in store.get(sub.id).pending_writes] == ["sub"]


def test_list_all_filters_metadata_through_the_index_across_threads(store: Checkpoints) -> None:
    t1, t2 = store.create_thread(), store.create_thread()
    a = store.save(t1.id, {}, external_key="a", metadata={"run_id": "r1", "step": 1})
    store.save(t2.id, {}, external_key="b", metadata={"run_id": "r2", "step": 1})
    c = store.save(t2.id, {}, external_key="c", metadata={"run_id": "r1", "step": 2})
    assert [cp.id for cp in store.list_all(metadata={"run_id": "r1"})] == [c.id, a.id]
    assert [cp.id for cp in store.list_all(metadata={"run_id": "r1", "step": 1})] == [a.id]
    assert [cp.id for cp in store.list_all(metadata={"run_id": "r1"}, before=c.id)] == [a.id]
    assert len(store.list_all()) == 3
    assert sorted(store.ids_by_metadata("run_id", "r1")) == sorted([a.id, c.id])
    assert store.ids_by_metadata("step", True) == []  # True is not 1


def test_deleting_a_runs_newest_checkpoints_moves_the_head_back(store: Checkpoints) -> None:
    thread = store.create_thread()
    a = store.save(thread.id, {"n": 1}, external_key="a", metadata={"run_id": "r1"})
    b = store.save(thread.id, {"n": 2}, external_key="b", metadata={"run_id": "r2"})
    c = store.save(thread.id, {"n": 3}, external_key="c", metadata={"run_id": "r2"})
    store.put_keyed_writes(thread.id, "c", "t", [("x", 1)])
    deleted = store.delete_checkpoints(store.ids_by_metadata("run_id", "r2"))
    assert sorted(deleted) == sorted([b.id, c.id])
    assert store.latest(thread.id).id == a.id  # type: ignore[union-attr]
    assert store.find_by_key(thread.id, "c") is None
    assert store.list_all(metadata={"run_id": "r2"}) == []
    d = store.save(thread.id, {"n": 4}, parent_id=a.id, external_key="c")  # the key is free again
    assert d.pending_writes == ()
    assert store.delete_checkpoints([a.id, d.id]) and store.latest(thread.id) is None


def test_copy_and_delete_thread_cover_every_namespace(store: Checkpoints) -> None:
    thread = store.get_or_create_thread("src")
    store.save(thread.id, {"n": 1}, external_key="r", metadata={"run_id": "x"})
    store.save(thread.id, {"n": 2}, namespace="sub", external_key="s")
    store.put_keyed_writes(thread.id, "s", "t", [("c", 1)], namespace="sub")
    copy = store.copy_thread(thread.id, external_key="dst")
    assert store.namespaces(copy.id) == ["", "sub"]
    copied = store.get_by_key(copy.id, "s", namespace="sub")
    assert [(w.channel, w.value) for w in copied.pending_writes] == [("c", 1)]
    store.delete_thread(thread.id)
    assert store.find_thread("src") is None
    assert [cp.thread_id for cp in store.list_all(metadata={"run_id": "x"})] == [copy.id]
    assert store.get_by_key(copy.id, "r").state == {"n": 1}


def test_prune_keeps_the_newest_of_one_namespace(store: Checkpoints) -> None:
    thread = store.create_thread()
    for i in range(3):
        store.save(thread.id, {"n": i}, namespace="sub", external_key=f"k{i}")
    store.save(thread.id, {"n": 9})
    report = store.prune(thread.id, keep_last=1, namespace="sub")
    assert len(report.removed) == 2
    assert [c.external_key for c in store.list(thread.id, namespace="sub")] == ["k2"]
    assert len(store.list(thread.id)) == 1
    assert store.find_by_key(thread.id, "k0", namespace="sub") is None


def test_export_and_import_carry_keys_namespaces_branches_and_keyed_writes(
    keyed_store: TestStore, tmp_path: Path
) -> None:
    if keyed_store.is_async:
        pytest.skip("export is exercised through the sync twin here")
    src: Checkpoints = keyed_store.make(Checkpoints)
    thread = src.get_or_create_thread("lg")
    a = src.save(thread.id, {"n": 1}, external_key="a", metadata={"run_id": "r"})
    src.save(thread.id, {"n": 2}, parent_id=a.id, external_key="b")
    branch = src.save(thread.id, {"n": 3}, branch_from=a.id, external_key="c")
    sub = src.save(thread.id, {"n": 9}, namespace="sub:1", external_key="s")
    src.put_keyed_writes(thread.id, "s", "t", [("ch", "v")], namespace="sub:1", task_path="p")
    path = tmp_path / "out.keepup"
    export_threads(src, path)
    target = Checkpoints(open_store(f"sqlite:///{tmp_path / 'target.db'}"))
    import_threads(target, path)
    found = target.find_thread("lg")
    assert found is not None and found.id == thread.id
    assert target.latest(thread.id).id == branch.id  # type: ignore[union-attr]
    assert target.get(branch.id).branch
    got = target.get_by_key(thread.id, "s", namespace="sub:1")
    assert got.id == sub.id and [(w.channel, w.value, w.task_path) for w in got.pending_writes] == [
        ("ch", "v", "p")
    ]
    assert target.latest(thread.id, namespace="sub:1").id == sub.id  # type: ignore[union-attr]
    assert target.namespaces(thread.id) == ["", "sub:1"]
    assert [cp.id for cp in target.list_all(metadata={"run_id": "r"})] == [a.id]


def test_gc_removes_keyed_writes_of_deleted_threads_and_stale_metadata_entries(store: Checkpoints) -> None:
    from datetime import timedelta

    from runtime_persistence.checkpoint._records import CKPT_META_NS, CKPT_WRITE_NS

    keep = store.create_thread()
    kept = store.save(keep.id, {}, external_key="k", metadata={"run_id": "r"})
    store.put_keyed_writes(keep.id, "k", "t", [("c", 1)])
    gone = store.create_thread()
    store.put_keyed_writes(gone.id, "k", "t", [("c", 2)])
    entries = [e for e in store.driver.scan(CKPT_WRITE_NS, prefix=gone.id)]
    meta = [e for e in store.driver.scan(CKPT_META_NS) if e.key.endswith(kept.id)]
    store.delete_thread(gone.id)
    # what a write racing delete_thread, and a deletion that crashed half-way, leave behind
    for e in entries:
        store.driver.put(CKPT_WRITE_NS, e.key, e.value)
    store.delete_checkpoints([kept.id])
    for e in meta:
        store.driver.put(CKPT_META_NS, e.key, e.value)
    report = store.gc(grace=timedelta(0))
    assert report.records_removed >= len(entries) + len(meta)
    assert list(store.driver.scan(CKPT_WRITE_NS, prefix=gone.id)) == []
    assert [e for e in store.driver.scan(CKPT_META_NS) if e.key.endswith(kept.id)] == []


def test_deeply_nested_namespaces_and_task_paths_fit(store: Checkpoints) -> None:
    # LangGraph nests subgraph namespaces as "outer:<uuid>|inner:<uuid>|...": far past 200 chars
    namespace = "|".join(f"level{i}:{'0' * 36}" for i in range(12))
    path = "~" + ", ".join(["__pregel_pull", "node"] * 40)
    thread = store.get_or_create_thread("t" * 500)
    cp = store.save(thread.id, {"x": 1}, namespace=namespace, external_key="k" * 300)
    store.put_keyed_writes(thread.id, "k" * 300, "task", [("c", 1)], namespace=namespace, task_path=path)
    got = store.get_by_key(thread.id, "k" * 300, namespace=namespace)
    assert got.id == cp.id and got.namespace == namespace
    assert [w.task_path for w in got.pending_writes] == [path]
    with pytest.raises(ValidationError):
        store.save(thread.id, {}, namespace="n" * 1025)


def test_history_follows_parent_links_past_a_branch(store: Checkpoints) -> None:
    thread = store.create_thread()
    a = store.save(thread.id, {"n": 1})
    b = store.save(thread.id, {"n": 2})
    c = store.save(thread.id, {"n": 3})
    d = store.save(thread.id, {"n": 4}, branch_from=a.id)  # time travel back to a
    e = store.save(thread.id, {"n": 5})  # extends the branch
    assert [cp.id for cp in store.history(e.id)] == [e.id, d.id, a.id]
    assert [cp.id for cp in store.history(c.id)] == [c.id, b.id, a.id]
    assert [cp.id for cp in store.replay(a.id, e.id)] == [a.id, d.id, e.id]


sync_store = store_fixture()


def _keyed_rows(driver: Any) -> list[str]:
    return [e.key for e in driver.scan(CKPT_WRITE_NS)]


def test_the_writes_of_one_task_call_are_one_stored_row(sync_store: TestStore) -> None:
    store: Checkpoints = sync_store.make(Checkpoints)
    thread = store.create_thread()
    cp = store.save(thread.id, {}, external_key="k")
    store.put_keyed_writes(thread.id, "k", "t", [("a", 1), ("b", [2]), ("__error__", "e")], special=SPECIAL)
    assert len(_keyed_rows(sync_store.driver)) == 1  # one row to read back, not one per write
    store.put_keyed_writes(thread.id, "k", "t", [("a", "retry"), ("b", "retry"), ("c", 3)], special=SPECIAL)
    got = [(w.channel, w.value, w.index) for w in store.get(cp.id).pending_writes]
    assert got == [("__error__", "e", -1), ("a", 1, 0), ("b", [2], 1), ("c", 3, 2)]


def test_a_replacing_special_write_wins_over_the_tasks_packed_row(sync_store: TestStore) -> None:
    store: Checkpoints = sync_store.make(Checkpoints)
    thread = store.create_thread()
    cp = store.save(thread.id, {}, external_key="k")
    store.put_keyed_writes(thread.id, "k", "t", [("out", 1), ("__interrupt__", "one")], special=SPECIAL)
    store.put_keyed_writes(thread.id, "k", "t", [("__interrupt__", "two")], special=SPECIAL)
    store.put_keyed_writes(thread.id, "k", "t", [("out", 9), ("__interrupt__", "three")], special=SPECIAL)
    got = [(w.channel, w.value) for w in store.get(cp.id).pending_writes]
    assert got == [("__interrupt__", "two"), ("out", 1)]
    copy = store.copy_thread(thread.id)
    assert [(w.channel, w.value) for w in store.latest(copy.id).pending_writes] == got  # type: ignore[union-attr]


def test_keyed_writes_stored_one_row_per_write_by_earlier_versions_still_read(sync_store: TestStore) -> None:
    """Stores written before packed rows existed hold one ``KeyedWrite`` row per write."""
    store: Checkpoints = sync_store.make(Checkpoints)
    thread = store.create_thread()
    cp = store.save(thread.id, {}, external_key="k")
    ser = EnvelopeSerializer()
    now = datetime.now(UTC)
    for i, (channel, value) in enumerate([("a", "old-0"), ("b", "old-1")]):
        key = keyed_write_key(thread.id, "k", "t", i)
        row = KeyedWrite("k", "t", "", i, channel, value, now)
        sync_store.driver.put(CKPT_WRITE_NS, key, ser.dumps(row, at=(CKPT_WRITE_NS, key)))
    store.put_keyed_writes(thread.id, "k", "t", [("a", "new-0"), ("b", "new-1"), ("c", "new-2")])
    store.put_keyed_writes(thread.id, "k", "u", [("a", "u-0")])
    got = [(w.task_id, w.channel, w.value) for w in store.get(cp.id).pending_writes]
    assert got == [("t", "a", "old-0"), ("t", "b", "old-1"), ("t", "c", "new-2"), ("u", "a", "u-0")]
    store.delete_checkpoints([cp.id])
    assert _keyed_rows(sync_store.driver) == []


def test_a_special_write_stored_before_the_tasks_packed_row_stays_first(store: Checkpoints) -> None:
    thread = store.create_thread()
    cp = store.save(thread.id, {}, external_key="k")
    store.put_keyed_writes(thread.id, "k", "t", [("__interrupt__", "first")], special=SPECIAL)
    store.put_keyed_writes(thread.id, "k", "t", [("out", 1), ("__interrupt__", "late")], special=SPECIAL)
    got = [(w.channel, w.value, w.index) for w in store.get(cp.id).pending_writes]
    assert got == [("__interrupt__", "first", -3), ("out", 1, 0)]


def test_a_caller_changing_a_pending_write_it_read_does_not_change_the_next_read(
    sync_store: TestStore,
) -> None:
    """Values handed out are the caller's own: the records kept to answer the next read of the
    same rows are never the objects returned."""
    store: Checkpoints = sync_store.make(Checkpoints)
    thread = store.create_thread()
    cp = store.save(thread.id, {}, external_key="k")
    store.put_keyed_writes(thread.id, "k", "t", [("out", ["json", b"1"]), ("deep", {"a": [1, {"b": 2}]})])
    for _ in range(3):  # the first read builds the records; the next ones reuse them
        got = {w.channel: w.value for w in store.get(cp.id).pending_writes}
        assert got == {"out": ["json", b"1"], "deep": {"a": [1, {"b": 2}]}}
        got["out"].append("changed")
        got["deep"]["a"][1]["b"] = 3


def test_pending_writes_read_again_show_every_change_and_damage(sync_store: TestStore) -> None:
    """A checkpoint's keyed writes read again are rebuilt whenever a stored row changed (a
    replacing special write keeps its key), and damaged bytes still fail after a clean read."""
    store: Checkpoints = sync_store.make(Checkpoints)
    thread = store.create_thread()
    cp = store.save(thread.id, {}, external_key="k")
    store.put_keyed_writes(thread.id, "k", "t", [("__interrupt__", "one")], special=SPECIAL)
    store.put_keyed_writes(thread.id, "k", "u", [("out", 1)], special=SPECIAL)
    first = [(w.channel, w.value) for w in store.get(cp.id).pending_writes]
    assert first == [("__interrupt__", "one"), ("out", 1)]
    assert [(w.channel, w.value) for w in store.get(cp.id).pending_writes] == first
    store.put_keyed_writes(thread.id, "k", "t", [("__interrupt__", "two")], special=SPECIAL)
    assert [(w.channel, w.value) for w in store.get(cp.id).pending_writes] == [
        ("__interrupt__", "two"),
        ("out", 1),
    ]
    store.put_keyed_writes(thread.id, "k", "v", [("out", 2)], special=SPECIAL)
    assert [w.value for w in store.get(cp.id).pending_writes] == ["two", 1, 2]
    row = next(iter(sync_store.driver.scan(CKPT_WRITE_NS)))
    damaged = bytearray(row.value)
    damaged[-3] ^= 0x01
    sync_store.driver.put(CKPT_WRITE_NS, row.key, bytes(damaged))
    with pytest.raises(CorruptionError):
        store.get(cp.id)
