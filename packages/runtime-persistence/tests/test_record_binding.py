"""A record is bound to its place (issue 11, holes 1 and 2).

The attacks of the audit, on every driver: an intact record copied or swapped under another key
(by the store's own ``put``, as anyone who can write the store can) must raise CorruptionError
on every read, never come back as another record's value; with a keyring, a plaintext record
(whose checksum anyone can recompute) must be refused. Stores written before binding existed
(envelope format 1) stay readable."""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
import pytest
from runtime_core import CorruptionError, Driver, ValidationError
from runtime_persistence import (
    Artifacts,
    Checkpoints,
    EnvelopeSerializer,
    Keyring,
    Leases,
    Sessions,
    Tasks,
    open_store,
)
from runtime_persistence.artifact._records import ARTIFACT_NS
from runtime_persistence.checkpoint._records import (
    CKPT_NS,
    HEAD_NS,
    THREAD_NS,
    Record,
    ThreadRecord,
    slot_key,
)
from runtime_persistence.session._records import SESSION_NS, TASK_NS
from runtime_persistence.storage._lease_record import LEASE_NS
from runtime_persistence.storage.serialization import dumps, loads
from runtime_persistence.testing import TestStore, store_fixture

store = store_fixture(modes=("sync", "async"))
FORMAT1_STORE = Path(__file__).parent / "data" / "format1-store.sqlite"


def _keyring() -> Keyring:
    return Keyring({"k1": b"\x01" * 32})


def _swap(driver: Driver, namespace: str, first: str, second: str) -> None:
    a, b = driver.get(namespace, first), driver.get(namespace, second)
    assert a is not None and b is not None
    driver.put(namespace, first, b.value)
    driver.put(namespace, second, a.value)


def _copy(driver: Driver, namespace: str, source: str, target: str) -> None:
    found = driver.get(namespace, source)
    assert found is not None
    driver.put(namespace, target, found.value)


# hole 2: misplaced records ---------------------------------------------------------------------
def test_swapping_two_threads_checkpoint_rows_on_an_encrypted_store_is_corruption(store: TestStore) -> None:
    ser = EnvelopeSerializer(keyring=_keyring())
    cps: Checkpoints = store.make(Checkpoints, serializer=ser)
    a, b = cps.create_thread("a"), cps.create_thread("b")
    cps.save(a.id, {"messages": ["alice's secret"]})
    b_head = cps.save(b.id, {"messages": ["bob's secret"]})
    _swap(store.driver, CKPT_NS, slot_key(a.id, 0), slot_key(b.id, 0))
    # fresh stores: no cache from the writes
    with pytest.raises(CorruptionError):
        store.make(Checkpoints, serializer=ser).list(a.id)
    with pytest.raises(CorruptionError):
        list(store.make(Checkpoints, serializer=ser).history(b_head.id))


def test_a_checkpoint_copied_within_its_thread_does_not_reorder_list_or_history(store: TestStore) -> None:
    cps: Checkpoints = store.make(Checkpoints)
    t = cps.create_thread()
    saved = [cps.save(t.id, {"n": n}) for n in range(3)]
    _swap(store.driver, CKPT_NS, slot_key(t.id, 1), slot_key(t.id, 2))
    with pytest.raises(CorruptionError):
        store.make(Checkpoints).list(t.id)
    with pytest.raises(CorruptionError):
        list(store.make(Checkpoints).history(saved[2].id))


def test_latest_never_returns_another_threads_head(store: TestStore) -> None:
    cps: Checkpoints = store.make(Checkpoints)
    a, b = cps.create_thread("a"), cps.create_thread("b")
    cps.save(a.id, {"who": "a"})
    cps.save(b.id, {"who": "b"})
    _copy(store.driver, CKPT_NS, slot_key(b.id, 0), slot_key(a.id, 0))
    with pytest.raises(CorruptionError):
        store.make(Checkpoints).latest(a.id)
    # nor another thread's head key
    cps.save(b.id, {"who": "b2"})
    _copy(store.driver, HEAD_NS, b.id, a.id)
    with pytest.raises(CorruptionError):
        store.make(Checkpoints).latest(a.id)


def test_a_thread_record_copied_under_another_id_is_corruption(store: TestStore) -> None:
    cps: Checkpoints = store.make(Checkpoints)
    a, b = cps.create_thread("a"), cps.create_thread("b")
    _copy(store.driver, THREAD_NS, b.id, a.id)
    fresh: Checkpoints = store.make(Checkpoints)
    with pytest.raises(CorruptionError):
        fresh.get_thread(a.id)


