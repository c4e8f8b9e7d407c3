"""Checks and helpers every driver shares, so that bad input is refused the same way everywhere,
before anything is written."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from runtime_core import (
    MAX_KEY_BYTES,
    CorruptionError,
    Delete,
    Put,
    ValidationError,
    validate_digest,
    validate_key,
    validate_namespace,
)

DEFAULT_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class GuardedPut(Put):
    """A compare-and-set put inside a batch that also requires the key's current value to be
    exactly ``expect``. A version alone cannot prove what a key holds once it was deleted and
    created again (versions start over); the bytes can, when they name something unique (a
    checkpoint head names its checkpoint's id). Only drivers whose ``guarded_cas`` is true
    accept it; a lost condition is a ConflictError like any other."""

    expect: bytes = b""


def check_put(
    namespace: str, key: str, value: bytes, if_absent: bool, if_version: int | None, max_value_size: int
) -> None:
    validate_namespace(namespace)
    validate_key(key)
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise ValidationError(f"a value must be bytes, got {type(value).__name__}")
    if len(value) > max_value_size:
        raise ValidationError(
            f"a value of {len(value)} bytes exceeds this driver's limit of {max_value_size}; "
            "store large data in the blob area"
        )
    if if_absent and if_version is not None:
        raise ValidationError("give if_absent or if_version, not both")
    _check_if_version(if_version)


def _check_if_version(if_version: int | None) -> None:
    if if_version is not None and (
        isinstance(if_version, bool) or not isinstance(if_version, int) or if_version < 1
    ):
        raise ValidationError(f"if_version must be a positive integer, got {if_version!r}")


_VALID_NAMESPACES: set[str] = set()
_VALID_NAMESPACES_MAX = 1024


def _check_namespace(namespace: str) -> None:
    """:func:`validate_namespace`, remembering (up to a bound) the namespaces found valid."""
    if type(namespace) is not str or namespace not in _VALID_NAMESPACES:
        validate_namespace(namespace)
        if len(_VALID_NAMESPACES) < _VALID_NAMESPACES_MAX:
            _VALID_NAMESPACES.add(namespace)


def checked_key_bytes(namespace: str, key: str) -> bytes:
    """The UTF-8 bytes of ``key`` after the checks of :func:`check_key_op` (namespace and key;
    ValidationError otherwise), for a read that needs those bytes anyway: one encode, and a
    namespace already found valid is not matched again."""
    _check_namespace(namespace)
    if type(key) is str and key and "\x00" not in key:
        try:
            kb = key.encode("utf-8")
        except UnicodeEncodeError:
            kb = b""
        if kb and len(kb) <= MAX_KEY_BYTES:
            return kb
    validate_key(key)  # the authority: raises, saying what is wrong, for a key refused above
    return str(key).encode("utf-8")  # a key the fast check does not take (a str subclass) but is valid


def check_key_op(namespace: str, key: str, if_version: int | None = None) -> None:
    _check_namespace(namespace)
    validate_key(key)
    _check_if_version(if_version)


def check_scan(namespace: str, prefix: str, after: str | None, before: str | None, limit: int | None) -> None:
    _check_namespace(namespace)
    if not isinstance(prefix, str) or "\x00" in prefix:
        raise ValidationError("a scan prefix must be a str without NUL")
    if prefix:
        validate_key(prefix)
    for bound in (after, before):
        if bound is not None:
            validate_key(bound)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValidationError(f"limit must be a non-negative integer, got {limit!r}")


def check_batch(ops: Sequence[Put | Delete], max_value_size: int) -> None:
    for op in ops:
        if isinstance(op, Put):
            check_put(op.namespace, op.key, op.value, op.if_absent, op.if_version, max_value_size)
            if isinstance(op, GuardedPut) and (op.if_version is None or not isinstance(op.expect, bytes)):
                raise ValidationError("a guarded put needs if_version and the expected value's bytes")
        elif isinstance(op, Delete):
            check_key_op(op.namespace, op.key, op.if_version)
        else:
            raise ValidationError(f"a batch holds Put and Delete operations, got {type(op).__name__}")


def check_chunk_size(chunk_size: int) -> int:
    """``chunk_size`` if it is a positive integer (a reader's requested chunk size); else ValidationError."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValidationError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return chunk_size


def in_range(key: str, prefix: str, after: str | None, before: str | None) -> bool:
    """Whether ``key`` matches a scan's prefix and exclusive bounds (UTF-8 byte order, which is
    code point order for valid str)."""
    return key.startswith(prefix) and (after is None or key > after) and (before is None or key < before)


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (None: no bound)."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            nxt = last + 1
            if 0xD800 <= nxt <= 0xDFFF:
                nxt = 0xE000
            return prefix[:-1] + chr(nxt)
        prefix = prefix[:-1]
    return None


def key_bounds(prefix: str, after: str | None, before: str | None) -> tuple[bytes, bool, bytes | None]:
    """A scan's key range as UTF-8 bytes: ``(low, low_inclusive, high)`` where ``high`` is
    exclusive (None: unbounded). ``prefix``, ``after`` and ``before`` are combined, the tighter
    bound winning on each side."""
    low = prefix.encode()
    low_inclusive = True
    if after is not None and after.encode() >= low:
        low, low_inclusive = after.encode(), False
    upper = prefix_upper_bound(prefix)
    high = upper.encode() if upper is not None else None
    if before is not None and (high is None or before.encode() < high):
        high = before.encode()
    return low, low_inclusive, high


def check_digest_of(data: bytes, digest: str | None) -> str:
    actual = hashlib.sha256(data).hexdigest()
    if digest is not None and validate_digest(digest) != actual:
        raise ValidationError(f"blob digest {digest} does not match its content ({actual})")
    return actual


def verified_chunks(chunks: Iterable[bytes], digest: str) -> Iterator[bytes]:
    """Yield ``chunks`` while hashing; raise CorruptionError instead of the last chunk when the
    content does not hash to ``digest``. Holds back one chunk, so memory stays bounded."""
    h = hashlib.sha256()
    held: bytes | None = None
    for chunk in chunks:
        if held is not None:
            yield held
        h.update(chunk)
        held = chunk
    if h.hexdigest() != digest:
        raise CorruptionError(f"blob {digest} failed its digest check: the stored bytes were damaged")
    if held is not None:
        yield held


def split(data: bytes, chunk_size: int) -> Iterator[bytes]:
    for i in range(0, len(data), chunk_size):
        yield data[i : i + chunk_size]
