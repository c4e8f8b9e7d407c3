"""How one channel of a checkpoint is stored (:class:`ChannelRef`, a field of the stored
checkpoint record) and :func:`copy_plain`, apart from the state codec of
:mod:`runtime_persistence.checkpoint._state` (which re-exports both): reading thread records
(``keepup thread list``) then loads neither that codec nor the list layout of ``_layout``."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["ChannelRef", "copy_plain"]

_PLAIN_ENCODER = msgspec.msgpack.Encoder()
_PLAIN_DECODER = msgspec.msgpack.Decoder()


def copy_plain(value: Any) -> Any:
    """A deep copy of plain data (what the serializer returns), through MessagePack."""
    if value is None or isinstance(value, (str, int, float, bool, bytes)):
        return value
    return _PLAIN_DECODER.decode(_PLAIN_ENCODER.encode(value))


class ChannelRef(msgspec.Struct, array_like=True, frozen=True):
    """How one channel's value is stored: inline, as one blob, or as a chunked list."""

    kind: int
    value: Any = None
    blobs: list[bytes] = []
    count: int = 0