def test_an_artifact_version_copied_over_another_is_corruption(store: TestStore) -> None:
    arts: Artifacts = store.make(Artifacts)
    arts.put("s", "k", b"version zero")
    arts.put("s", "k", b"version one")
    keys = [e.key for e in store.driver.scan(ARTIFACT_NS)]
    assert len(keys) == 2
    _copy(store.driver, ARTIFACT_NS, keys[1], keys[0])
    fresh: Artifacts = store.make(Artifacts)
    with pytest.raises(CorruptionError):
        fresh.get("s", "k", 0)


def test_session_and_lease_records_copied_under_another_id_are_corruption(store: TestStore) -> None:
    sessions: Sessions = store.make(Sessions)
    one, two = sessions.open("one"), sessions.open("two")
    _copy(store.driver, SESSION_NS, two.id, one.id)
    with pytest.raises(CorruptionError):
        sessions.get(one.id)
    cps: Checkpoints = store.make(Checkpoints)
    a, b = cps.create_thread(), cps.create_thread()
    leases: Leases = store.make(Leases)
    from datetime import timedelta

    leases.acquire(b.id, "run-b", timedelta(minutes=5))
    _copy(store.driver, LEASE_NS, b.id, a.id)
    with pytest.raises(CorruptionError):
        leases.current(a.id)


def test_a_bound_record_fails_under_any_other_place_and_as_an_unbound_one() -> None:
    data = dumps({"v": 1}, at=("ns", "key"))
    assert loads(data, at=("ns", "key")) == {"v": 1}
    for other in [("ns", "key2"), ("ns2", "key"), ("n", "skey"), ("nsk", "ey")]:
        with pytest.raises(CorruptionError, match="copied or moved"):
            loads(data, at=other)
    with pytest.raises(CorruptionError, match="read without"):
        loads(data)


# hole 1: plaintext under a keyring -------------------------------------------------------------
def test_a_plaintext_record_is_refused_when_a_keyring_is_configured(store: TestStore) -> None:
    ser = EnvelopeSerializer(keyring=_keyring())
    cps: Checkpoints = store.make(Checkpoints, serializer=ser)
    t = cps.create_thread("victim")
    cps.save(t.id, {"messages": ["real"]})
    cp = cps.latest(t.id)
    # what anyone who can write the store can make without the key: plaintext records at the
    # right places, checksums computed (the thread renamed, the checkpoint's label changed)
    stored = store.driver.get(CKPT_NS, slot_key(t.id, 0))
    assert stored is not None
    rec = ser.loads(stored.value, Record, at=(CKPT_NS, slot_key(t.id, 0)))
    forged = msgspec.structs.replace(rec, label="injected")
    store.driver.put(CKPT_NS, slot_key(t.id, 0), dumps(forged, at=(CKPT_NS, slot_key(t.id, 0))))
    trec = ThreadRecord(t.id, "injected", {}, None, None, t.created_at, t.updated_at)
    store.driver.put(THREAD_NS, t.id, dumps(trec, at=(THREAD_NS, t.id)))
    fresh: Checkpoints = store.make(Checkpoints, serializer=ser)
    with pytest.raises(CorruptionError, match="not encrypted"):
        fresh.get_thread(t.id)
    with pytest.raises(CorruptionError, match="not encrypted"):
        fresh.get(cp.id)
    # they are well-formed: a serializer without a keyring reads them
    found = store.driver.get(CKPT_NS, slot_key(t.id, 0))
    assert found is not None
    assert loads(found.value, Record, at=(CKPT_NS, slot_key(t.id, 0))).label == "injected"


def test_plaintext_and_unbound_records_are_refused_under_a_keyring_except_by_the_migration_switch() -> None:
    ring = _keyring()
    strict = EnvelopeSerializer(keyring=ring)
    migrating = EnvelopeSerializer(keyring=ring, accept_plaintext=True)
    plain_bound = dumps({"a": 1}, at=("ns", "k"))
    unbound = EnvelopeSerializer(keyring=ring).dumps({"a": 1})  # format 1, encrypted
    for data in (plain_bound, dumps({"a": 1})):
        with pytest.raises(CorruptionError, match="not encrypted"):
            strict.loads(data, at=("ns", "k"))
        assert migrating.loads(data, at=("ns", "k")) == {"a": 1}
    with pytest.raises(CorruptionError, match="predates binding"):
        strict.loads(unbound, at=("ns", "k"))
    assert migrating.loads(unbound, at=("ns", "k")) == {"a": 1}
    # a blob: bound by the digest its (authenticated) record names
    assert strict.loads(dumps([1, 2]), content_addressed=True) == [1, 2]
    assert strict.loads(unbound, content_addressed=True) == {"a": 1}


