"""The save path's shortcuts write exactly the bytes the general path writes: a state that passed
``check_plain`` is serialized from its plain MessagePack encoding without a second walk, and
``check_plain`` itself loops over exact container types before falling back to the general check."""

from __future__ import annotations

import os
import random
import secrets
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from runtime_core import ConflictError, ManualClock, Put, ValidationError
from runtime_core._validation import MAX_METADATA_DEPTH, _check_plain_any, check_plain
from runtime_persistence import Checkpoints
from runtime_persistence.checkpoint._state import ChannelCodec, dumps_checked
from runtime_persistence.storage.drivers._common import GuardedPut
from runtime_persistence.storage.serialization import EnvelopeSerializer
from runtime_persistence.storage.stores import open_store

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _messages(n: int, size: int = 1000) -> list[dict[str, Any]]:
    return [{"role": "user" if i % 2 else "assistant", "content": f"{i}:" + "x" * size} for i in range(n)]


STATES = [
    {"step": 3, "messages": _messages(10)},  # one blob
    {"messages": _messages(60)},  # over 16 KB: cut into chunks
    {"messages": _messages(40, 3000), "n": 1.5},  # chunks of 16+ items and of fewer
    {"items": [[i, {"k": [i] * 20}] for i in range(300)]},  # arrays of 16 items and more
    {"blob": b"\x00" * 5000, "when": NOW, "uuid": UUID(int=7), "tuple": tuple(range(200))},
]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("serializer", [EnvelopeSerializer(), EnvelopeSerializer(compression="zstd")])
def test_a_checked_state_encodes_to_the_same_refs_and_blobs_as_the_general_path(
    state: dict[str, Any], serializer: EnvelopeSerializer
) -> None:
    check_plain(state, "state")
    plain = ChannelCodec(1 << 20, serializer, ManualClock(NOW)).encode(state)
    fast = ChannelCodec(1 << 20, serializer, ManualClock(NOW)).encode(state, checked=True)
    assert fast.refs == plain.refs
    assert fast.kv_puts == plain.kv_puts
    assert fast.area_blobs == plain.area_blobs


def test_a_checked_state_grown_at_its_end_encodes_like_the_general_path() -> None:
    serializer = EnvelopeSerializer()
    codecs = [ChannelCodec(1 << 20, serializer, ManualClock(NOW)) for _ in range(2)]
    parents: list[set[bytes]] = [set(), set()]
    for turn in range(1, 40):
        state = {"messages": _messages(turn * 3, 700)}
        out = [codecs[0].encode(state, parents[0]), codecs[1].encode(state, parents[1], checked=True)]
        assert out[1].refs == out[0].refs
        assert out[1].kv_puts == out[0].kv_puts
        for k, encoded in enumerate(out):
            parents[k] = {ref for r in encoded.refs.values() for ref in r.blobs}


@pytest.mark.parametrize("strict_keys", [False, True])
@pytest.mark.parametrize("codec", ["msgpack", "json"])
def test_dumps_checked_writes_the_bytes_dumps_writes(codec: str, strict_keys: bool) -> None:
    serializer = EnvelopeSerializer(codec=codec, strict_keys=strict_keys)  # type: ignore[arg-type]
    value = {"a": [1, 2.5, "é", None, True], "b": {"c": "d" * 300}}
    at = ("ns", "key")
    expected = serializer.dumps(value, at=at)
    assert dumps_checked(serializer, value, at=at) == expected
    assert serializer.dumps_checked(value, at=at, payload=serializer._msgpack.encode(value)) == expected


def test_dumps_checked_still_refuses_reserved_keys_in_strict_mode() -> None:
    serializer = EnvelopeSerializer(strict_keys=True)
    value = {"__reduce__": [1]}
    with pytest.raises(ValidationError):
        serializer.dumps(value)
    with pytest.raises(ValidationError):
        dumps_checked(serializer, value)


class _Str(str):
    pass


LEAVES = [None, True, 3, 10**30, 2.5, float("nan"), "abc", "é", "\ud800", "a\x00", b"xy", NOW, UUID(int=5)]
LEAVES += [_Str("sub"), object()]


def _random_value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth > 20 or roll < 0.4:
        return rng.choice(LEAVES)
    if roll < 0.65:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if roll < 0.75:
        return tuple(_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3)))
    if roll < 0.95:
        return {
            (rng.choice(["a", "b", "c"]) if rng.random() < 0.97 else 5): _random_value(rng, depth + 1)
            for _ in range(rng.randint(0, 3))
        }
    return OrderedDict(a=_random_value(rng, depth + 1))


def _nested(levels: int, rng: random.Random) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value] if rng.random() < 0.5 else {"k": value}
    return value


