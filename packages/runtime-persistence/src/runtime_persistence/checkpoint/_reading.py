"""What listing threads needs of the checkpoint store, without the rest of it: reading a
stored record (bound to its place, its ids checked against its key), the limit and the metadata
filter of a listing, and the public :class:`runtime_core.Thread` of a stored one.

:mod:`runtime_persistence.checkpoint._shared` re-exports these for the whole store;
:class:`runtime_persistence.checkpoint._async.listing.AsyncThreadLister` uses them alone, so
that ``keepup thread list`` loads neither the checkpoint, artifact, workspace and session
records of ``runtime_core`` nor the write paths."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from runtime_core import CorruptionError, Serializer, Thread, ValidationError

from runtime_persistence.checkpoint._channel_ref import copy_plain
from runtime_persistence.checkpoint._records import (
    Head,
    Record,
    ThreadRecord,
    WriteRecord,
    lane_of,
    slot_key,
    write_key,
)

__all__ = [
    "MAX_LIST_LIMIT",
    "DecodedCache",
    "check_filter",
    "check_limit",
    "check_place",
    "matches",
    "thread_of",
]

_DECODED_ITEMS = 4096
_DECODED_MAX_BYTES = 4096
MAX_LIST_LIMIT = 10_000

_T = TypeVar("_T")


def check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_LIST_LIMIT:
        raise ValidationError(f"limit must be an integer from 0 to {MAX_LIST_LIMIT}, got {limit!r:.40}")
    return limit


def check_filter(metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) for k in metadata):
        raise ValidationError("a metadata filter is a mapping with string keys")
    return dict(metadata)


def matches(metadata: Mapping[str, Any], wanted: Mapping[str, Any] | None) -> bool:
    """Equality on every key of ``wanted`` (evaluated in Python over decoded records, never
    built into a query)."""
    if not wanted:
        return True
    return all(k in metadata and metadata[k] == v for k, v in wanted.items())


class DecodedCache:
    """Decodes stored records. Records are immutable and their envelopes checksummed and bound
    to their place, so a decoded record is remembered by its exact bytes *and* the place they
    were read from: the same bytes at the same place always decode to the same record, damaged
    bytes are never in the cache, and bytes copied to another place are checked again there."""

    def __init__(self, serializer: Serializer) -> None:
        self._ser = serializer
        self._items: OrderedDict[tuple[type[Any], tuple[str, str], bytes], Any] = OrderedDict()
        self._lock = threading.Lock()

    def load(
        self,
        data: bytes,
        type_: type[_T],
        at: tuple[str, str],
        check: Callable[[str, str, _T], _T] | None = None,
    ) -> _T:
        """``data`` read at ``at`` decoded as ``type_``; a value decoded here is passed to
        ``check(namespace, key, value)`` before it is returned or remembered, so a remembered
        value has passed it (bytes that fail it are never cached)."""
        value: _T
        if len(data) > _DECODED_MAX_BYTES:
            value = self._ser.loads(data, type_, at=at)
            return value if check is None else check(at[0], at[1], value)
        key = (type_, at, bytes(data))
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return cast(_T, found)
        value = self._ser.loads(data, type_, at=at)
        if check is not None:
            value = check(at[0], at[1], value)
        self.prime(data, type_, at, value)
        return value

    def prime(self, data: bytes, type_: type[_T], at: tuple[str, str], value: _T) -> None:
        """Remember that ``data`` read at ``at`` decodes to ``value``: for bytes this process
        has just encoded from ``value`` itself and written there (a save's new head, which the
        next save reads back)."""
        if len(data) > _DECODED_MAX_BYTES:
            return
        with self._lock:
            self._items[(type_, at, bytes(data))] = value
            if len(self._items) > _DECODED_ITEMS:
                self._items.popitem(last=False)


def check_place(namespace: str, key: str, value: _T) -> _T:
    """``value``, read from (namespace, key), if its own ids name that key; CorruptionError if
    they name another (a record copied or moved there: bound envelopes catch that too, but records
    written before binding existed are checked only here)."""
    expected: str | None = None
    if isinstance(value, Record):
        expected = slot_key(lane_of(value), value.seq)
    elif isinstance(value, WriteRecord):
        expected = write_key(key.rpartition("/w/")[0], value.task_id, value.channel)
    elif isinstance(value, ThreadRecord):
        expected = value.id
    if expected is not None and expected != key:
        raise CorruptionError(
            f"the record at {namespace}/{key!r:.200} belongs at {expected!r:.200}: it was copied or "
            "moved from another key"
        )
    return value


def thread_of(rec: ThreadRecord, head: Head | None) -> Thread:
    """The public thread of a stored thread record and its head."""
    updated = rec.updated_at if head is None else max(rec.updated_at, head.at)
    return Thread(
        id=rec.id,
        created_at=rec.created_at,
        updated_at=updated,
        name=rec.name,
        metadata=copy_plain(rec.metadata),
        parent_thread_id=rec.parent_thread_id,
        forked_from=rec.forked_from,
        head=head.id if head else None,
        external_key=rec.external_key,
    )
