"""The stored shapes of threads and checkpoints, their namespaces and key layout (shared by the
checkpoint store, garbage collection and export; see :mod:`runtime_persistence.checkpoint.checkpoints`)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import msgspec

from runtime_persistence.checkpoint._state import ChannelRef

__all__ = [
    "CKPT_ID_NS",
    "CKPT_NS",
    "CKPT_PIN_NS",
    "FORK_NS",
    "HEAD_NS",
    "RECORD_FORMAT",
    "SEQ_DIGITS",
    "THREAD_NS",
    "Head",
    "IdEntry",
    "Record",
    "ThreadRecord",
    "WriteRecord",
    "is_record_key",
    "slot_key",
    "write_key",
]

CKPT_NS = "ckpt"
CKPT_ID_NS = "ckpt.id"
CKPT_PIN_NS = "ckpt.pin"
THREAD_NS = "thread"
HEAD_NS = "thread.head"
FORK_NS = "thread.fork"

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
