"""The byte pre-check that lets most payloads skip the full allowlist walk must never let a refused
value through, however the payload spells it."""

from __future__ import annotations

import struct
from datetime import datetime
from typing import Any

import msgspec
import pytest
from runtime_core import CorruptionError
from runtime_persistence.storage.serialization import (
    CODEC_JSON,
    CODEC_MSGPACK,
    EnvelopeSerializer,
    _checksum,
    _needs_walk,
)


def _forge(serializer: EnvelopeSerializer, payload: bytes) -> bytes:
    """An envelope around ``payload`` with a valid checksum, as an attacker who can write the
    store (but not break the checksum's purpose, which is damage detection) would make it."""
    header = serializer.dumps({"a": 1})[:7]
    body = header + struct.pack(">I", len(payload)) + payload
    return body + _checksum(body)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"\\u005f\\u005fclass\\u005f\\u005f": 1}',
        b'{"\\u005f_reduce__": [1]}',
        b'{"py\\u002fobject": "os.system"}',
        b'{"\\u006cc": 1, "type": "constructor", "id": ["x"]}',
    ],
)
def test_a_json_key_spelled_with_unicode_escapes_is_still_refused_in_strict_mode(payload: bytes) -> None:
    serializer = EnvelopeSerializer(codec="json", strict_keys=True)
    with pytest.raises(CorruptionError, match="refused"):
        serializer.loads(_forge(serializer, payload))


@pytest.mark.parametrize(
    "value",
    [
        {"__class__": 1},
        {"x" * 40: {"__" + "y" * 40 + "__": 1}},
        {"py/object": "os.system"},
        {"py/mod": "os"},
        {"lc": 1, "type": "constructor", "id": ["a"]},
    ],
)
def test_every_refused_key_shape_sends_a_payload_to_the_walk(value: object) -> None:
    import msgspec

    assert _needs_walk(msgspec.msgpack.encode(value), CODEC_MSGPACK)
    assert _needs_walk(msgspec.json.encode(value), CODEC_JSON)


@pytest.mark.parametrize(
    "key_bytes",
    [
        b"\xd9\x02lc",  # "lc" as str8
        b"\xda\x00\x02lc",  # "lc" as str16
        b"\xdb\x00\x00\x00\x09__class__",  # "__class__" as str32
        b"\xd9\x09py/object",  # a jsonpickle tag as str8
    ],
)
def test_a_msgpack_key_in_a_longer_string_form_is_still_refused_in_strict_mode(key_bytes: bytes) -> None:
    serializer = EnvelopeSerializer(strict_keys=True)
    if key_bytes.endswith(b"lc"):
        # {"lc": 1, "type": "constructor", "id": ["x"]}
        payload = b"\x83" + key_bytes + b"\x01\xa4type\xabconstructor\xa2id\x91\xa1x"
    else:
        payload = b"\x81" + key_bytes + b"\x01"
    with pytest.raises(CorruptionError, match="refused"):
        serializer.loads(_forge(serializer, payload))


class _Box(msgspec.Struct, array_like=True):
    name: str
    when: datetime | None
    data: dict[str, Any]


@pytest.mark.parametrize("nested", [{"a": {1: "int key"}}, {"a": [{b"k": 1}]}, {"a": [[{None: 1}]]}])
def test_a_bad_key_inside_a_typed_records_open_field_is_refused(nested: dict[str, Any]) -> None:
    # the typed fields of a decoded record (str, datetime) are skipped by the key check; the
    # fields that may hold containers (dict[str, Any]) must still be walked to the bottom
    serializer = EnvelopeSerializer()
    payload = msgspec.msgpack.encode(["box", None, nested])
    with pytest.raises(CorruptionError, match="keys must be str"):
        serializer.loads(_forge(serializer, payload), _Box)
