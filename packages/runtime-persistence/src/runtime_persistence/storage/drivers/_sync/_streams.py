# Generated from packages/runtime-persistence/src/runtime_persistence/storage/drivers/_async/_streams.py by scripts/gen_sync.py: edit that file and rerun the script.
"""The streams every server driver shares: byte streams fed to storage (a value cut into
fixed-size slices, or a stream of any shape re-cut into fixed-size pieces in bounded memory; the
cutting itself is the I/O-free :class:`~runtime_persistence.storage.drivers._servers.Rechunker`),
and the page-by-page walk of a key range that every server scan is."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from runtime_core import Entry

from runtime_persistence.storage.drivers._servers import Rechunker, read_password_file

__all__ = ["PageReader", "paged_scan", "password_from_file", "rechunked", "slices"]


class PageReader(Protocol):
    """``read(low, low_inclusive, high, size)``: at most ``size`` entries of the range, in scan order."""

    def __call__(self, low: bytes, low_inclusive: bool, high: bytes | None, size: int) -> list[Entry]: ...


def slices(data: bytes, size: int) -> Iterator[bytes]:
    """``data`` in pieces of ``size`` bytes (the last one may be shorter)."""
    for i in range(0, len(data), size):
        yield data[i : i + size]


def rechunked(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """``chunks`` re-cut into pieces of exactly ``size`` bytes (the last one may be shorter)."""
    cutter = Rechunker(size)
    for chunk in chunks:
        for piece in cutter.feed(chunk):
            yield piece
    for piece in cutter.tail():
        yield piece


def password_from_file(path: str, kind: str) -> str:
    """:func:`read_password_file` (the ``password_file=`` URL option), which the async twin runs on
    a worker thread so the event loop never waits on the file system."""
    reader = read_password_file
    return reader(path, kind)


def paged_scan(
    read: PageReader,
    low: bytes,
    low_inclusive: bool,
    high: bytes | None,
    *,
    reverse: bool,
    limit: int | None,
    page_size: int,
) -> Iterator[Entry]:
    """The entries of the key range, at most ``limit``, read ``page_size`` at a time: each page
    starts just past the last key of the one before (below it when ``reverse``)."""
    remaining = limit
    while remaining is None or remaining > 0:
        size = page_size if remaining is None else min(remaining, page_size)
        entries = read(low, low_inclusive, high, size)
        yield from entries
        if len(entries) < size:
            return
        if remaining is not None:
            remaining -= len(entries)
        last = entries[-1].key.encode()
        if reverse:
            high = last
        else:
            low, low_inclusive = last, False
