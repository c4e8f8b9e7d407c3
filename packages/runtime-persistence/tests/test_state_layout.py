"""Lists stored in pieces (``checkpoint/_layout.py``): an append writes about the appended bytes,
every checkpoint reads back exactly, writers without the parent's layout still share its sealed
chunks, and records written with the fixed 16-item chunks of earlier versions still read."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import pytest
from runtime_core import ManualClock, Put, utc_now
from runtime_persistence import Checkpoints
from runtime_persistence.checkpoint._layout import SEAL_BYTES
from runtime_persistence.checkpoint._state import (
    BLOB,
    BLOB_NS,
    CHUNK_ITEMS,
    CHUNKED,
    INLINE,
    LOC_AREA,
    LOC_KV,
    ChannelCodec,
    ChannelRef,
    EncodedState,
    _small,
    copy_plain,
)
from runtime_persistence.storage.drivers.memory import MemoryDriver
from runtime_persistence.storage.serialization import EnvelopeSerializer
from runtime_persistence.testing import TestStore, store_fixture

layout_store = store_fixture(modes=("sync", "async"))


def _message(i: int, size: int = 1000) -> dict[str, Any]:
    return {"role": "user" if i % 2 else "assistant", "content": f"{i}:" + chr(97 + i % 26) * size}


def _blob_bytes(driver: Any) -> dict[str, int]:
    return {e.key: len(e.value) for e in driver.scan(BLOB_NS)}


def _item_bytes(item: Any) -> int:
    import msgspec

    return len(msgspec.msgpack.encode(item))


def test_an_append_writes_about_the_appended_bytes() -> None:
    """Each save appends one ~1 KB message; the blobs written per appended byte stay under 2
    (each item is written once in its own piece and once more when its chunk is sealed), where
    fixed 16-item chunks rewrote the last chunk: about 8 bytes per appended byte."""
    driver = MemoryDriver()
    cps = Checkpoints(driver)
    t = cps.create_thread()
    messages: list[dict[str, Any]] = []
    appended = 0
    before = _blob_bytes(driver)
    for i in range(120):
        messages.append(_message(i))
        appended += _item_bytes(messages[-1])
        cps.save(t.id, {"messages": list(messages), "step": i})
        now = _blob_bytes(driver)
        new = sum(size for key, size in now.items() if key not in before)
        # one save writes its new piece, and at most one sealed chunk on top
        assert new <= _item_bytes(messages[-1]) + SEAL_BYTES + 1024 + 100, (i, new)
        before = now
    written = sum(before.values())
    assert written / appended < 2.0, written / appended
    assert Checkpoints(driver).latest(t.id).state["messages"] == messages  # type: ignore[union-attr]


def test_every_checkpoint_of_a_list_reads_back_exactly(layout_store: TestStore) -> None:
    """Appends of one item, of many, of one large item, an edit in the middle, a shrink and a
    value that is equal in Python but not in type (1 against True) all read back as saved."""
    cps = layout_store.make(Checkpoints)
    t = cps.create_thread()
    items: list[Any] = [_message(i, 700) for i in range(30)]
    states = []

    def save(value: list[Any]) -> None:
        cp = cps.save(t.id, {"items": list(value)})
        states.append((cp.id, copy_plain(value)))

    save(items)
    items.append(_message(30, 700))
    save(items)
    items.extend(_message(i, 300) for i in range(31, 60))  # many at once, across a seal
    save(items)
    items.append({"blob": "B" * (3 * SEAL_BYTES)})  # one item larger than a chunk
    save(items)
    items.append(1)
    save(items)
    items[-1] = True  # == 1 in Python, a different stored value
    save(items)
    items[5] = {"role": "user", "content": "edited"}  # not an append: cut afresh
    save(items)
    items.append(2.0)
    save(items)
    del items[40:]  # a shrink
    save(items)
    items.append([1, {"nested": [True, None, b"x" * 10]}])
    save(items)
    fresh = layout_store.make(Checkpoints)
    for cp_id, value in states:
        got = fresh.get(cp_id).state["items"]
        assert got == value
        assert [type(x) for x in got] == [type(x) for x in value]
    assert cps.get(states[5][0]).state["items"][-1] is True
    assert cps.get(states[4][0]).state["items"][-1] == 1
    assert cps.get(states[4][0]).state["items"][-1] is not True


def test_a_writer_without_the_parents_layout_shares_its_sealed_chunks() -> None:
    """Another process (here a second store object) appends to a long list: its sealed chunks
    are found among the parent's blobs by digest, so only the tail and the new item are written."""
    driver = MemoryDriver()
    t = Checkpoints(driver).create_thread()
    first = Checkpoints(driver)
    messages = [_message(i) for i in range(100)]
    first.save(t.id, {"messages": messages})
    for n in range(101, 104):
        messages.append(_message(n))
        first.save(t.id, {"messages": list(messages)})
    before = _blob_bytes(driver)
    messages.append(_message(200))
    Checkpoints(driver).save(t.id, {"messages": list(messages)})
    new = sum(size for key, size in _blob_bytes(driver).items() if key not in before)
    assert 0 < new < SEAL_BYTES + 2 * 1100, new
    assert Checkpoints(driver).latest(t.id).state["messages"] == messages  # type: ignore[union-attr]


def test_a_list_that_does_not_grow_writes_nothing_again() -> None:
    driver = MemoryDriver()
    cps = Checkpoints(driver)
    t = cps.create_thread()
    messages = [_message(i) for i in range(40)]
    for step in range(5):
        cps.save(t.id, {"messages": messages, "step": step})
        if step == 0:
            count = len(_blob_bytes(driver))
    assert len(_blob_bytes(driver)) == count


