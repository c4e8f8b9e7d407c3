"""The I/O-free half of the session message log and of sessions' external keys: key layouts,
the stored chunk shape and the checks on what was read. Shared by the async sources in
``_async/`` and the sync classes generated from them."""

from __future__ import annotations

from typing import Any

import msgspec
from runtime_core import CorruptionError, Serializer, ValidationError, validate_id

MESSAGE_NS = "session.message"
SESSION_KEY_NS = "session.key"
CHUNK_FORMAT = 1
SEQ_DIGITS = 12
MAX_SEQ = 10**SEQ_DIGITS - 1
MESSAGE_PAGE = 256
MESSAGE_MAX_TRIES = 10_000
PACK_BYTES = 16 << 10  # an append joins the last chunk while the result stays this small
PACK_SLACK = 256  # room for the envelope when the store's record limit is smaller
_SEQ_SLACK = 64  # room for the envelope around a chunk measured before it is written


class MessageChunk(msgspec.Struct, frozen=True):
    """Items of a session's message log (namespace ``session.message``, key
    ``{session_id}/{seq}``), oldest first: those of one append, or of consecutive small appends.
    Written create-only; an append that joins it or a pop rewrites only the last chunk of a log,
    by compare-and-set."""

    format: int
    session_id: str
    seq: int
    items: list[Any]


class SessionKey(msgspec.Struct, frozen=True):
    """A caller-chosen external key of a session (namespace ``session.key``, key = the external
    key): written create-only, so one key names one session on every driver."""

    key: str
    session_id: str


def message_key(session_id: str, seq: int) -> str:
    if seq > MAX_SEQ:
        raise ValidationError(f"message log of session {session_id} has used every chunk number")
    return f"{session_id}/{seq:0{SEQ_DIGITS}d}"


def seq_of(key: str) -> int:
    return int(key.rsplit("/", 1)[1])


def check_session_id(session_id: object) -> str:
    return validate_id(session_id, "session id")


def check_count(n: object, what: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValidationError(f"{what} must be a non-negative integer, got {n!r:.40}")
    return n


def split_items(ser: Serializer, session_id: str, items: list[Any], max_size: int) -> list[list[Any]]:
    """``items`` cut into the fewest runs whose chunks fit in one record (``max_size`` bytes, and
    whatever limit the serializer keeps; one run unless the items are very large). Raises the
    codec's ValidationError for an item it refuses or that cannot fit in a record alone; nothing
    has been written then."""

    def fits(run: list[Any]) -> bool:
        try:
            encoded = ser.dumps(MessageChunk(CHUNK_FORMAT, session_id, MAX_SEQ, run))
        except ValidationError:
            if len(run) == 1:
                raise
            return False
        if len(encoded) + _SEQ_SLACK > max_size:
            if len(run) == 1:
                raise ValidationError(
                    f"a message log item of {len(encoded)} bytes does not fit in one record of this "
                    f"store (at most {max_size})"
                )
            return False
        return True

    if fits(items):
        return [items]
    middle = len(items) // 2
    return split_items(ser, session_id, items[:middle], max_size) + split_items(
        ser, session_id, items[middle:], max_size
    )


def decode_chunk(ser: Serializer, session_id: str, key: str, data: bytes) -> MessageChunk:
    """The chunk stored under ``key``; CorruptionError when it names another place."""
    chunk: MessageChunk = ser.loads(data, MessageChunk, at=(MESSAGE_NS, key))
    if chunk.session_id != session_id or chunk.seq != seq_of(key) or not chunk.items:
        raise CorruptionError(f"message log record {key!r} does not belong under that key")
    return chunk


def decode_session_key(ser: Serializer, key: str, data: bytes) -> SessionKey:
    found: SessionKey = ser.loads(data, SessionKey, at=(SESSION_KEY_NS, key))
    if found.key != key:
        raise CorruptionError(f"session key record {key!r:.80} does not belong under that key")
    validate_id(found.session_id, "session id")
    return found
