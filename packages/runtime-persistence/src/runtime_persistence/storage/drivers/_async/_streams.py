"""Byte streams as the server drivers feed them to storage: a value cut into fixed-size slices,
or a stream of any shape re-cut into fixed-size pieces in bounded memory (the cutting itself is
the I/O-free :class:`~runtime_persistence.storage.drivers._servers.Rechunker`)."""

from __future__ import annotations

import asyncio  # sync: -
from collections.abc import AsyncIterable, AsyncIterator

from runtime_persistence.storage.drivers._servers import Rechunker, read_password_file

__all__ = ["password_from_file", "rechunked", "slices"]


async def slices(data: bytes, size: int) -> AsyncIterator[bytes]:
    """``data`` in pieces of ``size`` bytes (the last one may be shorter)."""
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def rechunked(chunks: AsyncIterable[bytes], size: int) -> AsyncIterator[bytes]:
    """``chunks`` re-cut into pieces of exactly ``size`` bytes (the last one may be shorter)."""
    cutter = Rechunker(size)
    async for chunk in chunks:
        for piece in cutter.feed(chunk):
            yield piece
    for piece in cutter.tail():
        yield piece


async def password_from_file(path: str, kind: str) -> str:
    """:func:`read_password_file` (the ``password_file=`` URL option), which the async twin runs on
    a worker thread so the event loop never waits on the file system."""
    reader = read_password_file
    return await asyncio.to_thread(reader, path, kind)  # sync: return reader(path, kind)