def test_gc_keeps_every_piece_of_a_live_list(layout_store: TestStore) -> None:
    clock = ManualClock(utc_now())
    cps = layout_store.make(Checkpoints, clock=clock)
    t = cps.create_thread()
    messages: list[dict[str, Any]] = []
    for i in range(40):
        messages.append(_message(i, 500))
        cps.save(t.id, {"messages": list(messages)})
    cps.prune(t.id, keep_last=1)
    clock.advance(timedelta(days=1))
    report = cps.gc(grace=timedelta(0))
    assert report.blobs_removed > 0  # pieces of pruned checkpoints only
    latest = layout_store.make(Checkpoints).latest(t.id)
    assert latest is not None and latest.state == {"messages": messages}


# --- records written by earlier versions: fixed chunks of CHUNK_ITEMS items -------------------
_STAMP_SIZE = 8


def _fixed_chunk_encode(
    self: ChannelCodec, state: Mapping[str, Any], known: Iterable[bytes] = (), *, checked: bool = False
) -> EncodedState:
    """The encoder of earlier versions (lists of more than CHUNK_ITEMS items cut by position);
    ``checked`` (a later speed-up that writes the same bytes) is ignored."""
    skip = set(known)
    stamp = int(self._clock.now().timestamp() * 1000).to_bytes(_STAMP_SIZE, "big")
    kv_puts: list[Put] = []
    area: list[bytes] = []
    refs: dict[str, ChannelRef] = {}

    def blob(envelope: bytes) -> bytes:
        digest = hashlib.sha256(envelope).digest()
        loc = LOC_KV if len(envelope) <= self._kv_max else LOC_AREA
        ref = bytes((loc,)) + digest
        if ref not in skip:
            skip.add(ref)
            if loc == LOC_KV:
                kv_puts.append(Put(BLOB_NS, digest.hex(), stamp + envelope))
            else:
                area.append(envelope)
        return ref

    for name, value in state.items():
        if isinstance(value, (list, tuple)) and len(value) > CHUNK_ITEMS:
            items = list(value)
            chunk_refs = [
                blob(self._serializer.dumps(items[i : i + CHUNK_ITEMS]))
                for i in range(0, len(items), CHUNK_ITEMS)
            ]
            refs[name] = ChannelRef(CHUNKED, None, chunk_refs, len(items))
        elif _small(value):
            refs[name] = ChannelRef(INLINE, copy_plain(value))
        else:
            refs[name] = ChannelRef(BLOB, None, [blob(self._serializer.dumps(value))])
    return EncodedState(refs, kv_puts, area)


def test_records_with_fixed_chunks_still_read_and_grow(
    layout_store: TestStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = [f"message {i} " + "w" * 40 for i in range(CHUNK_ITEMS * 3 + 5)]
    with monkeypatch.context() as patch:
        patch.setattr(ChannelCodec, "encode", _fixed_chunk_encode)
        old = layout_store.make(Checkpoints)
        t = old.create_thread()
        first = old.save(t.id, {"messages": messages[:-1]})
        second = old.save(t.id, {"messages": messages})
    rec = layout_store.make(Checkpoints)
    assert rec.get(first.id).state == {"messages": messages[:-1]}
    assert rec.get(second.id).state == {"messages": messages}
    grown = [*messages, *(f"new {i} " + "v" * 900 for i in range(30))]
    third = rec.save(t.id, {"messages": grown})
    fourth = rec.save(t.id, {"messages": [*grown, "last"]})
    fresh = layout_store.make(Checkpoints)
    assert fresh.get(third.id).state == {"messages": grown}
    assert fresh.get(fourth.id).state == {"messages": [*grown, "last"]}
    assert fresh.get(second.id).state == {"messages": messages}


class _CountingSerializer(EnvelopeSerializer):
    def __init__(self) -> None:
        super().__init__()
        self.dumped: list[Any] = []

    def dumps(self, value: Any, *, at: tuple[str, str] | None = None) -> bytes:
        self.dumped.append(value)
        return super().dumps(value, at=at)


def test_an_unchanged_value_is_not_serialized_or_hashed_again() -> None:
    """A large channel that did not change since the parent keeps the parent's blob without
    going through the serializer; one that changed only in type (1 against True) is stored anew."""
    ser = _CountingSerializer()
    driver = MemoryDriver()
    cps = Checkpoints(driver, serializer=ser)
    t = cps.create_thread()
    doc = {"text": "d" * 5000, "flag": 1}
    for step in range(4):
        cps.save(t.id, {"doc": dict(doc), "step": step})
    assert sum(1 for v in ser.dumped if v == doc) == 1
    cp = cps.save(t.id, {"doc": {**doc, "flag": True}, "step": 9})
    assert sum(1 for v in ser.dumped if v == doc) == 2  # True == 1 in Python: dumped again
    got = Checkpoints(driver).get(cp.id).state["doc"]["flag"]
    assert got is True


def test_the_store_remembers_only_the_newest_layout_of_a_growing_list() -> None:
    """Planted bug: a parent's layout stays remembered after its child extends it (memory grows
    with every save of a conversation instead of staying at one layout)."""
    cps = Checkpoints(MemoryDriver())
    t = cps.create_thread()
    messages: list[dict[str, Any]] = []
    for i in range(60):
        messages.append(_message(i, 400))
        cps.save(t.id, {"messages": list(messages), "step": i})
    assert len(cps._channels._layouts._items) == 1
