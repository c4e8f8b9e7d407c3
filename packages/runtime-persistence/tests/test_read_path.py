"""The read path's shortcuts return exactly what the general path returns, and drop no check:
public checkpoints are assembled from slot setters in field order, blob values are cached as the
payload the serializer just checked, and the decoded-record cache remembers only values that
passed the place check."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from runtime_core import (
    ArtifactRef,
    Checkpoint,
    CheckpointSource,
    CorruptionError,
    ManualClock,
    PendingWrite,
    ValidationError,
    WorkspaceRef,
    new_id,
)
from runtime_persistence import Checkpoints
from runtime_persistence.checkpoint._records import CKPT_NS, Record
from runtime_persistence.checkpoint._shared import DecodedCache, _slot_setters, check_place, revalidate
from runtime_persistence.checkpoint._state import ChannelCodec
from runtime_persistence.storage.serialization import EnvelopeSerializer
from runtime_persistence.storage.stores import open_store

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

VALUES: list[Any] = [
    [{"role": "user", "content": "x" * 3000}, {"role": "assistant", "content": "é" * 500}],
    {"when": NOW, "uuid": UUID(int=7), "blob": b"\x00\xff" * 300, "n": [1.5, -2, None, True]},
    "a string of some length " * 40,
]


def _serializers() -> list[EnvelopeSerializer]:
    out = [EnvelopeSerializer(), EnvelopeSerializer(codec="json")]
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return out
    return [*out, EnvelopeSerializer(compression="zstd")]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("serializer", _serializers(), ids=lambda s: f"{s._codec_id}-{s._zstd_level}")
def test_loads_plain_returns_the_value_and_its_checked_messagepack_payload(
    value: Any, serializer: EnvelopeSerializer
) -> None:
    import msgspec

    envelope = serializer.dumps(value)
    got, plain = serializer.loads_plain(envelope)
    assert got == serializer.loads(envelope)
    if serializer._codec_id == 2:  # JSON: no MessagePack payload to hand out
        assert plain is None
    else:
        assert plain is not None
        assert msgspec.msgpack.decode(plain) == got
    damaged = bytearray(envelope)
    damaged[len(damaged) // 2] ^= 0x40
    with pytest.raises(CorruptionError):
        serializer.loads_plain(bytes(damaged))


@pytest.mark.parametrize("value", VALUES)
def test_a_blob_value_read_twice_is_the_same_value_and_a_fresh_copy(value: Any) -> None:
    serializer = EnvelopeSerializer()
    codec = ChannelCodec(1 << 20, serializer, ManualClock(NOW))
    envelope = serializer.dumps(value)
    ref = b"\x01" + b"\x07" * 32
    first = codec.verified(ref, memoryview(envelope))
    hit, second = codec.cached(ref)
    assert hit
    assert first == second == serializer.loads(envelope)
    assert second is not first


def test_the_decoded_cache_never_remembers_a_record_that_failed_its_place_check() -> None:
    serializer = EnvelopeSerializer()
    store = open_store("memory://")
    cps = Checkpoints(store, serializer=serializer)
    thread = cps.create_thread("t").id
    cps.save(thread, {"n": 1})
    cps.save(thread, {"n": 2})
    rows = list(store.scan(CKPT_NS, prefix=f"{thread}/"))
    first, second = rows[0], rows[1]
    # the first record's bytes, bound to the second record's place (an attacker who can
    # recompute checksums): its own ids name the first slot
    rec = serializer.loads(first.value, Record, at=(CKPT_NS, first.key))
    moved = serializer.dumps(rec, at=(CKPT_NS, second.key))
    cache = DecodedCache(serializer)
    for _ in range(2):  # the second time would be a cache hit if the first had been remembered
        with pytest.raises(CorruptionError):
            cache.load(moved, Record, (CKPT_NS, second.key), check_place)
    good = cache.load(second.value, Record, (CKPT_NS, second.key), check_place)
    assert cache.load(second.value, Record, (CKPT_NS, second.key), check_place) is good


def test_the_slot_setters_refuse_a_class_whose_fields_are_not_the_expected_ones() -> None:
    names = ("checkpoint_id", "task_id", "channel", "value", "created_at", "task_path", "index")
    assert len(_slot_setters(PendingWrite, names)) == len(names)
    swapped = ("task_id", "checkpoint_id", *names[2:])
    with pytest.raises(RuntimeError):
        _slot_setters(PendingWrite, swapped)


def test_a_read_checkpoint_has_every_field_it_was_saved_with() -> None:
    store = open_store("memory://")
    cps = Checkpoints(store, clock=ManualClock(NOW))
    thread = cps.create_thread("t").id
    parent = cps.save(thread, {"n": 0})
    saved = cps.save(
        thread,
        {"messages": VALUES[0], "n": 1},
        parent_id=parent.id,
        label="the label",
        metadata={"step": 1, "tags": ["a", "b"]},
        workspace=WorkspaceRef("/ws", "a" * 40),
        artifacts=(ArtifactRef("scope", "key.txt", 3),),
        source=CheckpointSource.UPDATE,
        step=7,
        external_key="ext-1",
    )
    cps.put_writes(saved.id, "task-1", {"out": {"v": 1}, "err": None})
    read = Checkpoints(store).get(saved.id)
    assert read == revalidate(read)  # every field has a value that validates in its place
    for field in (
        "id",
        "thread_id",
        "parent_id",
        "step",
        "source",
        "created_at",
        "state",
        "label",
        "metadata",
    ):
        assert getattr(read, field) == getattr(saved, field), field
    assert (read.workspace, read.artifacts, read.namespace, read.external_key, read.branch) == (
        saved.workspace,
        saved.artifacts,
        saved.namespace,
        saved.external_key,
        saved.branch,
    )
    assert isinstance(read, Checkpoint)
    assert {(w.checkpoint_id, w.task_id, w.channel, repr(w.value)) for w in read.pending_writes} == {
        (saved.id, "task-1", "out", repr({"v": 1})),
        (saved.id, "task-1", "err", "None"),
    }
    assert new_id() != saved.id


def test_the_sqlite_get_takes_a_key_of_a_str_subclass_and_refuses_a_bad_key(tmp_path: Any) -> None:
    """The get's one-encode key check is a shortcut for plain str keys; anything else goes to
    the full key check, which decides (a valid str subclass reads as its text)."""

    class Key(str):
        pass

    store = open_store(f"sqlite:///{tmp_path / 'k.db'}")
    try:
        store.put("ns", "abc", b"value")
        entry = store.get("ns", Key("abc"))
        assert entry is not None and entry.value == b"value"
        for bad in ["", "a\x00b", "\udc80"]:
            with pytest.raises(ValidationError):
                store.get("ns", bad)
    finally:
        store.close()
