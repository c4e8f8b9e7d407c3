"""Stored data is untrusted: hostile payloads are refused with CorruptionError, and decoding them
calls nothing. Every payload is wrapped in an envelope with a correct checksum (the checksum is not
a secret), so only the decoder's own allowlist stands between the bytes and the program.

"Without calling anything" is proven with sentinels: while a payload is decoded, ``os.system``,
``subprocess.Popen``, ``eval``, ``exec``, ``builtins.__import__``, ``importlib.import_module`` and
``pickle.loads`` are replaced by functions that record the call and raise; a test fails if any
sentinel was touched."""

from __future__ import annotations

import builtins
import gc
import importlib
import os
import pickle
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import pytest
from runtime_core import CorruptionError
from runtime_persistence.storage.serialization import FORMAT_UNBOUND, EnvelopeSerializer, _checksum, loads


def envelope(payload: bytes, codec: int = 1, length: int | None = None) -> bytes:
    """A well-formed envelope (valid checksum) around an arbitrary payload."""
    body = (
        struct.pack(">2sBBBBB", b"KU", FORMAT_UNBOUND, codec, 0, 0, 0)
        + struct.pack(">I", len(payload) if length is None else length)
        + payload
    )
    return body + _checksum(body)


@contextmanager
def sentinels() -> Iterator[list[str]]:
    touched: list[str] = []
    decoding_thread = threading.get_ident()

    def trap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def sentinel(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != decoding_thread:
                # another thread of the test process (a pool worker or a background thread an
                # earlier test left running) importing something is not the decoder's doing
                return original(*args, **kwargs)
            touched.append(name)
            raise AssertionError(f"{name} was called while decoding untrusted data")

        return sentinel

    saved = [
        (os, "system", os.system),
        (subprocess, "Popen", subprocess.Popen),
        (builtins, "eval", builtins.eval),
        (builtins, "exec", builtins.exec),
        (builtins, "__import__", builtins.__import__),
        (importlib, "import_module", importlib.import_module),
        (pickle, "loads", pickle.loads),
    ]
    # Garbage collection is off meanwhile: decoding deep data allocates enough to run the
    # finalizers of objects earlier tests left behind, and what a finalizer imports is not the
    # decoder's doing (it made this test fail at random in CI).
    gc.collect()
    gc.disable()
    for owner, name, original in saved:
        setattr(owner, name, trap(f"{getattr(owner, '__name__', owner)}.{name}", original))
    try:
        yield touched
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)
        gc.enable()


def refused(data: bytes, serializer: EnvelopeSerializer | None = None, type: Any = Any) -> None:
    """Assert that decoding ``data`` raises CorruptionError and touches no sentinel."""
    error: BaseException | None = None
    with sentinels() as touched:
        try:
            if serializer is None:
                loads(data, type)
            else:
                serializer.loads(data, type)
        except BaseException as exc:
            error = exc
    assert touched == [], f"decoding called {touched}"
    assert isinstance(error, CorruptionError), f"expected CorruptionError, got {error!r}"


def test_sentinels_catch_a_call() -> None:
    with sentinels() as touched:
        with pytest.raises(AssertionError):
            os.system("true")
    assert touched == ["os.system"]


class _Exploit:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo pwned",))


PICKLE = pickle.dumps(_Exploit(), protocol=pickle.HIGHEST_PROTOCOL)
PICKLE_V0 = pickle.dumps(_Exploit(), protocol=0)


# pickle ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("payload", [PICKLE, PICKLE_V0], ids=["pickle-v5", "pickle-v0"])
def test_a_raw_pickle_is_refused(payload: bytes) -> None:
    refused(payload)


@pytest.mark.parametrize("payload", [PICKLE, PICKLE_V0], ids=["pickle-v5", "pickle-v0"])
@pytest.mark.parametrize("codec", [1, 2], ids=["msgpack", "json"])
def test_a_pickle_inside_a_valid_envelope_is_refused(payload: bytes, codec: int) -> None:
    refused(envelope(payload, codec))


