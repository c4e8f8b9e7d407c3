"""Tests the audit of issue 11 found missing: a deliberate small bug in each of these places
passed the whole suite. Each test here failed on its planted bug (named in the test's
docstring) and passes on the real code."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from runtime_core import ConflictError, CorruptionError, Delete, ManualClock, Put, SystemClock, utc_now
from runtime_persistence import Checkpoints
from runtime_persistence.checkpoint._export_format import LEN, FrameWriter
from runtime_persistence.checkpoint._records import CKPT_NS, Record, slot_key
from runtime_persistence.checkpoint._shared import diff_states
from runtime_persistence.checkpoint._state import BLOB_NS, CHUNK_ITEMS, CHUNKED, KV_BLOB_MAX, ChannelRef
from runtime_persistence.checkpoint.export import export_threads, import_threads
from runtime_persistence.storage.drivers.memory import MemoryDriver
from runtime_persistence.storage.serialization import dumps, loads
from runtime_persistence.testing import TestStore, store_fixture

store = store_fixture()


def _blob_count(driver: Any) -> int:
    return len(list(driver.scan(BLOB_NS))) + len(list(driver.list_blobs()))


# gc ---------------------------------------------------------------------------------------------
def test_gc_keeps_unreferenced_blobs_until_the_whole_grace_period_has_passed(store: TestStore) -> None:
    """Planted bug: gc ignores its grace period (``cutoff = started``)."""
    clock = ManualClock(utc_now())
    cps = Checkpoints(store.driver, clock=clock)
    t = cps.create_thread()
    cps.save(t.id, {"doc": "a" * 3000})
    cps.save(t.id, {"doc": "b" * 3000, "big": "B" * (KV_BLOB_MAX + 1)})
    cps.save(t.id, {"doc": "c" * 3000})
    cps.prune(t.id, keep_last=1)
    assert _blob_count(store.driver) == 4
    clock.advance(timedelta(minutes=50))  # less than the grace period
    kept = cps.gc(grace=timedelta(hours=1))
    assert (kept.blobs_removed, kept.blobs_kept_young) == (0, 3)
    assert _blob_count(store.driver) == 4
    clock.advance(timedelta(minutes=20))  # now past it
    assert cps.gc(grace=timedelta(hours=1)).blobs_removed == 3
    assert _blob_count(store.driver) == 1


class _SaveDuringScan:
    """A driver that, when gc first scans the checkpoint id entries, lets another writer save."""

    def __init__(self, target: Any, during: Any) -> None:
        self._target = target
        self._during = during
        self.fired = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def scan(self, namespace: str, **kw: Any) -> Iterator[Any]:
        if namespace == "ckpt.id" and not self.fired:
            self.fired = True
            self._during()
        return self._target.scan(namespace, **kw)  # type: ignore[no-any-return]


def test_gc_takes_a_second_look_at_checkpoints_saved_during_its_scan(store: TestStore) -> None:
    """Planted bug: the second look (``# a second look at checkpoints published since ...``)
    is skipped. A checkpoint saved while gc scans reuses a blob that was unreferenced and old
    when the scan began; gc must not delete it."""
    big = "B" * (KV_BLOB_MAX + 1)  # a blob-area blob: re-putting it keeps its old creation time
    cps = Checkpoints(store.driver)
    old = cps.create_thread()
    cps.save(old.id, {"big": big})
    cps.delete_thread(old.id)  # the blob is now unreferenced
    late = cps.create_thread()
    saved: list[str] = []
    hooked = _SaveDuringScan(store.driver, lambda: saved.append(cps.save(late.id, {"big": big}).id))
    Checkpoints(hooked, clock=SystemClock()).gc(grace=timedelta(0))
    assert hooked.fired and saved
    fresh = Checkpoints(store.driver)
    latest = fresh.latest(late.id)
    assert latest is not None and latest.state["big"] == big


def test_a_gc_dry_run_deletes_no_blob_area_blob(store: TestStore) -> None:
    """Planted bug: the blob-area loop deletes even when ``dry_run`` is set."""
    cps = Checkpoints(store.driver)
    t = cps.create_thread()
    cps.save(t.id, {"big": "B" * (KV_BLOB_MAX + 1)})
    cps.save(t.id, {"big": "C" * (KV_BLOB_MAX + 1)})
    cps.prune(t.id, keep_last=1)
    area = {info.digest for info in store.driver.list_blobs()}
    assert len(area) == 2
    dry = cps.gc(grace=timedelta(0), dry_run=True)
    assert dry.dry_run and dry.blobs_removed == 1
    assert {info.digest for info in store.driver.list_blobs()} == area
    assert cps.gc(grace=timedelta(0)).blobs_removed == 1
    assert len(list(store.driver.list_blobs())) == 1


# import -----------------------------------------------------------------------------------------
def _frames(data: bytes) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    pos = 8
    while pos < len(data):
        (length,) = LEN.unpack_from(data, pos)
        frames.append(loads(data[pos + LEN.size : pos + LEN.size + length]))
        pos += LEN.size + length
    return frames


def _write(frames: list[dict[str, Any]], *, end: dict[str, Any] | None = None) -> bytes:
    """An export file of ``frames`` (the end frame recomputed, or ``end`` as given)."""
    out = FrameWriter()
    data = out.start()
    for frame in frames:
        if frame["k"] == "end":
            continue
        data += out.frame(frame["k"], **{k: v for k, v in frame.items() if k != "k"})
    if end is None:
        return data + out.end()
    envelope = dumps(end)
    return data + LEN.pack(len(envelope)) + envelope


def _exported() -> tuple[list[dict[str, Any]], str]:
    cps = Checkpoints(MemoryDriver())
    t = cps.create_thread("t")
    cps.save(t.id, {"doc": "a" * 3000, "n": 1})
    buf = io.BytesIO()
    export_threads(cps, buf)
    return _frames(buf.getvalue()), t.id


def test_import_refuses_a_blob_whose_bytes_do_not_match_its_digest() -> None:
    """Planted bug: import does not compare a blob frame's bytes with its digest. The blob here
    is a valid envelope of another value, and the file's checksums are recomputed, so only the
    digest check can notice."""
    frames, _ = _exported()
    (blob,) = [f for f in frames if f["k"] == "blob"]
    blob["data"] = dumps("z" * 3000)
    target = Checkpoints(MemoryDriver())
    with pytest.raises(CorruptionError, match="digest"):
        import_threads(target, io.BytesIO(_write(frames)))
    # a blob frame no checkpoint reads back while importing: only the import's own check sees it
    frames, _ = _exported()
    (blob,) = [f for f in frames if f["k"] == "blob"]
    extra = {"k": "blob", "ref": blob["ref"][:1] + bytes(32), "data": dumps("z" * 3000)}
    frames.insert(frames.index(blob), extra)
    target = Checkpoints(MemoryDriver())
    with pytest.raises(CorruptionError):
        import_threads(target, io.BytesIO(_write(frames)))
    assert list(target._driver.scan(BLOB_NS)) == []


def test_import_refuses_a_file_whose_end_checksum_does_not_match() -> None:
    """Planted bug: import does not verify the end frame's checksum. One checkpoint's metadata
    is changed (its frame re-encoded, well-formed); the end frame is the original one."""
    frames, _ = _exported()
    end = frames[-1]
    assert end["k"] == "end"
    (checkpoint,) = [f for f in frames if f["k"] == "checkpoint"]
    checkpoint["record"][9] = {"forged": True}  # Record.metadata
    target = Checkpoints(MemoryDriver())
    with pytest.raises(CorruptionError, match="end checksum"):
        import_threads(target, io.BytesIO(_write(frames, end=end)))


def test_an_untouched_export_imports_and_the_helpers_round_trip() -> None:
    frames, thread_id = _exported()
    target = Checkpoints(MemoryDriver())
    import_threads(target, io.BytesIO(_write(frames)))
    latest = target.latest(thread_id)
    assert latest is not None and latest.state == {"doc": "a" * 3000, "n": 1}


# chunked lists and blob digests on read ---------------------------------------------------------
def _rewrite_record(driver: Any, thread_id: str, seq: int, change: Any) -> None:
    key = slot_key(thread_id, seq)
    entry = driver.get(CKPT_NS, key)
    rec: Record = loads(entry.value, Record, at=(CKPT_NS, key))
    driver.put(CKPT_NS, key, dumps(change(rec), at=(CKPT_NS, key)))


def test_a_chunked_list_with_more_items_than_its_record_says_is_corruption(store: TestStore) -> None:
    """Planted bug: ``assemble`` does not compare the chunks' item count with the record's."""
    cps = Checkpoints(store.driver)
    t = cps.create_thread()
    cp = cps.save(t.id, {"messages": [f"m{i}" + "x" * 1000 for i in range(CHUNK_ITEMS * 3 + 5)]})

    def undercount(rec: Record) -> Record:
        ref = rec.channels["messages"]
        assert ref.kind == CHUNKED
        channels = {**rec.channels, "messages": ChannelRef(CHUNKED, None, ref.blobs, ref.count - 1)}
        return msgspec.structs.replace(rec, channels=channels)

    _rewrite_record(store.driver, t.id, 0, undercount)
    with pytest.raises(CorruptionError, match="items"):
        Checkpoints(store.driver).get(cp.id)


def test_a_kv_blob_is_checked_against_its_digest_on_every_read(store: TestStore) -> None:
    """Planted bug: ``kv_envelope`` skips its digest check. The stored blob is replaced by a
    valid envelope of another value (its own checksum is fine): only the digest tells."""
    cps = Checkpoints(store.driver)
    t = cps.create_thread()
    cp = cps.save(t.id, {"doc": "a" * 3000})
    (entry,) = list(store.driver.scan(BLOB_NS))
    stamp = entry.value[:8]
    store.driver.put(BLOB_NS, entry.key, stamp + dumps("b" * 3000))
    with pytest.raises(CorruptionError, match="digest"):
        Checkpoints(store.driver).get(cp.id)  # a fresh store: no blob cache


# diff ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("a", "b"), [(1, 1.0), (1, True), (1.0, True), (0, False), (0, 0.0), (0.0, False)])
def test_diff_tells_numbers_and_booleans_that_compare_equal_apart(a: Any, b: Any) -> None:
    """Planted bug: diff compares with ``==`` only (``1 == 1.0 == True`` in Python)."""
    for old, new in (({"x": a}, {"x": b}), ([a], [b]), ({"l": [{"v": a}]}, {"l": [{"v": b}]})):
        (entry,) = diff_states(old, new)
        assert entry.kind.value == "changed" and entry.old is a and entry.new is b
    assert diff_states({"x": a}, {"x": a}) == []


def test_checkpoint_diff_reports_a_number_that_became_a_boolean() -> None:
    cps = Checkpoints(MemoryDriver())
    t = cps.create_thread()
    first = cps.save(t.id, {"flag": 1, "ratio": 1})
    second = cps.save(t.id, {"flag": True, "ratio": 1.0})
    assert sorted(e.path for e in cps.diff(first.id, second.id)) == ["flag", "ratio"]


# batches ------------------------------------------------------------------------------------------
def test_a_failed_batch_condition_writes_nothing(store: TestStore) -> None:
    """Planted bug (file driver, whose batches are not atomic): conditions checked op by op while
    writing, so the ops before the failing one land. Here the failing condition comes last."""
    driver = store.driver
    driver.put("b", "taken", b"old")
    driver.put("b", "moving", b"v1")
    version = driver.get("b", "moving").version  # type: ignore[union-attr]
    for failing in (
        Put("b", "taken", b"new", if_absent=True),  # the commit point of every checkpoint save
        Put("b", "moving", b"v3", if_version=version + 1),
        Delete("b", "moving", if_version=version + 1),
    ):
        with pytest.raises(ConflictError):
            driver.batch([Put("b", "first", b"1"), Delete("b", "moving"), Put("b", "second", b"2"), failing])
        assert driver.get("b", "first") is None and driver.get("b", "second") is None
        assert driver.get("b", "taken").value == b"old"  # type: ignore[union-attr]
        assert driver.get("b", "moving").value == b"v1"  # type: ignore[union-attr]
