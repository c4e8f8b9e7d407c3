"""The driver contract's input validators: namespaces, keys, digests."""

from __future__ import annotations

import hashlib

import pytest
from runtime_core import (
    MAX_KEY_BYTES,
    BlobArea,
    Driver,
    Durability,
    ValidationError,
    blob_digest,
    validate_digest,
    validate_key,
    validate_namespace,
)


@pytest.mark.parametrize("ns", ["a", "checkpoints", "ns-1", "a.b_c-d", "0start", "x" * 63])
def test_valid_namespaces_are_returned(ns: str) -> None:
    assert validate_namespace(ns) == ns


@pytest.mark.parametrize("ns", ["", "Upper", "-lead", "_lead", ".lead", "has space", "x" * 64, "é", None, 3])
def test_invalid_namespaces_are_refused_with_the_rule(ns: object) -> None:
    with pytest.raises(ValidationError, match="a namespace is 1-63 characters"):
        validate_namespace(ns)


@pytest.mark.parametrize("key", ["k", "thread/0190/cp", "ünïcødé/🙂", "x" * MAX_KEY_BYTES, " spaced "])
def test_valid_keys_are_returned(key: str) -> None:
    assert validate_key(key) == key


def test_key_limit_counts_utf8_bytes_not_characters() -> None:
    four_byte = "🙂" * (MAX_KEY_BYTES // 4)
    assert validate_key(four_byte) == four_byte
    with pytest.raises(ValidationError, match=f"at most {MAX_KEY_BYTES} UTF-8 bytes; this one is 516"):
        validate_key(four_byte + "🙂")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "must not be empty"),
        ("a\x00b", "NUL"),
        ("a\ud800b", "lone surrogates"),
        (b"bytes", "must be a str, got bytes"),
        (None, "must be a str, got NoneType"),
        ("x" * (MAX_KEY_BYTES + 1), "at most"),
    ],
)
def test_invalid_keys_are_refused_with_a_clear_message(key: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validate_key(key)


def test_blob_digest_is_lowercase_hex_sha256() -> None:
    assert blob_digest(b"hello") == hashlib.sha256(b"hello").hexdigest()
    assert validate_digest(blob_digest(b"")) == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("bad", ["", "A" * 64, "g" * 64, "a" * 63, "a" * 65, None, b"a" * 64])
def test_invalid_digests_are_refused(bad: object) -> None:
    with pytest.raises(ValidationError, match="64 lowercase hex"):
        validate_digest(bad)


def test_durability_values() -> None:
    assert Durability("durable") is Durability.DURABLE
    assert Durability.RELAXED.value == "relaxed"


def test_driver_protocol_extends_the_blob_area() -> None:
    assert issubclass(Driver, BlobArea)
    assert not isinstance(object(), BlobArea)


def _signature_of(member: object) -> list[tuple[str, object, object]]:
    import inspect

    if isinstance(member, property):
        return [("<property>", None, None)]
    sig = inspect.signature(member)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


def test_the_async_driver_protocol_names_the_same_methods_with_the_same_parameters() -> None:
    """AsyncDriver is hand-declared beside Driver: this keeps the two from drifting apart."""
    from runtime_core import AsyncBlobArea, AsyncDriver, BlobArea, Driver

    for sync_proto, async_proto in ((Driver, AsyncDriver), (BlobArea, AsyncBlobArea)):
        sync_names = {n for n in vars(sync_proto) if not n.startswith("_")} | {
            n for base in sync_proto.__mro__[1:] for n in vars(base) if not n.startswith("_")
        }
        async_names = {n for n in vars(async_proto) if not n.startswith("_")} | {
            n for base in async_proto.__mro__[1:] for n in vars(base) if not n.startswith("_")
        }
        assert sync_names == async_names
        for name in sync_names:
            sync_member = inspect_member(sync_proto, name)
            async_member = inspect_member(async_proto, name)
            assert _signature_of(sync_member) == _signature_of(async_member), name


def inspect_member(proto: type, name: str) -> object:
    for klass in proto.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    raise AssertionError(name)
