"""Envelope formats: new records are written in format 3 (bound, XXH3-64 checksum) or 4 (unbound,
XXH3-64); formats 2 and 1 (their BLAKE2b-64 twins, written by earlier Keepups) are still read
and verified with their own hash; any other version is refused, naming it.

The old data is real: ``data/format2-store.sqlite`` and ``data/format2-envelopes.json`` were
written by Keepup before the XXH3 checksum (``data/make_format2_store.py``)."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
from runtime_core import CorruptionError
from runtime_persistence import Artifacts, Checkpoints, Leases, Sessions, Tasks, open_store
from runtime_persistence.checkpoint._records import CKPT_NS, HEAD_NS, THREAD_NS
from runtime_persistence.session._records import TASK_NS
from runtime_persistence.storage.serialization import (
    FORMAT_UNBOUND,
    FORMAT_VERSION,
    EnvelopeSerializer,
    Keyring,
    _checksum,
    dumps,
    loads,
    place_bytes,
)

DATA = Path(__file__).parent / "data"
FORMAT2_STORE = DATA / "format2-store.sqlite"
VECTORS: list[dict[str, Any]] = json.loads((DATA / "format2-envelopes.json").read_text())
KEY = bytes(range(32))  # the fixed key make_format2_store.py encrypted with, id "k1"
AT = ("ckpt", "thread-1/0000000001")
VALUE = {"messages": [{"role": "user", "content": "hello " * 40}], "n": 7}


def _serializer(kind: str) -> EnvelopeSerializer:
    if kind.startswith("encrypted"):
        pytest.importorskip("cryptography")
        return EnvelopeSerializer(keyring=Keyring({"k1": KEY}))
    if kind == "zstd":
        pytest.importorskip("zstandard")
    return EnvelopeSerializer()


def _at(vector: dict[str, Any]) -> tuple[str, str] | None:
    return tuple(vector["at"]) if vector["at"] else None  # type: ignore[return-value]


# what is written now -----------------------------------------------------------------------------
def test_records_are_written_in_format_3_bound_and_4_unbound() -> None:
    assert (FORMAT_VERSION, FORMAT_UNBOUND) == (3, 4)
    bound, unbound = dumps(VALUE, at=AT), dumps(VALUE)
    assert bound[2] == 3 and unbound[2] == 4
    body = bound[:-8]
    assert bound[-8:] == _checksum(body, place_bytes(AT)) != _checksum(body)
    assert unbound[-8:] == _checksum(unbound[:-8])
    assert loads(bound, at=AT) == VALUE and loads(unbound) == VALUE


# the old formats ---------------------------------------------------------------------------------
@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v['kind']}-{'bound' if v['at'] else 'unbound'}")
def test_format_2_and_1_envelopes_written_before_still_read(vector: dict[str, Any]) -> None:
    data, at = bytes.fromhex(vector["hex"]), _at(vector)
    assert data[2] == (2 if at else 1), "the vectors must be old-format envelopes"
    ser = _serializer(vector["kind"])
    assert ser.loads(data, at=at) == vector["value"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v['kind']}-{'bound' if v['at'] else 'unbound'}")
def test_old_envelopes_are_still_verified_with_their_own_checksum(vector: dict[str, Any]) -> None:
    data, at = bytes.fromhex(vector["hex"]), _at(vector)
    ser = _serializer(vector["kind"])
    for pos in (0, 2, 7, len(data) // 2, len(data) - 9, len(data) - 1):
        damaged = bytearray(data)
        damaged[pos] ^= 0x10
        with pytest.raises(CorruptionError):
            ser.loads(bytes(damaged), at=at)
    with pytest.raises(CorruptionError):
        ser.loads(data[:-1], at=at)
    if at is not None:
        with pytest.raises(CorruptionError, match="copied or moved"):
            ser.loads(data, at=(at[0], at[1] + "x"))
        with pytest.raises(CorruptionError):
            ser.loads(data)


def test_a_format_2_record_cannot_be_relabelled_format_3() -> None:
    (vector,) = [v for v in VECTORS if v["kind"] == "msgpack" and v["at"]]
    data = bytearray.fromhex(vector["hex"])
    data[2] = FORMAT_VERSION  # its BLAKE2b sum now read as an XXH3 one
    with pytest.raises(CorruptionError, match="checksum mismatch"):
        loads(bytes(data), at=_at(vector))


def test_resealing_leaves_an_encrypted_format_2_record_as_it_is() -> None:
    """``keepup store encrypt`` does not rewrite records that are bound and under the active key,
    whichever checksum they carry (AES-GCM authenticates both)."""
    (vector,) = [v for v in VECTORS if v["kind"] == "encrypted" and v["at"]]
    ser = _serializer("encrypted")
    assert ser.reseal(bytes.fromhex(vector["hex"]), at=_at(vector)) is None


def test_a_store_written_in_format_2_is_still_read_and_written(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    shutil.copy(FORMAT2_STORE, path)
    store = open_store(f"sqlite:///{path}")
    try:
        versions = {e.value[2] for ns in (THREAD_NS, CKPT_NS, HEAD_NS) for e in store.scan(ns)}
        assert versions == {2}, "the fixture must hold format-2 records"
        cps = Checkpoints(store)
        threads = {t.name: t for t in cps.list_threads()}
        assert set(threads) == {"old thread", "other"}
        old = threads["old thread"]
        history = cps.list(old.id)
        assert [c.state["n"] for c in history] == [2, 1, 0]
        assert history[0].state["messages"][2999] == "m2999"
        assert history[1].state["big"] == "x" * 5000 and history[1].label == "two"
        assert [w.value for w in history[0].pending_writes] == ["pending"]
        new = cps.save(old.id, {"n": 3, "messages": ["hello", "again"]})
        assert Checkpoints(store).latest(old.id).id == new.id
        assert [c.state["n"] for c in Checkpoints(store).list(old.id)] == [3, 2, 1, 0]
        versions = {e.value[2] for ns in (THREAD_NS, CKPT_NS, HEAD_NS) for e in store.scan(ns)}
        assert versions == {2, 3}, "new records are written in format 3 beside the old ones"
        arts = Artifacts(store)
        assert arts.get("scope", "report.txt", 0)[1] == b"version zero"
        assert arts.get("scope", "report.txt")[1] == b"version one"
        assert [s.name for s in Sessions(store).list()] == ["old session"]
        tasks = Tasks(store)
        (task_id,) = [e.key for e in store.scan(TASK_NS)]
        assert tasks.get(task_id).title == "old task"
        assert [line.message for line in tasks.logs(task_id)] == ["a line"]
        assert Leases(store).current(threads["other"].id) is not None
    finally:
        store.close()


# damage to the current formats -------------------------------------------------------------------
@pytest.mark.parametrize("at", [AT, None], ids=["bound", "unbound"])
def test_every_flipped_bit_of_a_current_record_is_corruption(at: tuple[str, str] | None) -> None:
    data = dumps({"k": "v", "n": [1, 2, 3]}, at=at)
    for pos in range(len(data)):
        for bit in range(8):
            damaged = bytearray(data)
            damaged[pos] ^= 1 << bit
            with pytest.raises(CorruptionError):
                loads(bytes(damaged), at=at)


@pytest.mark.parametrize("at", [AT, None], ids=["bound", "unbound"])
def test_every_truncation_of_a_current_record_is_corruption(at: tuple[str, str] | None) -> None:
    data = dumps(VALUE, at=at)
    for end in range(len(data)):
        with pytest.raises(CorruptionError):
            loads(data[:end], at=at)
    with pytest.raises(CorruptionError):
        loads(data + b"\x00", at=at)


def test_a_large_current_record_is_checked_over_all_its_bytes() -> None:
    """Records over 4 KB are hashed in place after the place bytes: every region still counts."""
    data = dumps({"big": "y" * 20_000}, at=AT)
    for pos in (3, 100, 5_000, 10_000, len(data) - 9):
        damaged = bytearray(data)
        damaged[pos] ^= 0x01
        with pytest.raises(CorruptionError):
            loads(bytes(damaged), at=AT)


@pytest.mark.parametrize(
    "other",
    [("ckpt", "thread-1/0000000002"), ("thread", AT[1]), ("ckpt", AT[1] + "\x00"), ("", AT[0] + AT[1])],
)
def test_a_current_record_read_from_another_place_is_corruption(other: tuple[str, str]) -> None:
    for data in (dumps(VALUE, at=AT), dumps({"big": "z" * 9_000}, at=AT)):
        with pytest.raises(CorruptionError, match="copied or moved"):
            loads(data, at=other)
        with pytest.raises(CorruptionError, match="read without"):
            loads(data)


def test_a_bound_record_relabelled_unbound_is_corruption() -> None:
    data = bytearray(dumps(VALUE, at=AT))
    data[2] = FORMAT_UNBOUND
    with pytest.raises(CorruptionError, match="checksum mismatch"):
        loads(bytes(data))


def test_an_encrypted_current_record_read_from_another_place_is_corruption() -> None:
    pytest.importorskip("cryptography")
    ser = EnvelopeSerializer(keyring=Keyring({"k1": KEY}))
    data = bytearray(ser.dumps(VALUE, at=AT))
    assert data[2] == FORMAT_VERSION
    assert ser.loads(bytes(data), at=AT) == VALUE
    with pytest.raises(CorruptionError):
        ser.loads(bytes(data), at=("ckpt", "thread-1/0000000002"))
    # a recomputed checksum does not help: the place is in the AES-GCM associated data too
    other = ("ckpt", "thread-1/0000000002")
    data[-8:] = _checksum(bytes(data[:-8]), place_bytes(other))
    with pytest.raises(CorruptionError, match="authentication"):
        ser.loads(bytes(data), at=other)


# versions this Keepup does not know --------------------------------------------------------------
@pytest.mark.parametrize("version", [0, 5, 200, 255])
def test_an_unknown_envelope_version_is_refused_naming_it(version: int) -> None:
    """A correctly checksummed envelope of a version this Keepup does not know (a newer Keepup's)
    is refused, whichever checksum it carries, and the message says why."""
    for at in (AT, None):
        body = bytearray(dumps(VALUE, at=at)[:-8])
        body[2] = version
        place = b"" if at is None else place_bytes(at)
        for tail in (_checksum(bytes(body), place), _checksum(bytes(body))):
            with pytest.raises(CorruptionError, match=rf"version {version} is not supported.*newer Keepup"):
                loads(bytes(body) + tail, at=at)


def test_an_envelope_shorter_than_its_header_is_corruption() -> None:
    header = struct.pack(">2sBBBBB", b"KU", FORMAT_UNBOUND, 1, 0, 0, 0)
    for data in (b"", b"KU", header, header + b"\x00" * 4):
        with pytest.raises(CorruptionError):
            loads(data)


def test_an_export_file_written_in_format_1_frames_still_imports(tmp_path: Path) -> None:
    """``data/format2-export.kup``: the threads of the format-2 store, exported by the Keepup
    that wrote it (its frames and blobs are format-1 envelopes, checksummed with BLAKE2b)."""
    from runtime_persistence.checkpoint.export import export_threads, import_threads

    data = (DATA / "format2-export.kup").read_bytes()
    assert data[12:15] == b"KU\x01", "the fixture's frames must be format-1 envelopes"
    store = open_store(f"sqlite:///{tmp_path / 'new.sqlite'}")
    try:
        cps = Checkpoints(store)
        report = import_threads(cps, DATA / "format2-export.kup")
        assert (report.threads, report.checkpoints) == (2, 4)
        threads = {t.name: t for t in cps.list_threads()}
        history = cps.list(threads["old thread"].id)
        assert [c.state["n"] for c in history] == [2, 1, 0]
        assert history[0].state["messages"][2999] == "m2999"
        assert history[1].state["big"] == "x" * 5000
        assert [w.value for w in history[0].pending_writes] == ["pending"]
        cps.save(threads["old thread"].id, {"n": 3})  # and written on in the current format
        again = tmp_path / "again.kup"
        export_threads(cps, again)
        assert again.read_bytes()[12:15] == bytes((75, 85, FORMAT_UNBOUND))
        assert import_threads(Checkpoints(open_store("memory://")), again).checkpoints == 5
    finally:
        store.close()

    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0x01
    with pytest.raises(CorruptionError):
        import_threads(Checkpoints(open_store("memory://")), bytes_file(tmp_path, bytes(damaged)))


def bytes_file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "damaged.kup"
    path.write_bytes(data)
    return path
