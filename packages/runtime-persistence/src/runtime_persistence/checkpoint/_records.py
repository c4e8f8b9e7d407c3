"""The stored shapes of threads and checkpoints, their namespaces and key layout (shared by the
checkpoint store, garbage collection and export; see :mod:`runtime_persistence.checkpoint.checkpoints`)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import msgspec

from runtime_persistence.checkpoint._channel_ref import ChannelRef

__all__ = [
    "CKPT_ID_NS",
    "CKPT_KEY_NS",
    "CKPT_META_NS",
    "CKPT_NS",
    "CKPT_PIN_NS",
    "CKPT_WRITE_NS",
    "FORK_NS",
    "HEAD_NS",
    "NS_NS",
    "RECORD_FORMAT",
    "SEQ_DIGITS",
    "THREAD_KEY_NS",
    "THREAD_NS",
    "Head",
    "IdEntry",
    "KeyedWrite",
    "KeyedWritePack",
    "Record",
    "ThreadKey",
    "ThreadRecord",
    "WriteRecord",
    "ckpt_key_key",
    "is_keyed_pack_key",
    "is_record_key",
    "keyed_pack_key",
    "keyed_write_key",
    "keyed_write_prefix",
    "lane",
    "lane_of",
    "merge_keyed",
    "meta_index_keys",
    "meta_index_prefix",
    "slot_key",
    "thread_key_key",
    "thread_of_lane",
    "write_key",
]

CKPT_NS = "ckpt"
CKPT_ID_NS = "ckpt.id"
CKPT_PIN_NS = "ckpt.pin"
THREAD_NS = "thread"
HEAD_NS = "thread.head"
FORK_NS = "thread.fork"
THREAD_KEY_NS = "thread.key"
CKPT_KEY_NS = "ckpt.key"
CKPT_WRITE_NS = "ckpt.write"
CKPT_META_NS = "ckpt.meta"
NS_NS = "thread.ns"

RECORD_FORMAT = 1
SEQ_DIGITS = 12


class Record(msgspec.Struct, array_like=True, frozen=True):
    """A checkpoint as stored: channel refs, not values (see ``_state``)."""

    format: int
    id: str
    thread_id: str
    parent_id: str | None
    seq: int
    step: int
    source: str
    created_at: datetime
    label: str | None
    metadata: dict[str, Any]
    channels: dict[str, ChannelRef]
    workspace: tuple[str, str] | None = None
    artifacts: list[tuple[str, str, int]] = []
    namespace: str = ""
    key: str | None = None
    branch: bool = False


class WriteRecord(msgspec.Struct, array_like=True, frozen=True):
    """A pending write as stored."""

    task_id: str
    channel: str
    value: ChannelRef
    created_at: datetime


class ThreadRecord(msgspec.Struct, array_like=True, frozen=True):
    """A thread as stored (its head lives under its own key)."""

    id: str
    name: str
    metadata: dict[str, Any]
    parent_thread_id: str | None
    forked_from: str | None
    created_at: datetime
    updated_at: datetime
    external_key: str | None = None


class Head(msgspec.Struct, array_like=True, frozen=True):
    """A thread's head: the newest checkpoint's id, sequence slot and step."""

    id: str
    seq: int
    step: int
    at: datetime


class IdEntry(msgspec.Struct, array_like=True, frozen=True):
    """Where a checkpoint id lives: its thread and sequence slot."""

    thread_id: str
    seq: int
    namespace: str = ""


class ThreadKey(msgspec.Struct, array_like=True, frozen=True):
    """The thread that owns a caller-chosen external key."""

    external_key: str
    thread_id: str


class KeyedWrite(msgspec.Struct, array_like=True, frozen=True):
    """A pending write addressed by its checkpoint's external key, which may be stored before
    the checkpoint itself is (LangGraph writes a task's results while the save of their
    checkpoint is still under way). The value is stored inline, as plain data."""

    checkpoint_key: str
    task_id: str
    task_path: str
    index: int
    channel: str
    value: Any
    created_at: datetime


class KeyedWritePack(msgspec.Struct, array_like=True, frozen=True):
    """The writes (index, channel, value) of one ``put_keyed_writes`` call of a task, in one row
    at :func:`keyed_pack_key`: a task's first writes after a checkpoint (LangGraph writes all of
    a task's channels in one call) are read back as one entry instead of one per write. Written
    create-only, without reading first, once per (checkpoint key, task), and never changed; the
    task's later writes go to per-index :class:`KeyedWrite` rows. A per-index row wins over the
    pack for an index both hold: it was written before the pack (by a replacing batch of
    special channels, or by a version that stored one row per write: first write wins), or
    after it by a replacing batch (regular later writes skip the indexes the pack holds)."""

    checkpoint_key: str
    task_id: str
    task_path: str
    created_at: datetime
    writes: list[tuple[int, str, Any]]


def _h(text: str, n: int = 32) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def lane(thread_id: str, namespace: str) -> str:
    """The key prefix of one checkpoint namespace of a thread: the thread id itself for the
    thread's own line (""), so stores written before namespaces existed read unchanged."""
    return thread_id if not namespace else f"{thread_id}+{_h(namespace, 24)}"


