"""How a long list channel is cut into stored pieces, so that an append writes about the appended
bytes and not the list's last chunk.

A list (the messages of a conversation) is stored as a run of *pieces*, each one blob holding
consecutive items as a MessagePack array; the record names the pieces in order (a ``CHUNKED``
channel ref, read back by concatenating them, as fixed-size chunks always were).

* **Sealed chunks.** The list is cut greedily from its start: a chunk ends after the item that
  brings its encoded size to :data:`SEAL_BYTES` or more. Where a chunk ends depends only on the
  sizes of the items before it, so every writer, in any process, cuts a list's prefix the same
  way, and a sealed chunk is shared by every later checkpoint of a list that grows at its end.
* **The tail** is what follows the last sealed chunk (less than :data:`SEAL_BYTES`). A writer
  that remembers the parent's layout (:class:`LayoutMemo`: it saved or derived the parent in this
  process) keeps the parent's tail pieces and stores the items the new save appended as one new
  piece. When the tail reaches :data:`SEAL_BYTES` it becomes one sealed chunk, its items written a
  second time. Each appended byte is therefore written at most twice, and a list of *n* bytes is
  read from about ``n / SEAL_BYTES`` sealed chunks plus the tail's pieces.
* **Without the parent's layout** (another process saved it, the memo forgot it, or the list
  changed other than at its end) the writer cuts the list afresh: the same sealed chunks, found
  among the parent's blobs by digest and not written again, and the tail as one piece. A list
  whose encoded size is under :data:`SPLIT_BYTES` is then one blob.

The memo is only ever a shortcut: a remembered layout is used when every piece it names is a blob
of the parent (so stored and kept alive) and the new list's MessagePack encoding starts with the
remembered pieces' bytes, compared byte for byte, never by hash. MessagePack is self-delimiting,
so equal leading bytes mean equal leading items, of the same types.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "SEAL_BYTES",
    "SPLIT_BYTES",
    "LayoutMemo",
    "Piece",
    "Segment",
    "array_header_size",
    "extend",
    "fresh",
    "matches",
]

SEAL_BYTES = 16 << 10
"""A sealed chunk ends after the item that brings its encoded size to this many bytes or more."""

SPLIT_BYTES = 16 << 10
"""Cut afresh, a list whose encoded size is under this is stored as one blob."""


@dataclass(frozen=True, slots=True)
class Piece:
    """One stored piece of a list: the blob ``ref`` holding ``count`` items whose encoded sizes
    are ``sizes``, ``body`` their MessagePack encodings concatenated, ``sealed`` for a chunk cut
    by the greedy rule (tail pieces are not sealed)."""

    ref: bytes
    sizes: tuple[int, ...] | None  # None: not worked out yet (a list stored as one blob)
    body: bytes
    sealed: bool
    count: int


@dataclass(frozen=True, slots=True)
class Segment:
    """A planned piece: items ``start:stop`` of the list, reusing ``piece`` when it is set (its
    blob is stored already) and written as a new blob otherwise."""

    start: int
    stop: int
    sealed: bool
    piece: Piece | None = None


def array_header_size(payload: bytes) -> int:
    """The size of the MessagePack array header that starts ``payload`` (fixarray, array 16 or
    array 32)."""
    first = payload[0]
    if 0x90 <= first <= 0x9F:
        return 1
    if first == 0xDC:
        return 3
    if first == 0xDD:
        return 5
    raise ValueError("not a MessagePack array")


def _greedy(sizes: Sequence[int], offset: int) -> tuple[list[tuple[int, int]], int]:
    """Cut ``sizes`` greedily into chunks of at least SEAL_BYTES: the (start, stop) of each
    sealed chunk (shifted by ``offset``), and where the unsealed rest starts."""
    chunks: list[tuple[int, int]] = []
    acc = 0
    start = 0
    for i, size in enumerate(sizes):
        acc += size
        if acc >= SEAL_BYTES:
            chunks.append((offset + start, offset + i + 1))
            start, acc = i + 1, 0
    return chunks, offset + start


def fresh(sizes: Sequence[int]) -> list[Segment]:
    """The layout of a list cut afresh (without its parent's layout): one segment when it is
    under SPLIT_BYTES encoded, else the sealed chunks and the rest as one tail piece."""
    n = len(sizes)
    if sum(sizes) < SPLIT_BYTES:
        return [Segment(0, n, False)]
    chunks, rest = _greedy(sizes, 0)
    segments = [Segment(a, b, True) for a, b in chunks]
    if rest < n:
        segments.append(Segment(rest, n, False))
    return segments


def extend(parent: Sequence[Piece], new_sizes: Sequence[int]) -> list[Segment] | None:
    """The layout of the parent's list with items of ``new_sizes`` appended: the parent's sealed
    chunks and tail pieces kept, the appended items one new piece, and the tail sealed into
    chunks where the greedy rule cuts it. None when ``parent`` is not a layout this module made
    (a sealed piece after a tail piece)."""
    if not new_sizes:
        return [Segment(0, 0, p.sealed, p) for p in parent]
    sealed = 0
    while sealed < len(parent) and parent[sealed].sealed:
        sealed += 1
    tail = parent[sealed:]
    if any(p.sealed for p in tail):
        return None
    segments = [Segment(0, 0, True, p) for p in parent[:sealed]]
    base = sum(p.count for p in parent[:sealed])
    tail_sizes = [s for p in tail for s in p.sizes or ()]
    if len(tail_sizes) != sum(p.count for p in tail):
        return None  # a tail piece without its item sizes
    old = len(tail_sizes)
    starts = []
    pos = 0
    for p in tail:
        starts.append(pos)
        pos += p.count
    chunks, rest = _greedy([*tail_sizes, *new_sizes], base)
    by_range = {(base + s, base + s + p.count): p for s, p in zip(starts, tail, strict=True)}
    for a, b in chunks:
        # a tail piece that alone reaches SEAL_BYTES (a list first stored as one blob) is sealed as is
        segments.append(Segment(a, b, True, _sealed(by_range.get((a, b)))))
    new_from = max(rest, base + old)
    for s, p in zip(starts, tail, strict=True):
        a, b = base + s, base + s + p.count
        if a >= rest:
            segments.append(Segment(a, b, False, p))
        elif b > rest:  # the rest starts inside this piece: store the rest as one new piece
            new_from = rest
            break
    stop = base + old + len(new_sizes)
    if new_from < stop:
        segments.append(Segment(new_from, stop, False))
    return segments


def _sealed(piece: Piece | None) -> Piece | None:
    if piece is None:
        return None
    return Piece(piece.ref, piece.sizes, piece.body, True, piece.count)


class LayoutMemo:
    """The layouts of recently encoded lists, by the reference of their last piece, bounded in
    entries and in the bytes of the pieces they hold (pieces shared by consecutive layouts are
    held once in memory but counted in each)."""

    def __init__(self, max_bytes: int = 64 << 20, max_entries: int = 4096) -> None:
        self._max_bytes = max_bytes
        self._max_entries = max_entries
        self._size = 0
        self._items: OrderedDict[bytes, tuple[tuple[Piece, ...], int]] = OrderedDict()
        self._lock = threading.Lock()

    def candidates(self, known: Iterable[bytes]) -> list[tuple[Piece, ...]]:
        """The remembered layouts whose every piece is in ``known``, longest first."""
        found = []
        with self._lock:
            for ref in known:
                hit = self._items.get(ref)
                if hit is not None:
                    self._items.move_to_end(ref)
                    found.append(hit[0])
        usable = [layout for layout in found if all(p.ref in known for p in layout)]
        usable.sort(key=lambda layout: -sum(max(p.count, 0) for p in layout))
        return usable

    def forget(self, layout: tuple[Piece, ...]) -> None:
        """Drop ``layout`` (a parent that a child layout now extends: only the newest layout of a
        growing list is kept; a second child of the same parent is then cut afresh)."""
        with self._lock:
            old = self._items.pop(layout[-1].ref, None) if layout else None
            if old is not None and [p.ref for p in old[0]] != [p.ref for p in layout]:
                self._items[layout[-1].ref] = old  # another layout ends with the same piece
            elif old is not None:
                self._size -= old[1]

    def remember(self, layout: tuple[Piece, ...]) -> None:
        if not layout:
            return
        weight = sum(len(p.body) for p in layout) + 64 * len(layout)
        if weight > self._max_bytes // 4:
            return
        key = layout[-1].ref
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= old[1]
            self._items[key] = (layout, weight)
            self._size += weight
            while self._size > self._max_bytes or len(self._items) > self._max_entries:
                _, (_, dropped) = self._items.popitem(last=False)
                self._size -= dropped


def matches(layout: Sequence[Piece], body: bytes, start: int, count: int) -> int:
    """How many bytes of ``body`` (from ``start``) the pieces of ``layout`` cover when the list's
    encoding begins with exactly their bytes and the list has at least as many items; -1 if not."""
    if sum(p.count for p in layout) > count:
        return -1
    pos = start
    for p in layout:
        if not body.startswith(p.body, pos):
            return -1
        pos += len(p.body)
    return pos - start