def test_a_pickle_inside_bytes_stays_inert_bytes() -> None:
    # bytes are data: a pickle stored as a bytes value comes back as those bytes, never unpickled
    with sentinels() as touched:
        out = loads(envelope(msgspec.msgpack.encode({"blob": PICKLE})))
    assert touched == [] and out == {"blob": PICKLE}


# MessagePack extension types ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload",
    [
        b"\xd4\x05\x00",  # fixext 1, type 5
        b"\xd5\x01\x00\x00",  # fixext 2, type 1
        b"\xc7\x03\x7f abc"[:6],  # ext 8, type 127
        msgspec.msgpack.encode(msgspec.msgpack.Ext(42, PICKLE)),
        msgspec.msgpack.encode({"x": [msgspec.msgpack.Ext(1, b"os.system")]}),
        msgspec.msgpack.encode(msgspec.msgpack.Ext(-2, b"\x00")),
    ],
    ids=["fixext1", "fixext2", "ext8", "ext-pickle", "nested-ext", "negative-ext"],
)
def test_messagepack_extension_types_are_refused(payload: bytes) -> None:
    refused(envelope(payload))


# payloads that name something to import -----------------------------------------------------------
IMPORT_BY_NAME: list[Any] = [
    {"__class__": "os.system", "args": ["echo pwned"]},
    {"__reduce__": ["builtins.eval", ["1+1"]]},
    {"state": {"deep": [{"__import__": "os"}]}},
    {"py/object": "os.system"},
    {"py/reduce": [{"py/function": "builtins.eval"}, {"py/tuple": ["1"]}]},
    {"py/type": "subprocess.Popen"},
    {"lc": 1, "type": "constructor", "id": ["os", "system"], "kwargs": {"command": "echo pwned"}},
    {"lc": 1, "type": "secret", "id": ["OPENAI_API_KEY"]},
    {"messages": [{"lc": 1, "type": "constructor", "id": ["langchain", "schema", "HumanMessage"]}]},
]


@pytest.mark.parametrize("value", IMPORT_BY_NAME, ids=repr)
@pytest.mark.parametrize("codec", [1, 2], ids=["msgpack", "json"])
def test_payloads_naming_a_class_or_function_to_import_are_refused_in_strict_mode(
    value: Any, codec: int
) -> None:
    payload = msgspec.msgpack.encode(value) if codec == 1 else msgspec.json.encode(value)
    refused(envelope(payload, codec), EnvelopeSerializer(strict_keys=True))


@pytest.mark.parametrize("value", IMPORT_BY_NAME, ids=repr)
@pytest.mark.parametrize("codec", [1, 2], ids=["msgpack", "json"])
def test_payloads_naming_a_class_or_function_come_back_as_inert_plain_data(value: Any, codec: int) -> None:
    payload = msgspec.msgpack.encode(value) if codec == 1 else msgspec.json.encode(value)
    with sentinels() as touched:
        out = loads(envelope(payload, codec))
    assert touched == [] and out == value


# lone surrogates and invalid UTF-8 ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "codec"),
    [
        (b"\xa3\xed\xa0\x80", 1),  # a lone high surrogate encoded as UTF-8 bytes (CESU style)
        (b"\x81\xa1k\xa3\xed\xbf\xbf", 1),  # a lone low surrogate as a map value
        (b"\xa2\xff\xfe", 1),  # bytes that are not UTF-8 at all
        (b'"\\ud800"', 2),
        (b'{"k": "a\\udfffb"}', 2),
        (b'["\\ud83d"]', 2),
    ],
    ids=["mp-high", "mp-low-in-map", "mp-invalid-utf8", "json-high", "json-low-in-map", "json-half-pair"],
)
def test_lone_surrogates_are_refused(payload: bytes, codec: int) -> None:
    refused(envelope(payload, codec))


