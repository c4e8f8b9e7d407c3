"""``ThreadLister``: the part of the checkpoint store that lists threads, alone (``keepup thread
list`` uses it so as not to import the rest of the store). It lists what :class:`Checkpoints`
lists, page by page and by metadata, and refuses what it refuses: a damaged record, or one
copied under another thread's key."""

from __future__ import annotations

import pytest
from runtime_core import CorruptionError
from runtime_persistence import Checkpoints, EnvelopeSerializer
from runtime_persistence.checkpoint._records import THREAD_NS
from runtime_persistence.checkpoint._sync.listing import ThreadLister
from runtime_persistence.testing import TestStore, store_fixture

store = store_fixture("sqlite", "file", "memory")


def _fill(cps: Checkpoints) -> list[str]:
    ids = []
    for i in range(7):
        t = cps.create_thread(f"t{i}", metadata={"team": "a" if i % 2 else "b"})
        ids.append(t.id)
        for step in range(i % 3):
            cp = cps.save(t.id, {"n": step})
        if i == 4:
            cps.fork(cp.id, name="fork of t4")
    return ids


def test_it_lists_what_the_checkpoint_store_lists(store: TestStore) -> None:
    cps = Checkpoints(store.driver)
    _fill(cps)
    lister = ThreadLister(store.driver, serializer=EnvelopeSerializer())
    everything = cps.list_threads(limit=100)
    assert len(everything) == 8 and any(t.head for t in everything)
    assert lister.list_threads(limit=100) == everything
    for limit in (0, 1, 3, 8):
        assert lister.list_threads(limit=limit) == cps.list_threads(limit=limit)
    before = everything[2].id
    assert lister.list_threads(limit=3, before=before) == cps.list_threads(limit=3, before=before)
    team = lister.list_threads(metadata={"team": "a"}, limit=2)
    assert team == cps.list_threads(metadata={"team": "a"}, limit=2) and len(team) == 2


def test_it_refuses_a_thread_record_copied_under_another_key(store: TestStore) -> None:
    cps = Checkpoints(store.driver)
    first = cps.create_thread("first")
    second = cps.create_thread("second")
    entry = store.driver.get(THREAD_NS, first.id)
    assert entry is not None
    store.driver.put(THREAD_NS, second.id, entry.value)
    with pytest.raises(CorruptionError):
        ThreadLister(store.driver).list_threads()


def test_it_refuses_a_damaged_thread_record(store: TestStore) -> None:
    cps = Checkpoints(store.driver)
    thread = cps.create_thread("damaged")
    entry = store.driver.get(THREAD_NS, thread.id)
    assert entry is not None
    flipped = bytearray(entry.value)
    flipped[len(flipped) // 2] ^= 0x01
    store.driver.put(THREAD_NS, thread.id, bytes(flipped))
    with pytest.raises(CorruptionError):
        ThreadLister(store.driver).list_threads()
