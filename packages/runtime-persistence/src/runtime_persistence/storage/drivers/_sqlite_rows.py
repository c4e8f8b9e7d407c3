"""The checksum of a SQLite row, shared by the driver and its backups."""

from __future__ import annotations

from hashlib import blake2b as _blake2b

__all__ = ["_row_sum"]


def _row_sum(namespace: str, key: bytes, version: int, value: bytes) -> bytes:
    """BLAKE2b-64 over a row's namespace, key, version and value. Namespaces and keys contain no
    NUL, so the concatenation is unambiguous."""
    if len(value) > 4096:  # hash large values in place rather than copying them
        h = _blake2b(
            b"".join((namespace.encode(), b"\x00", key, b"\x00", version.to_bytes(8, "big"))), digest_size=8
        )
        h.update(value)
        return h.digest()
    return _blake2b(
        b"".join((namespace.encode(), b"\x00", key, b"\x00", version.to_bytes(8, "big"), value)),
        digest_size=8,
    ).digest()
