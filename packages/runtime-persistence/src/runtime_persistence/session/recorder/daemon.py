"""The recorder daemon: reads a :class:`~.sources.MessageSource`, records every message through a
:class:`MessageStore` in group-committed batches, acknowledges deliveries only once their batch
is durable, and checkpoints each conversation incrementally.

* **Group commit**: a batch commits when it holds ``batch_size`` messages or when its oldest
  message has waited ``batch_delay`` seconds (the durability window), whichever comes first;
  one batch is one transaction (one fsync on SQLite).
* **Exactly once** where the source redelivers (NATS JetStream, MQTT QoS 1): a delivery is
  acknowledged after its batch commits, so a crash makes the broker redeliver, and the store's
  dedup by message id drops what was already recorded.
* **Resume**: the state (next offset, each sender's newest sequence number, counters) commits
  with every batch; a restarted recorder reads it, re-indexes any tail the search index missed,
  and reports what it recovered (and whether the last run stopped cleanly).
* **Checkpoints**: every ``checkpoint_every`` seconds or ``checkpoint_messages`` messages, each
  conversation with new messages gets a checkpoint in its own thread whose ``messages`` channel
  is the whole conversation so far; the checkpoint store cuts long lists into fixed chunks, so
  consecutive checkpoints share every chunk but the last. A stop (SIGTERM/SIGINT: the caller sets
  ``stop``) flushes and writes a final checkpoint labelled ``final``."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from runtime_core import Clock, SystemClock, ValidationError

from runtime_persistence.checkpoint import Checkpoints
from runtime_persistence.session.recorder._model import Incoming, RecordedMessage, RecorderState
from runtime_persistence.session.recorder._sync.messages import MessageStore
from runtime_persistence.session.recorder.enrichers import Enricher, combine_enrichers
from runtime_persistence.session.recorder.sources import Delivery, MessageSource

__all__ = ["Recorder", "RecorderConfig", "RecorderStats", "serve"]

_IDLE_WAIT = 0.2


@dataclass(frozen=True, slots=True)
class RecorderConfig:
    """``batch_size``: most messages per batch; ``batch_delay``: most seconds a received message
    waits before its batch commits; ``checkpoint_every`` (seconds) and ``checkpoint_messages``:
    when conversations are checkpointed (0 turns that trigger off)."""

    batch_size: int = 1000
    batch_delay: float = 0.05
    checkpoint_every: float = 300.0
    checkpoint_messages: int = 10_000

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 10_000:
            raise ValidationError(f"batch_size must be 1..10000, got {self.batch_size}")
        if not 0 <= self.batch_delay <= 60:
            raise ValidationError(f"batch_delay must be 0..60 seconds, got {self.batch_delay}")
        if self.checkpoint_every < 0 or self.checkpoint_messages < 0:
            raise ValidationError("checkpoint_every and checkpoint_messages must not be negative")


@dataclass(slots=True)
class RecorderStats:
    """Counters of one run (``recovered``: what the store held when it started)."""

    messages: int = 0
    bytes: int = 0
    batches: int = 0
    gaps: int = 0
    duplicates: int = 0
    checkpoints: int = 0
    recovered: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Recorder:
    """Records ``source`` into ``store``; checkpoints conversations into ``checkpoints`` (None:
    no conversation checkpoints). The store and checkpoint calls run on a worker thread, one
    trip per batch, so the event loop keeps receiving while a batch commits. ``on_status`` is
    called after every batch, ``on_recovered`` once at start with what the store held."""

    def __init__(
        self,
        store: MessageStore,
        source: MessageSource,
        *,
        checkpoints: Checkpoints | None = None,
        config: RecorderConfig | None = None,
        enrichers: Sequence[Enricher] = (),
        clock: Clock | None = None,
        on_status: Callable[[RecorderStats], None] | None = None,
        on_recovered: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._store = store
        self._source = source
        self._checkpoints = checkpoints
        self._config = config or RecorderConfig()
        self._enrich = combine_enrichers(enrichers)
        self._clock: Clock = clock or SystemClock()
        self._on_status = on_status
        self._on_recovered = on_recovered
        self.stats = RecorderStats()
        self._conversations: dict[str, list[dict[str, Any]]] = {}
        self._since_checkpoint = 0

    def _recover(self) -> RecorderState:
        indexed = self._store.catch_up_index()
        before = self._store.state()

        def starting(state: RecorderState) -> None:
            state.starts += 1
            state.running = True

        self._store.update_state(starting)
        self.stats.recovered = {
            "messages": before.messages,
            "gaps": before.gaps,
            "duplicates": before.duplicates,
            "next_offset": before.next_offset,
            "senders": len(before.senders),
            "checkpointed_offset": before.checkpointed_offset,
            "reindexed": indexed,
            "previous_run_stopped_cleanly": not before.running,
            "starts": before.starts,
        }
        return before

    async def run(self, stop: asyncio.Event) -> RecorderStats:
        """Record until ``stop`` is set, then flush, checkpoint (label ``final``) and mark the
        state stopped. Returns the counters of this run."""
        state = await asyncio.to_thread(self._recover)
        if self._on_recovered is not None:
            self._on_recovered(self.stats.recovered)
        self._since_checkpoint = state.next_offset - 1 - state.checkpointed_offset
        await self._source.start()
        try:
            await self._loop(stop)
        finally:
            try:
                await asyncio.to_thread(self._checkpoint, "final")
                await asyncio.to_thread(self._store.update_state, _stopped)
            finally:
                await self._source.close()
        return self.stats

    async def _loop(self, stop: asyncio.Event) -> None:
        config = self._config
        pending: list[tuple[Delivery, Incoming]] = []
        first_at = 0.0
        last_checkpoint = time.monotonic()
        while True:
            stopping = stop.is_set()
            now = time.monotonic()
            if pending and (
                stopping or len(pending) >= config.batch_size or now - first_at >= config.batch_delay
            ):
                await self._commit(pending)
                pending = []
            if stopping:
                return
            due_time = config.checkpoint_every and now - last_checkpoint >= config.checkpoint_every
            due_count = config.checkpoint_messages and self._since_checkpoint >= config.checkpoint_messages
            if due_time or due_count:
                await asyncio.to_thread(self._checkpoint, "recorder")
                last_checkpoint = time.monotonic()
            # never wait longer than _IDLE_WAIT, so a stop or a due checkpoint is seen promptly
            wait = (
                _IDLE_WAIT
                if not pending
                else min(_IDLE_WAIT, max(0.0, config.batch_delay - (now - first_at)))
            )
            got = await self._source.receive(config.batch_size - len(pending), wait)
            if got and not pending:
                first_at = time.monotonic()
            received_at = self._clock.now()
            source = self._source.name
            pending.extend((d, Incoming(d.topic, d.body, received_at, source)) for d in got)

    async def _commit(self, pending: list[tuple[Delivery, Incoming]]) -> None:
        result = await asyncio.to_thread(self._store.append, [i for _, i in pending], enrich=self._enrich)
        for delivery, _ in pending:
            if delivery.ack is not None:
                await delivery.ack()
        stats = self.stats
        stats.messages += len(result.recorded) - result.gaps
        stats.gaps += result.gaps
        stats.duplicates += result.duplicates
        stats.bytes += result.bytes
        stats.batches += 1 if result.recorded else 0
        self._since_checkpoint += len(result.recorded)
        if self._on_status is not None:
            self._on_status(stats)

    # conversation checkpoints ----------------------------------------------------------------------
    def _checkpoint(self, label: str) -> None:
        """Checkpoint every conversation that has records after the checkpointed offset (sync:
        runs on a worker thread)."""
        if self._checkpoints is None:
            return
        state = self._store.state()
        cursor = state.checkpointed_offset
        upto = state.next_offset - 1
        fresh: dict[str, list[dict[str, Any]]] = {}
        while cursor < upto:
            page = list(self._store.read(after=cursor, limit=1000))
            if not page:
                break
            for message in page:
                if message.conversation is not None:
                    fresh.setdefault(message.conversation, []).append(_entry(message))
            cursor = page[-1].offset
        if label == "final":  # every conversation of this run ends on a final checkpoint
            for conversation in self._conversations:
                fresh.setdefault(conversation, [])
        for conversation, entries in fresh.items():
            self._save_conversation(conversation, entries, upto, label)

        def checkpointed(s: RecorderState) -> None:
            s.checkpointed_offset = max(s.checkpointed_offset, upto)
            s.checkpoints += 1

        self._store.update_state(checkpointed)
        self.stats.checkpoints += 1
        self._since_checkpoint = 0

    def _save_conversation(
        self, conversation: str, entries: list[dict[str, Any]], upto: int, label: str
    ) -> None:
        checkpoints = self._checkpoints
        assert checkpoints is not None
        thread_id = self._store.thread_of(conversation)
        if thread_id is None:
            thread = checkpoints.create_thread(
                conversation[:200], metadata={"kind": "conversation", "conversation": conversation}
            )
            self._store.set_thread_of(conversation, thread.id)
            thread_id = self._store.thread_of(conversation)
            assert thread_id is not None
        messages = self._conversations.get(conversation)
        if messages is None:
            head = checkpoints.latest(thread_id)
            messages = list(head.state.get("messages", [])) if head is not None else []
        known = messages[-1]["offset"] if messages else 0
        messages = messages + [e for e in entries if e["offset"] > known]
        checkpoints.save(
            thread_id,
            {"conversation": conversation, "messages": messages},
            label=label,
            metadata={"upto_offset": upto, "messages": len(messages)},
        )
        self._conversations[conversation] = messages


def _entry(message: RecordedMessage) -> dict[str, Any]:
    entry: dict[str, Any] = {"offset": message.offset, "kind": message.kind}
    for name in ("id", "sender", "seq", "role", "text", "gap_from", "gap_to"):
        value = getattr(message, name)
        if value is not None:
            entry[name] = value
    return entry


def _stopped(state: RecorderState) -> None:
    state.running = False
    state.clean_stops += 1


def serve(
    store: MessageStore,
    source: MessageSource,
    *,
    checkpoints: Checkpoints | None = None,
    config: RecorderConfig | None = None,
    enrichers: Sequence[Enricher] = (),
    on_status: Callable[[RecorderStats], None] | None = None,
    on_recovered: Callable[[dict[str, Any]], None] | None = None,
) -> RecorderStats:
    """Run a :class:`Recorder` in this thread until SIGTERM or SIGINT, then flush, write the final
    checkpoint and return the counters (what ``keepup recorder`` and
    ``python -m runtime_persistence.session.recorder`` do)."""
    daemon = Recorder(
        store,
        source,
        checkpoints=checkpoints,
        config=config,
        enrichers=enrichers,
        on_status=on_status,
        on_recovered=on_recovered,
    )

    async def main() -> RecorderStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await daemon.run(stop)

    return asyncio.run(main())
