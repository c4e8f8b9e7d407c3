# Generated from packages/runtime-persistence/src/runtime_persistence/session/_async/messages.py by scripts/gen_sync.py: edit that file and rerun the script.
"""The message log of a session (:class:`MessageLog`): append, the last n items, pop and
clear, atomic across processes on every driver. Written once as async code in
``session/_async/``; the sync twin in ``session/_sync/`` is generated from it
(scripts/gen_sync.py).

Layout::

    session.message  {session_id}/{seq}   one chunk: the items of one or more appends, in order

Chunk numbers are zero-padded, so key order is log order and "the last n items" is a reverse
scan that stops as soon as it holds n items, however long the log. An append reads the last
chunk. While that chunk is small (under :data:`PACK_BYTES` stored) the append rewrites it with
its items added, by compare-and-set on its version, so a log of many small appends (a chat's
turns) is read back from few rows; otherwise it writes the next chunk number create-only. Two
writers that read the same last chunk collide, and the loser reads the tail again and retries,
so concurrent appends from any number of processes never overwrite each other and the items of
one append stay together. Logs written one chunk per append (before chunks were packed) read
and grow unchanged. A pop removes the newest
item by compare-and-set on the last chunk (rewritten without it, or deleted), so two pops never
return the same item. Clear deletes the chunks that existed when it started.

Items are any value the codec stores (None, bool, int, float, str, bytes, lists, dicts with str
keys, datetimes, UUIDs); they come back as equal plain values.

Reading a long log decodes one envelope per chunk. A log object remembers the chunks it decoded
whose items are all immutable scalars (text, bytes, numbers, None: what a framework adapter that
stores JSON text appends), keyed by the exact stored bytes, so reading the same history again
skips the decoding but never returns anything other than what those bytes hold (up to
:data:`DECODED_CACHE_BYTES` of stored bytes per log object).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runtime_core import (
    ConflictError,
    CorruptionError,
    Delete,
    Driver,
    Entry,
    Serializer,
    ValidationError,
)

from runtime_persistence.session._message_records import (
    CHUNK_FORMAT,
    MESSAGE_MAX_TRIES,
    MESSAGE_NS,
    MESSAGE_PAGE,
    PACK_BYTES,
    PACK_SLACK,
    MessageChunk,
    check_count,
    check_session_id,
    decode_chunk,
    message_key,
    seq_of,
    split_items,
)
from runtime_persistence.storage.serialization import EnvelopeSerializer

__all__ = ["DECODED_CACHE_BYTES", "MessageLog"]

DECODED_CACHE_BYTES = 8 << 20
_SCALARS = (str, bytes, int, float, bool, type(None))


class MessageLog:
    """Per-session message logs over any driver (the sync class :class:`MessageLog` has the same
    methods, guarantees and errors). Logs are named by a Keepup session id; the log of a session
    that was never written to is empty. Every write is as durable as the driver (durable by
    default) when the call returns."""

    def __init__(self, driver: Driver, *, serializer: Serializer | None = None) -> None:
        self._driver = driver
        self._ser: Serializer = serializer or EnvelopeSerializer()
        self._decoded: dict[tuple[str, bytes], MessageChunk] = {}
        self._decoded_bytes = 0

    def append(self, session_id: str, items: Sequence[Any]) -> int:
        """Add ``items`` at the end of the log, together (no other append lands between them,
        unless they are too large for one record of the store) and return how many were added.
        Raises ValidationError, with nothing written, for a malformed session id or an item the
        codec refuses."""
        session_id = check_session_id(session_id)
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
            raise ValidationError(f"append takes a sequence of items, got {type(items).__name__}")
        pending = (
            split_items(self._ser, session_id, list(items), self._driver.max_value_size) if items else []
        )
        added = len(items)
        for _ in range(MESSAGE_MAX_TRIES):
            if not pending:
                return added
            tail = self._tail(session_id)
            seq = seq_of(tail.key) + 1 if tail is not None else 0
            if tail is not None and len(pending) == 1 and len(tail.value) < PACK_BYTES:
                # a small append joins the last chunk (compare-and-set): the log keeps few rows
                last = self._chunk(session_id, tail.key, tail.value)
                merged = MessageChunk(CHUNK_FORMAT, session_id, last.seq, [*last.items, *pending[0]])
                try:
                    data = self._ser.dumps(merged, at=(MESSAGE_NS, tail.key))
                except ValidationError:  # over the serializer's record limit: a chunk of its own
                    data = b""
                if 0 < len(data) <= min(PACK_BYTES, self._driver.max_value_size - PACK_SLACK):
                    try:
                        self._driver.put(MESSAGE_NS, tail.key, data, if_version=tail.version)
                    except ConflictError:
                        continue  # another append or a pop changed it: read the tail again
                    return added
            while pending:
                chunk = MessageChunk(CHUNK_FORMAT, session_id, seq, pending[0])
                try:
                    self._driver.put(
                        MESSAGE_NS,
                        message_key(session_id, seq),
                        self._ser.dumps(chunk, at=(MESSAGE_NS, message_key(session_id, seq))),
                        if_absent=True,
                    )
                except ConflictError:
                    break
                pending.pop(0)
                seq += 1
        raise ConflictError(
            f"the message log of session {session_id} kept growing under this append; try again"
        )

    def last(self, session_id: str, n: int | None = None) -> list[Any]:
        """The last ``n`` items of the log (every item when ``n`` is None), oldest first. Reads
        only the chunks that hold them."""
        session_id = check_session_id(session_id)
        if n is None:
            out: list[Any] = []
            after: str | None = None
            while True:
                page = [
                    e
                    for e in self._driver.scan(
                        MESSAGE_NS, prefix=f"{session_id}/", after=after, limit=MESSAGE_PAGE
                    )
                ]
                for entry in page:
                    out.extend(self._chunk(session_id, entry.key, entry.value).items)
                if len(page) < MESSAGE_PAGE:
                    return out
                after = page[-1].key
        n = check_count(n)
        if n == 0:
            return []
        newest_first: list[list[Any]] = []
        held = 0
        before: str | None = None
        page_size = 1  # a packed last chunk often holds them all; then as many as seem needed
        while held < n:
            page = [
                e
                for e in self._driver.scan(
                    MESSAGE_NS, prefix=f"{session_id}/", before=before, reverse=True, limit=page_size
                )
            ]
            for entry in page:
                items = self._chunk(session_id, entry.key, entry.value).items
                newest_first.append(items)
                held += len(items)
                if held >= n:
                    break
            if len(page) < page_size or held >= n:
                break
            before = page[-1].key
            per_chunk = max(1, held // len(newest_first))
            page_size = min(max(2, -(-(n - held) // per_chunk)), MESSAGE_PAGE)
        flat = [item for items in reversed(newest_first) for item in items]
        return flat[-n:]

    def pop(self, session_id: str, default: Any = None) -> Any:
        """Remove the newest item and return it (``default`` when the log is empty). Concurrent
        pops each get a different item; a pop never removes an item twice."""
        session_id = check_session_id(session_id)
        for _ in range(MESSAGE_MAX_TRIES):
            tail = [e for e in self._driver.scan(MESSAGE_NS, prefix=f"{session_id}/", reverse=True, limit=1)]
            if not tail:
                return default
            entry = tail[0]
            chunk = self._chunk(session_id, entry.key, entry.value)
            try:
                if len(chunk.items) == 1:
                    if not self._driver.delete(MESSAGE_NS, entry.key, if_version=entry.version):
                        continue
                else:
                    rest = MessageChunk(CHUNK_FORMAT, session_id, chunk.seq, chunk.items[:-1])
                    self._driver.put(
                        MESSAGE_NS,
                        entry.key,
                        self._ser.dumps(rest, at=(MESSAGE_NS, entry.key)),
                        if_version=entry.version,
                    )
            except ConflictError:
                continue
            return chunk.items[-1]
        raise ConflictError(
            f"the message log of session {session_id} kept changing under this pop; try again"
        )

    def clear(self, session_id: str) -> None:
        """Remove every item the log held when the call started. Items appended while it runs
        may stay (as if appended after it) or, when they joined the chunk that was the last one
        when it started, go with it (as if appended before it)."""
        session_id = check_session_id(session_id)
        before = message_key(session_id, self._next_seq(session_id))
        after: str | None = None
        while True:
            page = [
                e
                for e in self._driver.scan(
                    MESSAGE_NS, prefix=f"{session_id}/", after=after, before=before, limit=MESSAGE_PAGE
                )
            ]
            if not page:
                return
            if self._driver.atomic_batch:
                self._driver.batch([Delete(MESSAGE_NS, e.key) for e in page])
            else:
                for entry in page:
                    self._driver.delete(MESSAGE_NS, entry.key)
            after = page[-1].key

    def _chunk(self, session_id: str, key: str, value: bytes) -> MessageChunk:
        """The chunk ``value`` holds, checked against ``key``; decoded once per stored bytes."""
        chunk = self._decoded.get((key, value))  # by place too: records are bound to their key
        if chunk is None:
            chunk = decode_chunk(self._ser, session_id, key, value)
            if all(type(item) in _SCALARS for item in chunk.items):
                if self._decoded_bytes + len(value) > DECODED_CACHE_BYTES:
                    self._decoded, self._decoded_bytes = {}, 0
                self._decoded[(key, bytes(value))] = chunk
                self._decoded_bytes += len(value)
        elif chunk.session_id != session_id or key != message_key(session_id, chunk.seq):
            raise CorruptionError(f"message log record {key!r} does not belong under that key")
        return chunk

    def _tail(self, session_id: str) -> Entry | None:
        tail = [e for e in self._driver.scan(MESSAGE_NS, prefix=f"{session_id}/", reverse=True, limit=1)]
        return tail[0] if tail else None

    def _next_seq(self, session_id: str) -> int:
        tail = self._tail(session_id)
        return seq_of(tail.key) + 1 if tail is not None else 0
