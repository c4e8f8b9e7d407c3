"""Time-sortable identifiers (UUIDv7, RFC 9562) and their validation.

Ids made by :func:`new_id` sort by creation time as plain strings, to the millisecond; ids made in
the same millisecond by one process keep their creation order too (a monotonic counter fills the
``rand_a`` field), so a store can list newest-first by key order alone.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

from runtime_core.errors import ValidationError

__all__ = ["id_timestamp", "new_id", "validate_id"]

_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_lock = threading.Lock()
_last_ms = 0
_counter = 0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def new_id(now_ms: int | None = None) -> str:
    """Return a new UUIDv7 as a lowercase string (36 characters), greater than every id this
    process returned before."""
    global _last_ms, _counter
    if now_ms is not None and (
        isinstance(now_ms, bool) or not isinstance(now_ms, int) or not 0 <= now_ms < 1 << 48
    ):
        raise ValidationError(f"now_ms must be milliseconds since 1970 in 0..2**48-1, got {now_ms!r:.40}")
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    with _lock:
        if ms <= _last_ms:
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:  # 4096 ids in one millisecond: borrow the next millisecond
                ms += 1
                _counter = 0
        else:
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave room to count up
        _last_ms = ms
        counter = _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


def validate_id(value: object, what: str = "id") -> str:
    """Return ``value`` if it is a well-formed Keepup id, else raise :class:`ValidationError`."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise ValidationError(
            f"{what} must be a UUIDv7 string like '0190c8e2-7b4a-7c3d-8e9f-0123456789ab', got {value!r:.80}"
        )
    return value


def id_timestamp(value: str) -> datetime:
    """The creation time (UTC, millisecond precision) encoded in an id from :func:`new_id`."""
    validate_id(value)
    ms = int(value.replace("-", "")[:12], 16)
    return _EPOCH + timedelta(milliseconds=ms)