def _outcome(check: Any, value: Any, depth: int, json_only: bool) -> tuple[Any, ...]:
    try:
        return ("ok", check(value, "x", depth, json_only=json_only))
    except ValidationError:
        return ("refused",)


def test_check_plain_agrees_with_the_general_recursive_check() -> None:
    rng = random.Random(12)
    for i in range(4000):
        value = _random_value(rng, 0) if i % 3 else _nested(rng.randint(12, 20), rng)
        for json_only in (False, True):
            for depth in (0, 3):
                assert _outcome(check_plain, value, depth, json_only) == _outcome(
                    _check_plain_any, value, depth, json_only
                ), repr(value)[:200]


def test_check_plain_refuses_one_level_past_the_limit_and_not_at_it() -> None:
    rng = random.Random(1)
    for levels in range(MAX_METADATA_DEPTH - 1, MAX_METADATA_DEPTH + 3):
        value = _nested(levels, rng)
        if levels <= MAX_METADATA_DEPTH:
            assert check_plain(value, "x") > 0
        else:
            with pytest.raises(ValidationError, match="nested deeper"):
                check_plain(value, "x")


# --- a save extends the head its object committed last without reading it ----------------------
def _sqlite(tmp_path: Path) -> Any:
    return open_store(f"sqlite:///{tmp_path / 'k.db'}")


@contextmanager
def _postgres() -> Iterator[Any]:
    url = os.environ.get("KEEPUP_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("KEEPUP_TEST_POSTGRES_URL is not set")
    store = open_store(f"{url}?prefix=ksp{secrets.token_hex(4)}_")
    try:
        yield store
    finally:
        store.destroy()
        store.close()


@contextmanager
def _store(kind: str, tmp_path: Path) -> Iterator[Any]:
    if kind == "postgres":
        with _postgres() as store:
            yield store
    else:
        store = _sqlite(tmp_path)
        try:
            yield store
        finally:
            store.close()


DRIVERS = ["sqlite", "postgres"]


@pytest.mark.parametrize("kind", DRIVERS)
@pytest.mark.parametrize("others", [0, 40])  # postgres: one fused statement, or a transaction
def test_a_guarded_put_fails_when_the_key_was_written_again_up_to_the_same_version(
    kind: str, others: int, tmp_path: Path
) -> None:
    with _store(kind, tmp_path) as store:
        assert store.guarded_cas is True
        extra = [Put("ns", f"other-{i}", b"x") for i in range(others)]
        version = store.put("ns", "head", b"first")
        assert store.delete("ns", "head")
        assert store.put("ns", "head", b"second", if_absent=True) == version  # versions start over
        with pytest.raises(ConflictError):
            store.batch([*extra, GuardedPut("ns", "head", b"third", if_version=version, expect=b"first")])
        assert store.get("ns", "head").value == b"second"
        assert store.get("ns", "other-0") is None
        done = store.batch([*extra, GuardedPut("ns", "head", b"third", if_version=version, expect=b"second")])
        assert done[-1] == version + 1
        assert store.get("ns", "head").value == b"third"


@pytest.mark.parametrize("kind", DRIVERS)
def test_a_save_never_extends_a_head_deleted_and_written_again_by_another_writer(
    kind: str, tmp_path: Path
) -> None:
    with _store(kind, tmp_path) as store:
        ours, theirs = Checkpoints(store), Checkpoints(store)
        thread = ours.create_thread("t").id
        first = ours.save(thread, {"n": 1})  # remembered by ``ours``: head at version 1
        theirs.delete_thread(thread)
        theirs.create_thread("t", thread_id=thread)
        other = theirs.save(thread, {"n": 2})  # the head key again, at version 1
        saved = ours.save(thread, {"n": 3})
        assert saved.parent_id == other.id != first.id
        assert [c.id for c in theirs.list(thread)] == [saved.id, other.id]
        with pytest.raises(ConflictError):
            ours.save(thread, {"n": 4}, parent_id=other.id)


@pytest.mark.parametrize("kind", DRIVERS)
def test_a_save_after_another_writer_moved_the_head_extends_the_new_head(kind: str, tmp_path: Path) -> None:
    with _store(kind, tmp_path) as store:
        ours, theirs = Checkpoints(store), Checkpoints(store)
        thread = ours.create_thread("t").id
        first = ours.save(thread, {"n": 1})
        moved = theirs.save(thread, {"n": 2})
        with pytest.raises(ConflictError):
            ours.save(thread, {"n": 3}, parent_id=first.id)
        saved = ours.save(thread, {"n": 3})
        assert (saved.parent_id, saved.step) == (moved.id, 2)
        again = ours.save(thread, {"n": 4}, parent_id=saved.id)
        assert (again.parent_id, again.step) == (saved.id, 3)
