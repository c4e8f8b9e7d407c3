# Generated from packages/runtime-persistence/src/runtime_persistence/storage/drivers/_async/_streams.py by scripts/gen_sync.py: edit that file and rerun the script.
"""Byte streams as the server drivers feed them to storage: a value cut into fixed-size slices,
or a stream of any shape re-cut into fixed-size pieces in bounded memory (the cutting itself is
the I/O-free :class:`~runtime_persistence.storage.drivers._servers.Rechunker`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from runtime_persistence.storage.drivers._servers import Rechunker, read_password_file

__all__ = ["password_from_file", "rechunked", "slices"]


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