# nesting -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "codec"),
    [
        (b"\x91" * 10_000 + b"\xc0", 1),
        (b"\x81\xa1k" * 10_000 + b"\xc0", 1),
        (b"[" * 10_000 + b"]" * 10_000, 2),
        (b'{"k":' * 10_000 + b"null" + b"}" * 10_000, 2),
        (b"\x91" * 600 + b"\xc0", 1),
    ],
    ids=["mp-arrays-10000", "mp-maps-10000", "json-arrays-10000", "json-objects-10000", "mp-arrays-600"],
)
def test_deep_nesting_is_refused(payload: bytes, codec: int) -> None:
    refused(envelope(payload, codec))


# declared lengths ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload",
    [
        b"\xdd\xff\xff\xff\xff",  # array 32 declaring 2^32 - 1 items
        b"\xdf\xff\xff\xff\xff",  # map 32
        b"\xdb\xff\xff\xff\xff" + b"abc",  # str 32
        b"\xc6\xff\xff\xff\xff" + b"abc",  # bin 32
        b"\xc9\xff\xff\xff\xff\x01",  # ext 32
        b"\x92\xdd\xff\xff\xff\xff\xc0",  # nested inside an array
    ],
    ids=["array32", "map32", "str32", "bin32", "ext32", "nested"],
)
def test_a_declared_length_of_two_to_the_32_is_refused(payload: bytes) -> None:
    refused(envelope(payload))


def test_an_envelope_declaring_a_payload_of_two_to_the_32_is_refused() -> None:
    refused(envelope(b"\xc0", length=0xFFFFFFFF))


# NaN -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "codec"),
    [
        (b"\xcb" + struct.pack(">d", float("nan")), 1),
        (b"\xca" + struct.pack(">f", float("nan")), 1),
        (b"\xcb" + struct.pack(">d", float("inf")), 1),
        (b"\x91\x81\xa1x\xcb" + struct.pack(">d", float("-inf")), 1),
        (b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x01", 1),  # a NaN with a payload
        (b"NaN", 2),
        (b"[Infinity]", 2),
        (b"[1e999]", 2),
    ],
    ids=[
        "f64-nan",
        "f32-nan",
        "f64-inf",
        "nested-neg-inf",
        "nan-payload",
        "json-NaN",
        "json-Infinity",
        "json-overflow",
    ],
)
def test_nan_and_infinities_are_refused_by_default(payload: bytes, codec: int) -> None:
    refused(envelope(payload, codec))


def test_nan_is_read_when_the_serializer_allows_it() -> None:
    data = envelope(b"\xcb" + struct.pack(">d", float("nan")))
    with sentinels() as touched:
        value = EnvelopeSerializer(allow_nan=True).loads(data)
    assert touched == [] and value != value


def test_large_finite_floats_are_not_mistaken_for_nan() -> None:
    data = envelope(msgspec.msgpack.encode([1.7e308, -1.7e308, 3.0e38]))
    assert loads(data) == [1.7e308, -1.7e308, 3.0e38]


# typed decoding refuses the same things -----------------------------------------------------------
class Record(msgspec.Struct):
    name: str
    state: dict[str, Any]


@pytest.mark.parametrize(
    "payload",
    [
        msgspec.msgpack.encode({"name": "x", "state": {"__class__": "os.system"}}),
        msgspec.msgpack.encode({"name": "x", "state": {"v": msgspec.msgpack.Ext(3, b"")}}),
        b"\x82\xa4name\xa1x\xa5state\x81\xa1v\xcb" + struct.pack(">d", float("nan")),
        b"\x82\xa4name\xa1x\xa5state\x81\xa1v" + b"\x91" * 10_000 + b"\xc0",
    ],
    ids=["dunder", "ext", "nan", "deep"],
)
def test_typed_records_refuse_hostile_fields(payload: bytes) -> None:
    serializer = EnvelopeSerializer()
    # Building the decoder for a type resolves that type's own annotations (this module uses
    # postponed annotations, which typing evaluates): that reads our source, not the data, so it
    # happens once before the sentinels go up.
    serializer = EnvelopeSerializer(strict_keys=True)
    assert serializer.loads(serializer.dumps(Record("ok", {})), Record) == Record("ok", {})
    refused(envelope(payload), serializer, type=Record)
