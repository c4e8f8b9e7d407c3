"""Content-addressed storage of checkpoint state (channels), shared between consecutive checkpoints.

A checkpoint record does not hold its state; it holds one :class:`ChannelRef` per channel:

* ``INLINE``: values whose envelope is at most :data:`INLINE_MAX` bytes live in the record itself
  (a digest would be about as large as they are);
* ``BLOB``: any other value is one blob, addressed by the SHA-256 of its envelope;
* ``CHUNKED``: a list stored as several blobs, each holding a run of its items, read back by
  concatenating them. How a list is cut is in ``checkpoint/_layout.py``: sealed chunks of about
  :data:`~runtime_persistence.checkpoint._layout.SEAL_BYTES` cut by item sizes from the start, then
  tail pieces holding what each save appended, so an append writes about the appended bytes.
  Earlier versions cut lists into fixed chunks of :data:`CHUNK_ITEMS` items; those records read
  the same way (a chunk is any run of items), and the first save after them cuts the list afresh.

Each blob reference is 33 bytes: a location byte and the raw digest. Blobs up to
:data:`KV_BLOB_MAX` bytes live in the ``ckpt.blob`` namespace of the key-value store (key: the hex
digest; value: an 8-byte write time in milliseconds, then the envelope), so that a save puts its
new blobs, its record and the thread head in one batch, a single transaction on drivers with
atomic batches. Larger blobs go to the driver's blob area (``put_blob``), written before the batch.
Either way blobs are written first, then the record that names them, then the head.

A value (or list) that has not changed since the parent keeps the parent's blob without being
serialized or hashed again: the store object that saved the parent remembers each blob's plain
MessagePack bytes (``LayoutMemo``, bounded) and compares them with the new value's, byte for
byte; a store object that does not remember them serializes the value, and its digest finds the
parent's blob.

Reads verify everything: the SHA-256 of every blob against its address and the envelope checksum
of its content; a mismatch raises CorruptionError.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import msgspec
from runtime_core import (
    Clock,
    CorruptionError,
    Put,
    Serializer,
)

from runtime_persistence.checkpoint._channel_ref import ChannelRef, copy_plain
from runtime_persistence.checkpoint._layout import (
    SPLIT_BYTES,
    LayoutMemo,
    Piece,
    Segment,
    array_header_size,
    extend,
    fresh,
    matches,
)
from runtime_persistence.storage.serialization import EnvelopeSerializer

__all__ = [
    "BLOB",
    "BLOB_NS",
    "CHUNKED",
    "CHUNK_ITEMS",
    "INLINE",
    "INLINE_MAX",
    "KV_BLOB_MAX",
    "LOC_AREA",
    "LOC_KV",
    "ChannelCodec",
    "ChannelRef",
    "EncodedState",
    "copy_plain",
    "dumps_checked",
]

BLOB_NS = "ckpt.blob"
INLINE_MAX = 256
CHUNK_ITEMS = 16
"""The item count of the fixed chunks earlier versions cut lists into (their records still read)."""
KV_BLOB_MAX = 1 << 20

INLINE = 0
BLOB = 1
CHUNKED = 2

LOC_KV = 1
LOC_AREA = 2

_STAMP = struct.Struct(">Q")
_PLAIN_ENCODER = msgspec.msgpack.Encoder()
_PLAIN_DECODER = msgspec.msgpack.Decoder()
_RAW_ITEMS = msgspec.msgpack.Decoder(list[msgspec.Raw])


def dumps_checked(
    serializer: Serializer, value: Any, *, at: tuple[str, str] | None = None, payload: bytes | None = None
) -> bytes:
    """``serializer.dumps(value, at=at)`` of a value already checked as plain data (see
    :meth:`EnvelopeSerializer.dumps_checked`: the same bytes without a second walk over the value;
    ``payload`` is its plain MessagePack encoding when the caller has it). Any other serializer
    makes its own checks."""
    if type(serializer) is EnvelopeSerializer:
        return serializer.dumps_checked(value, at=at, payload=payload)
    return serializer.dumps(value, at=at)


def _array(count: int, items: bytes) -> bytes:
    """The MessagePack array of ``count`` items whose encodings, back to back, are ``items``."""
    if count < 16:
        return bytes((0x90 | count,)) + items
    if count < 1 << 16:
        return b"\xdc" + count.to_bytes(2, "big") + items
    return b"\xdd" + count.to_bytes(4, "big") + items


def _small(value: Any) -> bool:
    """Whether ``value`` is small enough to live inline in a record (about INLINE_MAX bytes)."""
    if value is None or isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, (str, bytes)) and len(value) > INLINE_MAX:
        return False
    try:
        return len(_PLAIN_ENCODER.encode(value)) <= INLINE_MAX
    except (TypeError, ValueError, OverflowError):
        return False  # the serializer will say what is wrong with it


def _plain_or_none(value: Any) -> bytes | None:
    """The plain MessagePack encoding of ``value``, or None when it has none (the serializer
    will then say what is wrong with it)."""
    try:
        return _PLAIN_ENCODER.encode(value)
    except (TypeError, ValueError, OverflowError, RecursionError, msgspec.EncodeError):
        return None


WHOLE = -1
"""The ``count`` of a remembered piece that holds a whole value, not items of a list."""


def _same_value(candidates: list[tuple[Piece, ...]], payload: bytes) -> bytes | None:
    """The ref of a parent blob holding a value whose plain encoding is exactly ``payload``."""
    for layout in candidates:
        if len(layout) == 1 and layout[0].count == WHOLE and layout[0].body == payload:
            return layout[0].ref
    return None


def _with_sizes(piece: Piece) -> Piece:
    """``piece`` with the encoded size of each of its items (worked out from its bytes when a
    list stored as one blob starts to grow)."""
    if piece.sizes is not None:
        return piece
    header = msgspec.msgpack.encode([None] * piece.count)[: -piece.count]
    sizes = tuple(len(raw) for raw in _RAW_ITEMS.decode(header + piece.body))
    return Piece(piece.ref, sizes, piece.body, piece.sealed, piece.count)


class EncodedState(msgspec.Struct, frozen=True):
    """The result of encoding a state: its channel refs and the blobs that must be written first."""

    refs: dict[str, ChannelRef]
    kv_puts: list[Put]
    area_blobs: list[bytes]


def ref_digest(ref: bytes) -> str:
    """The hex SHA-256 named by a 33-byte blob reference."""
    return ref[1:].hex()


def iter_blob_refs(refs: Mapping[str, ChannelRef]) -> Iterator[bytes]:
    """Every blob reference (33 bytes) a record's channels name."""
    for ref in refs.values():
        yield from ref.blobs


