"""How LangGraph's records map onto Keepup's, with no I/O (shared by both savers).

A LangGraph thread is a Keepup thread whose external key is the LangGraph ``thread_id``; a
``checkpoint_ns`` is a checkpoint namespace of that thread; a LangGraph checkpoint is a Keepup
checkpoint whose external key is the LangGraph checkpoint id. Its state holds one entry per
channel (``v:<channel>``, so unchanged channels share their stored blobs between checkpoints),
the rest of the LangGraph checkpoint (``checkpoint``: versions, versions seen, timestamp) and the
LangGraph id of its parent (``parent``). Every LangGraph value is stored as the plain pair
``[type, bytes]`` that LangGraph's own serializer (``serde.dumps_typed``) makes: Keepup never
interprets it, and only LangGraph's serializer, in this package, turns it back into objects.
Metadata is stored as Keepup metadata (plain JSON data), so it is indexed and filtered on."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from runtime_core import Checkpoint as KeepupCheckpoint
from runtime_core import PendingWrite, ValidationError

__all__ = [
    "SPECIAL_WRITES",
    "VALUE_PREFIX",
    "checkpoint_of",
    "config_of",
    "decode_typed",
    "encode_state",
    "encode_typed",
    "metadata_for",
    "next_version",
    "parts",
    "to_tuple",
]

VALUE_PREFIX = "v:"
SPECIAL_WRITES: Mapping[str, int] = dict(WRITES_IDX_MAP)


def parts(config: RunnableConfig) -> tuple[str, str, str | None]:
    """(thread_id, checkpoint_ns, checkpoint_id) of a LangGraph config."""
    conf = config.get("configurable") or {}
    thread = conf.get("thread_id")
    if thread is None:
        raise ValidationError("a LangGraph config needs configurable.thread_id")
    return str(thread), str(conf.get("checkpoint_ns") or ""), conf.get("checkpoint_id") or None


def config_of(thread_key: str, namespace: str, checkpoint_key: str | None) -> RunnableConfig:
    return {
        "configurable": {"thread_id": thread_key, "checkpoint_ns": namespace, "checkpoint_id": checkpoint_key}
    }


def encode_typed(serde: SerializerProtocol, value: Any) -> list[Any]:
    kind, data = serde.dumps_typed(value)
    return [kind, data]


def decode_typed(serde: SerializerProtocol, stored: Any) -> Any:
    kind, data = stored
    return serde.loads_typed((kind, data))


def encode_state(serde: SerializerProtocol, checkpoint: Checkpoint, parent_key: str | None) -> dict[str, Any]:
    """The Keepup state of a LangGraph checkpoint: channels that have a version, the rest of
    the checkpoint, and the parent's LangGraph id."""
    versions = checkpoint.get("channel_versions") or {}
    values = checkpoint.get("channel_values") or {}
    rest = {k: v for k, v in checkpoint.items() if k != "channel_values"}
    state: dict[str, Any] = {
        "checkpoint": encode_typed(serde, rest),
        "parent": parent_key,
    }
    for channel, value in values.items():
        if channel in versions:
            state[VALUE_PREFIX + channel] = encode_typed(serde, value)
    return state


def checkpoint_of(serde: SerializerProtocol, state: Mapping[str, Any]) -> Checkpoint:
    rest = dict(decode_typed(serde, state["checkpoint"]))
    rest["channel_values"] = {
        key[len(VALUE_PREFIX) :]: decode_typed(serde, value)
        for key, value in state.items()
        if key.startswith(VALUE_PREFIX)
    }
    return rest  # type: ignore[return-value]


def metadata_for(config: RunnableConfig, metadata: CheckpointMetadata) -> dict[str, Any]:
    out = dict(get_checkpoint_metadata(config, metadata))
    out.pop("writes", None)
    return out


def to_tuple(serde: SerializerProtocol, thread_key: str, cp: KeepupCheckpoint) -> CheckpointTuple:
    parent = cp.state.get("parent")
    return CheckpointTuple(
        config=config_of(thread_key, cp.namespace, cp.external_key),
        checkpoint=checkpoint_of(serde, cp.state),
        metadata=dict(cp.metadata),  # type: ignore[arg-type]
        parent_config=config_of(thread_key, cp.namespace, parent) if parent else None,
        pending_writes=_pending(serde, cp.pending_writes),
    )


def _pending(serde: SerializerProtocol, writes: Sequence[PendingWrite]) -> list[tuple[str, str, Any]]:
    """(task id, channel, value) of each pending write: ``decode_typed`` inlined (a checkpoint
    read back may carry hundreds of them)."""
    loads = serde.loads_typed
    out = []
    for w in writes:
        kind, data = w.value
        out.append((w.task_id, w.channel, loads((kind, data))))
    return out


def next_version(current: str | int | None) -> str:
    """Channel versions as LangGraph's SQL savers make them: a zero-padded counter and a random
    tie-breaker, so they sort as strings."""
    if current is None:
        current_v = 0
    elif isinstance(current, int):
        current_v = current
    else:
        current_v = int(current.split(".")[0])
    return f"{current_v + 1:032}.{random.random():016}"
