"""Only str mapping keys (issue 11 hole 11): msgspec's MessagePack encoder stores an int key as
an int and its JSON encoder silently turns it into a string, so ``{1: 'x'}`` would either break
the "str keys only" rule or read back as a different value ``{'1': 'x'}``. Both codecs refuse
it on dumps (ValidationError), and a stored record with a non-str key is CorruptionError."""

from __future__ import annotations

import struct
import uuid
from typing import Any

import msgspec
import pytest
from runtime_core import CorruptionError, ValidationError
from runtime_persistence.storage.serialization import EnvelopeSerializer, _checksum, dumps, loads


class Holder(msgspec.Struct):
    data: dict[Any, Any]


BAD_VALUES = [
    {1: "x"},
    {True: "x"},
    {1.5: "x"},
    {None: "x"},
    {b"k": "x"},
    {(1, 2): "x"},
    {uuid.UUID(int=1): "x"},
    {"ok": {"nested": [{"deeper": {2: "y"}}]}},
    [{"a": 1}, {3: "z"}],
    Holder({4: "w"}),
]


@pytest.mark.parametrize("codec", ["msgpack", "json"])
@pytest.mark.parametrize("value", BAD_VALUES, ids=[f"v{i}" for i in range(len(BAD_VALUES))])
def test_non_str_keys_are_refused_on_dumps(codec: str, value: Any) -> None:
    with pytest.raises(ValidationError, match="str"):
        EnvelopeSerializer(codec).dumps(value)


def test_the_module_dumps_refuses_an_int_key() -> None:
    with pytest.raises(ValidationError, match="str"):
        dumps({1: "x"})
    assert loads(dumps({"1": "x"})) == {"1": "x"}


def _forge(payload: bytes) -> bytes:
    header = dumps({"a": 1})[:7]
    body = header + struct.pack(">I", len(payload)) + payload
    return body + _checksum(body)


@pytest.mark.parametrize("value", [{1: "x"}, {"a": [{2.5: "y"}]}, {None: 1}])
def test_a_stored_record_with_a_non_str_key_is_corruption(value: Any) -> None:
    with pytest.raises(CorruptionError, match="str"):
        loads(_forge(msgspec.msgpack.encode(value)))