def _check_ref(ref: object) -> bytes:
    if not isinstance(ref, bytes) or len(ref) != 33 or ref[0] not in (LOC_KV, LOC_AREA):
        raise CorruptionError("a blob reference in a checkpoint record is malformed")
    return ref


class _BlobCache:
    """A bounded LRU of verified blob contents (as plain MessagePack) by reference. Blobs are
    immutable and content-addressed, so a cached copy is never stale."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._size = 0
        self._items: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, ref: bytes) -> bytes | None:
        with self._lock:
            data = self._items.get(ref)
            if data is not None:
                self._items.move_to_end(ref)
            return data

    def put(self, ref: bytes, data: bytes) -> None:
        if len(data) > self._max // 4:
            return
        with self._lock:
            if ref in self._items:
                return
            self._items[ref] = data
            self._size += len(data)
            while self._size > self._max:
                _, old = self._items.popitem(last=False)
                self._size -= len(old)


class ChannelCodec:
    """The pure half of the channel store: encodes states into channel refs plus blobs, and keeps
    the cache of verified blob contents. The half that reads and writes blobs is
    :class:`runtime_persistence.checkpoint._async.channels.AsyncChannelStore` (and its generated
    sync twin ``ChannelStore``)."""

    def __init__(
        self, max_value_size: int, serializer: Serializer, clock: Clock, *, cache_bytes: int = 64 << 20
    ) -> None:
        self._serializer = serializer
        self._clock = clock
        self._cache = _BlobCache(cache_bytes)
        self._layouts = LayoutMemo(cache_bytes)
        self._kv_max = min(KV_BLOB_MAX, max(0, max_value_size - _STAMP.size))

    def encode(
        self, state: Mapping[str, Any], known: Iterable[bytes] = (), *, checked: bool = False
    ) -> EncodedState:
        """Split ``state`` into refs and the blobs to write. Blobs named in ``known`` (those the
        parent checkpoint already references, hence stored and kept alive) are not written again;
        a list that grew at its end writes about its new items (see ``checkpoint/_layout.py``).
        ``checked``: the state passed ``check_plain`` (a validated ``Checkpoint``'s), so its
        blobs are serialized from the plain encoding without walking the values again."""
        dump = self._dump if checked else self._dump_unchecked
        parent = frozenset(known)
        skip = set(parent)
        stamp = _STAMP.pack(int(self._clock.now().timestamp() * 1000))
        kv_puts: list[Put] = []
        area: list[bytes] = []
        refs: dict[str, ChannelRef] = {}
        candidates: list[tuple[Piece, ...]] | None = None

        def blob(envelope: bytes) -> bytes:
            digest = hashlib.sha256(envelope).digest()
            loc = LOC_KV if len(envelope) <= self._kv_max else LOC_AREA
            ref = bytes((loc,)) + digest
            if ref not in skip:
                skip.add(ref)
                if loc == LOC_KV:
                    kv_puts.append(Put(BLOB_NS, digest.hex(), stamp + envelope))
                else:
                    area.append(envelope)
            return ref

        for name, value in state.items():
            if isinstance(value, (list, tuple)) and value:
                payload = _plain_or_none(value)
                if payload is not None and len(payload) > INLINE_MAX:
                    if candidates is None:
                        candidates = self._layouts.candidates(parent) if parent else []
                    refs[name] = self._encode_list(list(value), payload, candidates, blob, dump)
                    continue
            if _small(value):  # the record's own envelope checks inline values
                # a copy: the record is cached, and the caller may mutate its own object later
                refs[name] = ChannelRef(INLINE, copy_plain(value))
                continue
            payload = _plain_or_none(value)
            if payload is not None and parent:
                if candidates is None:
                    candidates = self._layouts.candidates(parent)
                same = _same_value(candidates, payload)
                if same is not None:  # unchanged since the parent: no serializing, no hashing
                    refs[name] = ChannelRef(BLOB, None, [same])
                    continue
            ref = blob(dump(value, payload))
            if payload is not None:
                self._layouts.remember((Piece(ref, None, payload, False, WHOLE),))
            refs[name] = ChannelRef(BLOB, None, [ref])
        return EncodedState(refs, kv_puts, area)

    def _encode_list(
        self,
        items: list[Any],
        payload: bytes,
        candidates: list[tuple[Piece, ...]],
        blob: Callable[[bytes], bytes],
        dump: Callable[[Any, bytes | None], bytes],
    ) -> ChannelRef:
        """The ref of a list whose plain MessagePack encoding is ``payload``: extended from the
        remembered layout of the parent's list when the list only grew at its end, else cut
        afresh. New pieces go through ``blob`` (the serializer validates their items)."""
        head = array_header_size(payload)
        n = len(items)
        best: tuple[Piece, ...] | None = None
        covered = -1
        for layout in candidates:  # longest first: the first that matches is the best
            if layout[0].count == WHOLE:
                continue
            c = matches(layout, payload, head, n)
            if c >= 0:
                best, covered = layout, c
                break
        segments: list[Segment] | None = None
        sizes: list[int] = []
        if best is not None:
            kept = sum(p.count for p in best)
            new_sizes = [len(_PLAIN_ENCODER.encode(x)) for x in items[kept:]]
            if sum(new_sizes) == len(payload) - head - covered:
                best = tuple(_with_sizes(p) for p in best)
                segments = extend(best, new_sizes)
                sizes = [s for p in best for s in p.sizes or ()] + new_sizes
        if segments is None:
            if len(payload) - head < SPLIT_BYTES:  # one blob; item sizes only if it grows later
                ref = blob(dump(items, payload))
                self._layouts.remember((Piece(ref, None, payload[head:], False, n),))
                return ChannelRef(BLOB, None, [ref])
            sizes = [len(raw) for raw in _RAW_ITEMS.decode(payload)]
            segments = fresh(sizes)
        offsets = list(itertools.accumulate(sizes, initial=head))
        pieces: list[Piece] = []
        for seg in segments:
            if seg.piece is not None:
                pieces.append(seg.piece)
                continue
            a, b = seg.start, seg.stop
            ref = blob(dump(items[a:b], _array(b - a, payload[offsets[a] : offsets[b]])))
            pieces.append(Piece(ref, tuple(sizes[a:b]), payload[offsets[a] : offsets[b]], seg.sealed, b - a))
        layout = tuple(pieces)
        if best is not None and best[-1].ref != pieces[-1].ref:
            self._layouts.forget(best)
        self._layouts.remember(layout)
        if len(pieces) == 1:
            return ChannelRef(BLOB, None, [pieces[0].ref])
        return ChannelRef(CHUNKED, None, [p.ref for p in pieces], n)

    def _dump(self, value: Any, payload: bytes | None) -> bytes:
        return dumps_checked(self._serializer, value, payload=payload)

    def _dump_unchecked(self, value: Any, payload: bytes | None) -> bytes:
        return self._serializer.dumps(value)

    def cached(self, ref: bytes) -> tuple[bool, Any]:
        """(True, a fresh copy of the value) when blob ``ref`` was verified before, else (False, None)."""
        _check_ref(ref)
        plain = self._cache.get(ref)
        if plain is None:
            return False, None
        return True, _PLAIN_DECODER.decode(plain)

    def verified(self, ref: bytes, envelope: bytes | memoryview) -> Any:
        """Decode the verified envelope of blob ``ref`` and remember its value."""
        plain: bytes | None = None
        if type(self._serializer) is EnvelopeSerializer:  # its checked payload is plain MessagePack
            value, plain = self._serializer.loads_plain(envelope, content_addressed=True)
        else:
            value = self._serializer.loads(bytes(envelope), content_addressed=True)
        self._cache.put(ref, _PLAIN_ENCODER.encode(value) if plain is None else plain)
        return value

    def kv_put_for(self, ref: bytes, envelope: bytes) -> Put:
        """A fresh (re-stamped) put of a KV blob, for copying blobs between stores (import)."""
        stamp = _STAMP.pack(int(self._clock.now().timestamp() * 1000))
        return Put(BLOB_NS, ref_digest(ref), stamp + envelope)


def check_ref(ref: object) -> bytes:
    """``ref`` if it is a well-formed 33-byte blob reference; CorruptionError otherwise."""
    return _check_ref(ref)


def kv_envelope(digest: str, value: bytes) -> bytes:
    """The envelope of a KV blob stored as ``value`` under ``digest``, after its digest check."""
    envelope = value[_STAMP.size :]
    if len(value) < _STAMP.size or hashlib.sha256(envelope).hexdigest() != digest:
        raise CorruptionError(f"blob {digest} failed its digest check: the stored bytes were damaged")
    return envelope


def kv_envelope_view(digest: str, value: bytes) -> memoryview:
    """:func:`kv_envelope` as a view into ``value`` (no copy of the envelope)."""
    envelope = memoryview(value)[_STAMP.size :]
    if len(value) < _STAMP.size or hashlib.sha256(envelope).hexdigest() != digest:
        raise CorruptionError(f"blob {digest} failed its digest check: the stored bytes were damaged")
    return envelope


def assemble(name: str, ref: ChannelRef, loaded: list[Any]) -> Any:
    """The value of channel ``name`` from its ref and the values of the blobs it names (in order)."""
    if ref.kind == INLINE:
        return copy_plain(ref.value)
    if ref.kind == BLOB:
        if len(ref.blobs) != 1:
            raise CorruptionError(f"channel {name!r} names {len(ref.blobs)} blobs, not 1")
        return loaded[0]
    if ref.kind == CHUNKED:
        items: list[Any] = []
        for chunk in loaded:
            if not isinstance(chunk, list):
                raise CorruptionError(f"a chunk of channel {name!r} is not a list")
            items.extend(chunk)
        if len(items) != ref.count:
            raise CorruptionError(
                f"channel {name!r} has {len(items)} items in its chunks, its record says {ref.count}"
            )
        return items
    raise CorruptionError(f"channel {name!r} has an unknown storage kind {ref.kind}")


def kv_blob_written_ms(value: bytes) -> int:
    """The write time (ms since the epoch) stored in front of a KV blob."""
    if len(value) < _STAMP.size:
        raise CorruptionError("a stored blob is shorter than its header")
    return int(_STAMP.unpack_from(value)[0])
