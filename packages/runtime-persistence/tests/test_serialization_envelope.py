"""The envelope serializer: round trips, compression, encryption with key rotation, limits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from runtime_core import CorruptionError, DriverUnavailableError, ValidationError
from runtime_persistence.storage.serialization import (
    MAX_DEPTH,
    EnvelopeSerializer,
    Keyring,
    dumps,
    loads,
)

PLAIN: list[Any] = [
    None,
    True,
    0,
    -(2**63),
    2**64 - 1,
    1.5,
    "",
    "héllo \U0001f600",
    b"\x00\xff",
    [1, [2, [3]]],
    {"a": {"b": [1, "x", None]}},
    datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
]


class Point(msgspec.Struct, frozen=True):
    x: int
    y: int
    label: str = ""


@pytest.mark.parametrize("value", PLAIN, ids=repr)
@pytest.mark.parametrize("codec", ["msgpack", "json"])
def test_plain_values_round_trip(codec: str, value: Any) -> None:
    ser = EnvelopeSerializer(codec)
    if codec == "json" and isinstance(value, (bytes, datetime)):
        # JSON carries bytes as base64 text and datetimes as strings: read them back typed
        assert ser.loads(ser.dumps(value), type(value)) == value
    else:
        assert ser.loads(ser.dumps(value)) == value


def test_uuid_round_trips_typed() -> None:
    u = uuid.uuid4()
    assert loads(dumps(u), uuid.UUID) == u


def test_typed_struct_round_trips_and_mismatch_is_corruption() -> None:
    p = Point(1, 2, "p")
    assert loads(dumps(p), Point) == p
    with pytest.raises(CorruptionError):
        loads(dumps({"x": "not an int", "y": 2}), Point)


def test_module_functions_use_msgpack_envelope() -> None:
    data = dumps({"k": 1})
    assert data[:2] == b"KU" and data[3] == 1
    assert loads(data) == {"k": 1}


def test_unknown_codec_or_compression_is_refused_at_construction() -> None:
    with pytest.raises(ValidationError):
        EnvelopeSerializer("pickle")
    with pytest.raises(ValidationError):
        EnvelopeSerializer(compression="gzip")
    with pytest.raises(ValidationError):
        EnvelopeSerializer("json", allow_nan=True)


def test_unencodable_values_are_validation_errors() -> None:
    for value in (object(), {1j: 2}, lambda: 0, [1, object()]):
        with pytest.raises(ValidationError):
            dumps(value)


@pytest.mark.parametrize(
    "bad", [float("nan"), float("inf"), float("-inf"), [1.0, {"x": float("nan")}]], ids=repr
)
@pytest.mark.parametrize("codec", ["msgpack", "json"])
def test_non_finite_floats_are_refused_on_encode(codec: str, bad: Any) -> None:
    with pytest.raises(ValidationError):
        EnvelopeSerializer(codec).dumps(bad)


def test_nan_is_stored_when_allowed() -> None:
    ser = EnvelopeSerializer(allow_nan=True)
    out = ser.loads(ser.dumps([float("nan"), float("inf")]))
    assert out[0] != out[0] and out[1] == float("inf")


@pytest.mark.parametrize("key", ["__class__", "__reduce__", "__init__", "py/object", "py/reduce"])
def test_reserved_keys_are_refused_on_encode_in_strict_mode(key: str) -> None:
    with pytest.raises(ValidationError):
        EnvelopeSerializer(strict_keys=True).dumps({"ok": [{key: "os.system"}]})


@pytest.mark.parametrize("codec", ["msgpack", "json"])
def test_keys_of_any_shape_are_stored_and_returned_as_plain_data(codec: str) -> None:
    value = {
        "__start__": 1,
        "__interrupt__": [{"__pregel_resume": "x"}],
        "py/object": "os.system",
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "HumanMessage"],
    }
    ser = EnvelopeSerializer(codec)
    assert ser.loads(ser.dumps(value)) == value


def test_ordinary_underscore_keys_are_fine() -> None:
    value = {"a__b": 1, "_private": 2, "__": 3, "____": 4, "__init": 5, "py/x": 6, "lc": 7}
    assert loads(dumps(value)) == value


def test_nesting_at_the_limit_round_trips_and_beyond_is_refused() -> None:
    ok: Any = 1
    for _ in range(MAX_DEPTH):
        ok = [ok]
    assert loads(dumps(ok)) == ok
    deep: Any = [ok]
    with pytest.raises(ValidationError):
        dumps(deep)


def test_lone_surrogates_are_refused_on_encode() -> None:
    with pytest.raises(ValidationError):
        dumps("\ud800")
    with pytest.raises(ValidationError):
        EnvelopeSerializer("json").dumps({"k": "\udfff"})


# compression --------------------------------------------------------------------------------------
def test_zstd_compresses_large_payloads_and_reads_back() -> None:
    pytest.importorskip("zstandard")
    ser = EnvelopeSerializer(compression="zstd")
    value = {"text": "abc" * 10_000}
    data = ser.dumps(value)
    assert data[4] == 1  # compression byte
    assert len(data) < len(dumps(value)) // 10
    assert ser.loads(data) == value
    assert loads(data) == value  # any serializer reads compressed records


def test_zstd_leaves_small_payloads_uncompressed() -> None:
    pytest.importorskip("zstandard")
    data = EnvelopeSerializer(compression="zstd").dumps({"k": 1})
    assert data[4] == 0


def test_damaged_compressed_payload_is_corruption() -> None:
    pytest.importorskip("zstandard")
    data = bytearray(EnvelopeSerializer(compression="zstd").dumps("x" * 5000))
    # damage the frame and recompute the outer checksum so only the zstd layer can notice
    data[20] ^= 0xFF
    from runtime_persistence.storage.serialization import _checksum

    data[-8:] = _checksum(bytes(data[:-8]))
    with pytest.raises(CorruptionError):
        loads(bytes(data))


# encryption ---------------------------------------------------------------------------------------
def test_encrypted_records_round_trip_and_hide_the_plaintext() -> None:
    pytest.importorskip("cryptography")
    ring = Keyring({"k1": Keyring.generate_key()})
    ser = EnvelopeSerializer(keyring=ring)
    data = ser.dumps({"secret": "hunter2"})
    assert b"hunter2" not in data and data[5] == 1 and b"k1" in data
    assert ser.loads(data) == {"secret": "hunter2"}


def test_rotating_keys_keeps_old_records_readable() -> None:
    pytest.importorskip("cryptography")
    ring = Keyring({"k1": Keyring.generate_key()})
    ser = EnvelopeSerializer(keyring=ring, compression="zstd")
    old = ser.dumps({"v": "old" * 200})
    ring.add("k2", Keyring.generate_key())
    assert ring.active_id == "k2"
    new = ser.dumps({"v": "new"})
    assert b"k2" in new and b"k1" in old
    assert ser.loads(old) == {"v": "old" * 200}
    assert ser.loads(new) == {"v": "new"}


def test_reading_with_a_missing_key_says_which_key() -> None:
    pytest.importorskip("cryptography")
    data = EnvelopeSerializer(keyring=Keyring({"gone": Keyring.generate_key()})).dumps(1)
    with pytest.raises(ValidationError, match="gone"):
        EnvelopeSerializer(keyring=Keyring({"other": Keyring.generate_key()})).loads(data)
    with pytest.raises(ValidationError, match="keyring"):
        loads(data)


def test_a_wrong_key_under_the_same_id_is_corruption() -> None:
    pytest.importorskip("cryptography")
    data = EnvelopeSerializer(keyring=Keyring({"k": Keyring.generate_key()})).dumps("x")
    with pytest.raises(CorruptionError):
        EnvelopeSerializer(keyring=Keyring({"k": Keyring.generate_key()})).loads(data)


def test_tampered_ciphertext_with_recomputed_checksum_is_corruption() -> None:
    pytest.importorskip("cryptography")
    from runtime_persistence.storage.serialization import _checksum

    ser = EnvelopeSerializer(keyring=Keyring({"k": Keyring.generate_key()}))
    data = bytearray(ser.dumps({"amount": 100}))
    data[-10] ^= 0x01
    data[-8:] = _checksum(bytes(data[:-8]))
    with pytest.raises(CorruptionError):
        ser.loads(bytes(data))


@pytest.mark.parametrize("key", [b"short", "x" * 32])
def test_keyring_refuses_bad_keys(key: Any) -> None:
    pytest.importorskip("cryptography")
    with pytest.raises(ValidationError):
        Keyring({"k": key})


def test_keyring_never_reuses_a_key_id() -> None:
    pytest.importorskip("cryptography")
    ring = Keyring({"k": Keyring.generate_key()})
    with pytest.raises(ValidationError):
        ring.add("k", Keyring.generate_key())


def test_missing_optional_libraries_name_their_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(DriverUnavailableError) as zinfo:
        EnvelopeSerializer(compression="zstd")
    assert zinfo.value.extra == "zstd" and "runtime-persistence[zstd]" in str(zinfo.value)
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(DriverUnavailableError) as cinfo:
        Keyring()
    assert cinfo.value.extra == "crypto"
