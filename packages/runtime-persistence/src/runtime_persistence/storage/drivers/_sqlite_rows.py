"""The checksum of a SQLite row, shared by the driver and its backups.

A row's checksum covers its namespace, key, version and value (namespaces and keys contain no
NUL, so the concatenation is unambiguous). It detects accidents (a flipped bit, a torn or
misdirected write, a row edited by hand), not attacks: it is unkeyed, so anyone who can write the
store can recompute it whatever the hash, and authenticity comes from encrypting records with a
keyring (AES-GCM, see ``docs/security.md``). Two formats, told apart by their length:

* 17 bytes, the current one: a format byte ``0x01``, then XXH3-128 (non-cryptographic, about
  50 times faster than BLAKE2b over a 10 KB value: a read verifies every byte it returns);
* 8 bytes: BLAKE2b-64, written before schema version 3. Such rows keep verifying with it until
  they are rewritten (every write stores the current format).
"""

from __future__ import annotations

from hashlib import blake2b as _blake2b

from xxhash import xxh3_128 as _xxh3_128
from xxhash import xxh3_128_digest as _xxh3_128_digest

__all__ = ["ROW_SUM_SIZE", "_legacy_row_sum", "_row_ok", "_row_sum"]

_XXH3 = b"\x01"  # the format byte of an XXH3-128 row checksum
ROW_SUM_SIZE = 1 + 16
_LEGACY_SIZE = 8
_SPLIT = 4096  # values larger than this are hashed in place rather than copied


def _row_sum(namespace: str, key: bytes, version: int, value: bytes) -> bytes:
    """The checksum written with a row (the current format: ``0x01`` and XXH3-128)."""
    head = b"".join((namespace.encode(), b"\x00", key, b"\x00", version.to_bytes(8, "big")))
    if len(value) > _SPLIT:
        h = _xxh3_128(head)
        h.update(value)
        return _XXH3 + h.digest()
    return _XXH3 + _xxh3_128_digest(head + value)


def _legacy_row_sum(namespace: str, key: bytes, version: int, value: bytes) -> bytes:
    """BLAKE2b-64 over the same bytes: the checksum of rows written before schema version 3."""
    head = b"".join((namespace.encode(), b"\x00", key, b"\x00", version.to_bytes(8, "big")))
    if len(value) > _SPLIT:
        h = _blake2b(head, digest_size=_LEGACY_SIZE)
        h.update(value)
        return h.digest()
    return _blake2b(head + value, digest_size=_LEGACY_SIZE).digest()


def _row_ok(namespace: str, key: bytes, version: int, value: bytes, checksum: bytes | None) -> bool:
    """Whether ``checksum`` (as stored, in either format) matches the row's bytes."""
    if checksum is None:
        return False
    if len(checksum) == ROW_SUM_SIZE:
        return checksum == _row_sum(namespace, key, version, value)
    if len(checksum) == _LEGACY_SIZE:
        return checksum == _legacy_row_sum(namespace, key, version, value)
    return False
