"""Storage by content: channels as digests, long lists in chunks, damage detected on read."""

from __future__ import annotations

from typing import Any

import pytest
from runtime_core import CorruptionError
from runtime_persistence import Checkpoints
from runtime_persistence.checkpoint._state import BLOB_NS, CHUNK_ITEMS, KV_BLOB_MAX
from runtime_persistence.storage.drivers.memory import MemoryDriver
from runtime_persistence.testing import TestStore, store_fixture

state_store = store_fixture(modes=("sync", "async"))


def _stored_bytes(driver: Any) -> int:
    total = sum(len(e.value) for ns in ("ckpt", "ckpt.blob", "ckpt.id") for e in driver.scan(ns))
    return total + sum(info.size for info in driver.list_blobs())


def _conversation(turns: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user" if i % 2 else "assistant", "content": f"{i}:" + "x" * 1000} for i in range(turns)
        ],
        "step": turns,
    }


def test_a_growing_conversation_is_not_stored_quadratically(state_store: TestStore) -> None:
    cps = state_store.make(Checkpoints)
    t = cps.create_thread()
    turns = 120
    for i in range(1, turns + 1):
        cps.save(t.id, _conversation(i))
    full = sum(len(cps._ser.dumps(_conversation(i))) for i in range(1, turns + 1))
    stored = _stored_bytes(state_store.driver)
    assert stored < 0.25 * full, (stored, full)
    latest = cps.latest(t.id)
    assert latest is not None and latest.state == _conversation(turns)


def test_an_append_writes_one_new_piece() -> None:
    driver = MemoryDriver()
    cps = Checkpoints(driver)
    t = cps.create_thread()
    cps.save(t.id, _conversation(CHUNK_ITEMS * 3 + 1))
    before = {e.key for e in driver.scan(BLOB_NS)}
    cps.save(t.id, _conversation(CHUNK_ITEMS * 3 + 2))
    new = {e.key for e in driver.scan(BLOB_NS)} - before
    assert len(new) == 1  # a piece holding the appended item; everything before it is shared


def test_unchanged_channels_are_shared_between_checkpoints() -> None:
    driver = MemoryDriver()
    cps = Checkpoints(driver)
    t = cps.create_thread()
    doc = {"text": "d" * 5000}
    cps.save(t.id, {"doc": doc, "n": 0})
    count = len(list(driver.scan(BLOB_NS)))
    for i in range(1, 10):
        cps.save(t.id, {"doc": doc, "n": i})
    assert len(list(driver.scan(BLOB_NS))) == count


def test_values_larger_than_the_kv_limit_go_to_the_blob_area(state_store: TestStore) -> None:
    cps = state_store.make(Checkpoints)
    t = cps.create_thread()
    big = "z" * (KV_BLOB_MAX + 10)
    cp = cps.save(t.id, {"big": big})
    assert any(True for _ in state_store.driver.list_blobs())
    assert state_store.make(Checkpoints).get(cp.id).state == {"big": big}


def test_a_damaged_blob_reads_as_corrupt_never_as_another_value(state_store: TestStore) -> None:
    cps = state_store.make(Checkpoints)
    t = cps.create_thread()
    cp = cps.save(t.id, {"doc": "q" * 3000})
    (entry,) = list(state_store.driver.scan(BLOB_NS))
    damaged = bytearray(entry.value)
    damaged[-20] ^= 0x01
    state_store.driver.put(BLOB_NS, entry.key, bytes(damaged))
    with pytest.raises(CorruptionError):
        state_store.make(Checkpoints).get(cp.id)


def test_a_missing_blob_reads_as_corrupt(state_store: TestStore) -> None:
    cps = state_store.make(Checkpoints)
    t = cps.create_thread()
    cp = cps.save(t.id, {"doc": "q" * 3000})
    (entry,) = list(state_store.driver.scan(BLOB_NS))
    state_store.driver.delete(BLOB_NS, entry.key)
    with pytest.raises(CorruptionError):
        state_store.make(Checkpoints).get(cp.id)


def test_a_damaged_record_reads_as_corrupt(state_store: TestStore) -> None:
    cps = state_store.make(Checkpoints)
    t = cps.create_thread()
    cp = cps.save(t.id, {"a": 1})
    (entry,) = list(state_store.driver.scan("ckpt"))
    state_store.driver.put("ckpt", entry.key, entry.value[:-3] + b"\x00\x00\x00")
    with pytest.raises(CorruptionError):
        state_store.make(Checkpoints).get(cp.id)