def lane_of(rec: Record | IdEntry) -> str:
    return lane(rec.thread_id, rec.namespace)


def thread_of_lane(key: str) -> str:
    """The thread id of a lane (or of any ``{lane}/...`` key)."""
    return key.split("/", 1)[0].split("+", 1)[0]


def thread_key_key(external_key: str) -> str:
    return _h(external_key, 64)


def ckpt_key_key(lane_: str, external_key: str) -> str:
    return f"{lane_}/{_h(external_key, 64)}"


def keyed_write_prefix(lane_: str, checkpoint_key: str) -> str:
    return f"{lane_}/{_h(checkpoint_key, 32)}/"


def keyed_write_key(lane_: str, checkpoint_key: str, task_id: str, index: int) -> str:
    """Sorts by task, then by index (negative indexes, the special channels, first)."""
    return f"{keyed_write_prefix(lane_, checkpoint_key)}{_h(task_id, 24)}/{index + 2**31:010d}"


def keyed_pack_key(lane_: str, checkpoint_key: str, task_id: str) -> str:
    """The key of a task's :class:`KeyedWritePack` (sorts after its per-index rows)."""
    return f"{keyed_write_prefix(lane_, checkpoint_key)}{_h(task_id, 24)}/p"


def is_keyed_pack_key(key: str) -> bool:
    """Whether a key of ``CKPT_WRITE_NS`` holds a :class:`KeyedWritePack` (else a
    :class:`KeyedWrite`; keys written before packs existed are all of that kind)."""
    return key.endswith("/p")


def merge_keyed(rows: list[KeyedWrite | KeyedWritePack]) -> list[KeyedWrite]:
    """The pending writes the keyed rows of one checkpoint hold, one per (task, index), sorted
    by task path, task and index: a per-index row wins over a pack holding the same index."""
    singles = [row for row in rows if isinstance(row, KeyedWrite)]
    taken = {(w.task_id, w.index) for w in singles}
    out = singles
    for pack in rows:
        if isinstance(pack, KeyedWritePack):
            out.extend(
                KeyedWrite(pack.checkpoint_key, pack.task_id, pack.task_path, i, ch, v, pack.created_at)
                for i, ch, v in pack.writes
                if not taken or (pack.task_id, i) not in taken
            )
    out.sort(key=lambda w: (w.task_path, w.task_id, w.index))
    return out


def meta_index_prefix(field: str, value: Any) -> str:
    return f"{_h(f'{field}={type(value).__name__}:{value!r}', 32)}/"


def meta_index_keys(metadata: dict[str, Any], checkpoint_id: str) -> list[str]:
    """Index keys of a checkpoint's top-level scalar metadata (str, int, bool) values."""
    return [
        f"{meta_index_prefix(k, v)}{checkpoint_id}"
        for k, v in metadata.items()
        if isinstance(v, (str, int, bool)) and (not isinstance(v, str) or len(v) <= 256)
    ]


def slot_key(thread_id: str, seq: int) -> str:
    """The key of sequence slot ``seq`` of a thread (sorts in sequence order)."""
    return f"{thread_id}/{seq:0{SEQ_DIGITS}d}"


def is_record_key(key: str, thread_id: str) -> bool:
    """Whether a key under ``{thread_id}/`` is a record (not one of its pending writes)."""
    return len(key) == len(thread_id) + 1 + SEQ_DIGITS


def write_key(slot: str, task_id: str, channel: str) -> str:
    """The key of the pending write of (task, channel) after the checkpoint in ``slot``."""
    h = hashlib.sha256(f"{task_id}\x00{channel}".encode()).hexdigest()[:32]
    return f"{slot}/w/{h}"