def test_reseal_rewrites_bound_and_encrypted_and_leaves_done_records_alone() -> None:
    ring = _keyring()
    migrating = EnvelopeSerializer(keyring=ring, accept_plaintext=True)
    strict = EnvelopeSerializer(keyring=ring)
    old = dumps({"a": [1, 2, 3]})  # format 1, plaintext, as Keepup wrote before binding
    new = migrating.reseal(old, at=("ns", "k"))
    assert new is not None
    assert strict.loads(new, at=("ns", "k")) == {"a": [1, 2, 3]}
    assert migrating.reseal(new, at=("ns", "k")) is None
    with pytest.raises(CorruptionError):
        strict.loads(new, at=("ns", "other"))
    ring.add("k2", b"\x02" * 32)  # rotation: records under k1 are rewritten under k2
    rotated = migrating.reseal(new, at=("ns", "k"))
    assert rotated is not None and b"k2" in rotated[:16]
    with pytest.raises(ValidationError):
        EnvelopeSerializer().reseal(old, at=("ns", "k"))


# old stores -------------------------------------------------------------------------------------
@pytest.fixture
def old_store(tmp_path: Path) -> Driver:
    path = tmp_path / "old.sqlite"
    shutil.copy(FORMAT1_STORE, path)
    driver = open_store(f"sqlite:///{path}")
    yield driver  # type: ignore[misc]
    driver.close()


def test_a_store_written_before_binding_is_still_read_and_written(old_store: Driver) -> None:
    versions = {e.value[2] for ns in (THREAD_NS, CKPT_NS, HEAD_NS) for e in old_store.scan(ns)}
    assert versions == {1}, "the fixture must hold format-1 (unbound) records"
    cps = Checkpoints(old_store)
    threads = {t.name: t for t in cps.list_threads()}
    assert set(threads) == {"old thread", "other"}
    old = threads["old thread"]
    history = cps.list(old.id)
    assert [c.state["n"] for c in history] == [2, 1, 0]
    assert history[0].state["messages"][2999] == "m2999"
    assert history[1].state["big"] == "x" * 5000 and history[1].label == "two"
    assert [w.value for w in history[0].pending_writes] == ["pending"]
    new = cps.save(old.id, {"n": 3})
    assert cps.latest(old.id).id == new.id
    assert [c.state["n"] for c in cps.list(old.id)] == [3, 2, 1, 0]
    arts = Artifacts(old_store)
    assert arts.get("scope", "report.txt", 0)[1] == b"version zero"
    assert arts.get("scope", "report.txt")[1] == b"version one"
    assert [s.name for s in Sessions(old_store).list()] == ["old session"]
    tasks = Tasks(old_store)
    (task_id,) = [e.key for e in old_store.scan(TASK_NS)]
    assert tasks.get(task_id).title == "old task"
    assert [line.message for line in tasks.logs(task_id)] == ["a line"]
    assert Leases(old_store).current(threads["other"].id) is not None


def test_an_old_unbound_record_moved_under_another_key_is_caught_by_its_own_ids(old_store: Driver) -> None:
    cps = Checkpoints(old_store)
    threads = {t.name: t for t in cps.list_threads()}
    a, b = threads["old thread"].id, threads["other"].id
    _swap(old_store, CKPT_NS, slot_key(a, 0), slot_key(b, 0))
    _copy(old_store, THREAD_NS, b, a)
    fresh = Checkpoints(old_store)
    with pytest.raises(CorruptionError, match="belongs at"):
        fresh.list(b)
    with pytest.raises(CorruptionError, match="belongs at"):
        fresh.get_thread(a)
    arts = Artifacts(old_store)
    keys = [e.key for e in old_store.scan(ARTIFACT_NS)]
    _copy(old_store, ARTIFACT_NS, keys[1], keys[0])
    with pytest.raises(CorruptionError, match="belongs at"):
        arts.get("scope", "report.txt", 0)


def test_an_old_store_under_a_keyring_is_refused_until_encrypted(old_store: Driver) -> None:
    cps = Checkpoints(old_store, serializer=EnvelopeSerializer(keyring=_keyring()))
    with pytest.raises(CorruptionError, match="keepup store encrypt"):
        cps.list_threads()
