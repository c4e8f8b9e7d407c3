"""Export and import of threads: a lossless round trip between stores, and damage detected."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from runtime_core import ConflictError, CorruptionError
from runtime_persistence import Checkpoints
from runtime_persistence.checkpoint import AsyncCheckpoints
from runtime_persistence.checkpoint._state import KV_BLOB_MAX
from runtime_persistence.checkpoint.export import (
    ExportReport,
    export_threads,
    export_threads_async,
    import_threads,
    import_threads_async,
)
from runtime_persistence.storage.drivers.memory import MemoryDriver
from runtime_persistence.storage.threaded import AsyncThreadDriver
from runtime_persistence.testing import TestStore, store_fixture
from runtime_persistence.testing.blocking import blocking, unwrap

export_target = store_fixture(modes=("sync", "async"))
export_mode = store_fixture("memory", modes=("sync", "async"))


class _Io:
    """Stores, export and import in the mode of ``store``: the sync functions over Checkpoints, or
    the async ones over AsyncCheckpoints (run on the store's portal)."""

    def __init__(self, store: TestStore) -> None:
        self.store = store

    def fresh(self) -> Checkpoints:
        if not self.store.is_async:
            return Checkpoints(MemoryDriver())
        made: Checkpoints = blocking(AsyncCheckpoints(AsyncThreadDriver(MemoryDriver())), self.store.portal)
        return made

    def export(self, cps: Checkpoints, dest: Any, **options: Any) -> ExportReport:
        if not self.store.is_async:
            return export_threads(cps, dest, **options)
        assert self.store.portal is not None
        return self.store.portal.call(export_threads_async(unwrap(cps), dest, **options))

    def import_(self, cps: Checkpoints, src: Any, **options: Any) -> ExportReport:
        if not self.store.is_async:
            return import_threads(cps, src, **options)
        assert self.store.portal is not None
        return self.store.portal.call(import_threads_async(unwrap(cps), src, **options))


@pytest.fixture
def x(export_mode: TestStore) -> _Io:
    return _Io(export_mode)


def _populate(cps: Checkpoints) -> dict[str, Any]:
    t = cps.create_thread("main", metadata={"team": "x"})
    msgs: list[dict[str, Any]] = []
    ids = []
    for i in range(30):
        msgs.append(
            {
                "role": "user",
                "content": f"{i}" * 200,
                "at": datetime(2025, 1, 1, tzinfo=UTC),
                "raw": b"\x00\x01",
            }
        )
        ids.append(
            cps.save(t.id, {"messages": msgs, "n": i}, label="l5" if i == 5 else None, metadata={"i": i}).id
        )
    cps.put_writes(ids[-1], "task", {"result": {"ok": True}})
    cps.pin(ids[3])
    fork = cps.fork(ids[10], name="alt")
    cps.save(fork.id, {"messages": msgs[:11], "n": 99, "big": "B" * (KV_BLOB_MAX + 5)})
    cps.create_thread("empty")
    return {"main": t.id, "fork": fork.id, "ids": ids}


def _snapshot(cps: Checkpoints) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for thread in cps.list_threads(limit=100):
        cps_list = cps.list(thread.id, limit=1000)
        out[thread.id] = {
            "thread": (
                thread.name,
                thread.metadata,
                thread.parent_thread_id,
                thread.forked_from,
                thread.head,
            ),
            "checkpoints": [
                (c.id, c.parent_id, c.step, c.source, c.label, c.metadata, c.state, c.pending_writes)
                for c in cps_list
            ],
            "history": [c.id for c in cps.history(thread.head)] if thread.head else [],
        }
    return out


def test_export_import_round_trip_is_lossless(export_target: TestStore) -> None:
    x = _Io(export_target)
    source = x.fresh()
    made = _populate(source)
    buf = io.BytesIO()
    seen: list[tuple[int, int]] = []
    report = x.export(source, buf, progress=lambda done, total: seen.append((done, total)))
    assert report.threads == 3 and report.checkpoints == 32
    assert seen[-1] == (32, 32) and len(seen) > 30
    target = export_target.make(Checkpoints)
    imported = x.import_(target, io.BytesIO(buf.getvalue()))
    assert imported.checkpoints == 32 and imported.threads == 3
    assert _snapshot(target) == _snapshot(source)
    report = target.prune(made["main"], keep_last=1)
    assert report.protected[made["ids"][10]] == "fork source" and report.protected[made["ids"][3]] == "pinned"


def test_export_of_one_thread(tmp_path: Path, x: _Io) -> None:
    source = x.fresh()
    made = _populate(source)
    path = tmp_path / "one.keepup"
    report = x.export(source, path, thread_ids=[made["main"]])
    assert report.threads == 1 and report.checkpoints == 30
    target = x.fresh()
    x.import_(target, path)
    assert [t.id for t in target.list_threads()] == [made["main"]]
    assert target.get(made["ids"][7]).state == source.get(made["ids"][7]).state


def test_importing_a_thread_that_exists_is_a_conflict(x: _Io) -> None:
    source = x.fresh()
    _populate(source)
    buf = io.BytesIO()
    x.export(source, buf)
    with pytest.raises(ConflictError):
        x.import_(source, io.BytesIO(buf.getvalue()))


@pytest.mark.parametrize("where", [10, 500, -40, -5])
def test_a_damaged_export_is_refused_and_its_thread_stays_invisible(where: int, x: _Io) -> None:
    source = x.fresh()
    _populate(source)
    buf = io.BytesIO()
    x.export(source, buf)
    data = bytearray(buf.getvalue())
    data[where] ^= 0x40
    target = x.fresh()
    with pytest.raises(CorruptionError):
        x.import_(target, io.BytesIO(bytes(data)))
    for thread in target.list_threads():  # whatever was imported before the damage is whole
        for cp in target.list(thread.id, limit=1000):
            assert cp.state == source.get(cp.id).state


def test_a_truncated_export_is_refused(x: _Io) -> None:
    source = x.fresh()
    _populate(source)
    buf = io.BytesIO()
    x.export(source, buf)
    target = x.fresh()
    with pytest.raises(CorruptionError):
        x.import_(target, io.BytesIO(buf.getvalue()[:-30]))
    with pytest.raises(CorruptionError):
        x.import_(target, io.BytesIO(b"not an export at all"))


def _forged(*frames: dict[str, Any]) -> bytes:
    """An export file holding ``frames`` after a valid header, with valid framing and checksums."""
    from runtime_persistence.checkpoint._export_format import EXPORT_VERSION, FrameWriter

    out = FrameWriter()
    data = out.start()
    data += out.frame("header", format="keepup-export", version=EXPORT_VERSION, threads=[], checkpoints=0)
    for frame in frames:
        data += out.frame(**frame)
    return data + out.end()


def _thread_frame(thread_id: str) -> dict[str, Any]:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    return {"kind": "thread", "thread": [thread_id, "t", {}, None, None, now, now], "head": None}


@pytest.mark.parametrize(
    "frames",
    [
        [{"kind": "thread"}],  # no thread record
        [{"kind": "blob"}],  # no ref, no data
        [{"kind": "checkpoint"}],  # before any thread
        [_thread_frame("not/an id"), {"kind": "thread_end", "id": "not/an id"}],
        [{"kind": "pin", "key": "01a1ffeb-d338-710a-9613-78f257a0d338/01a1ffeb-d338-710a-9613-78f257a0d339"}],
        [
            _thread_frame("01a1ffeb-d338-710a-9613-78f257a0d338"),
            {
                "kind": "pin",
                "key": "01a1ffeb-d338-710a-9613-78f257a0d399/01a1ffeb-d338-710a-9613-78f257a0d339",
            },
            {"kind": "thread_end", "id": "01a1ffeb-d338-710a-9613-78f257a0d338"},
        ],
        [
            _thread_frame("01a1ffeb-d338-710a-9613-78f257a0d338"),
            {"kind": "fork", "key": "01a1ffeb-d338-710a-9613-78f257a0d399/000000000000/other"},
            {"kind": "thread_end", "id": "01a1ffeb-d338-710a-9613-78f257a0d338"},
        ],
        [
            _thread_frame("01a1ffeb-d338-710a-9613-78f257a0d338"),
            {"kind": "checkpoint", "record": [], "writes": 5},
        ],
        [
            _thread_frame("01a1ffeb-d338-710a-9613-78f257a0d338"),
            {
                "kind": "fork",
                "key": "01a1ffeb-d338-710a-9613-78f257a0d399/00000000000x/01a1ffeb-d338-710a-9613-78f257a0d338",
            },
            {"kind": "thread_end", "id": "01a1ffeb-d338-710a-9613-78f257a0d338"},
        ],
    ],
)
def test_a_well_framed_export_with_malformed_content_is_refused_and_writes_nothing_named(
    frames: list[dict[str, Any]], x: _Io
) -> None:
    target = x.fresh()
    with pytest.raises(CorruptionError):
        x.import_(target, io.BytesIO(_forged(*frames)))
    assert target.list_threads() == []
    for ns in ("thread", "thread.head", "thread.fork", "ckpt.pin"):
        assert list(target.driver.scan(ns)) == []
