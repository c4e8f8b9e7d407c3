"""Live updates: server-sent events for new checkpoints, runs and restores.

One watcher per server reads the store (the newest threads and runs) every ``interval`` seconds
while anyone listens, and fans out what changed to every subscriber. Watching the store, rather
than announcing what this server did, means a checkpoint written by a runner in another process
or a restore made with the ``keepup`` command shows up too. Events:

* ``checkpoint``: a thread has a new head (``{"thread_id", "checkpoint"}``, the checkpoint in the
  shapes of ``keepup checkpoint show --json`` without its state);
* ``restore``: that new head was written by a restore (same body);
* ``run``: a run started or changed status, steps or cancel request (``{"run"}``).

A subscriber that falls ``QUEUE_SIZE`` events behind is dropped (its stream ends; browsers
reconnect), so one slow reader never holds the others back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from keepup import KeepupError
from keepup.shapes import checkpoint_json, run_json

from keepup_server.services import Services

__all__ = ["QUEUE_SIZE", "Broadcaster", "LiveEvent", "Watcher", "sse_stream"]

log = logging.getLogger("keepup_server")

QUEUE_SIZE = 256
WATCH_LIMIT = 100
"""How many of the newest threads and runs each look at the store reads."""


@dataclass(frozen=True)
class LiveEvent:
    """One server-sent event: its type and JSON body."""

    kind: str
    data: dict[str, Any]

    def encode(self, event_id: int) -> bytes:
        body = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return f"id: {event_id}\nevent: {self.kind}\ndata: {body}\n\n".encode()


class Broadcaster:
    """Fan-out of :class:`LiveEvent` to any number of subscribers, each with its own queue."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[LiveEvent | None]] = set()
        self.changed = asyncio.Event()
        self.published = 0

    @property
    def subscribers(self) -> int:
        return len(self._queues)

    def subscribe(self) -> asyncio.Queue[LiveEvent | None]:
        queue: asyncio.Queue[LiveEvent | None] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        self.changed.set()
        return queue

    def unsubscribe(self, queue: asyncio.Queue[LiveEvent | None]) -> None:
        self._queues.discard(queue)

    def publish(self, event: LiveEvent) -> None:
        self.published += 1
        for queue in list(self._queues):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # too slow: end its stream rather than hold everyone back
                self._queues.discard(queue)
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(None)

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        for queue in list(self._queues):
            self._queues.discard(queue)
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)


class Watcher:
    """Reads the newest threads and runs every ``interval`` seconds while someone listens, and
    publishes what changed since the last look."""

    def __init__(self, services: Services, broadcaster: Broadcaster, *, interval: float = 1.0) -> None:
        self.services = services
        self.broadcaster = broadcaster
        self.interval = interval
        self._heads: dict[str, str | None] | None = None
        self._runs: dict[str, tuple[str, int, bool]] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="keepup-server-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            if self.broadcaster.subscribers == 0:
                self._heads = self._runs = None  # nobody listened meanwhile: start afresh
                self.broadcaster.changed.clear()
                await self.broadcaster.changed.wait()
            try:
                await self.look()
            except KeepupError as exc:  # the store is down for a moment: try again later
                log.warning("live updates: could not read the store: %s", exc)
            await asyncio.sleep(self.interval)

    async def look(self) -> None:
        """Compare the store with the last look and publish the differences (the first look only
        remembers)."""
        threads = await self.services.checkpoints.list_threads(limit=WATCH_LIMIT)
        heads = {t.id: t.head for t in threads}
        runs = await self.services.runs.list(limit=WATCH_LIMIT)
        states = {r.id: (r.status.value, r.steps, r.cancel_requested) for r in runs}
        if self._heads is not None and self._runs is not None:
            for thread in threads:
                if thread.head is not None and self._heads.get(thread.id) != thread.head:
                    try:
                        head = await self.services.checkpoints.get(thread.head)
                    except KeepupError:
                        continue  # pruned meanwhile
                    body = {"thread_id": thread.id, "checkpoint": checkpoint_json(head)}
                    self.broadcaster.publish(LiveEvent("checkpoint", body))
                    if head.source.value == "restore":
                        self.broadcaster.publish(LiveEvent("restore", body))
            for run in runs:
                if self._runs.get(run.id) != states[run.id]:
                    self.broadcaster.publish(LiveEvent("run", {"run": run_json(run)}))
        self._heads, self._runs = heads, states


KEEPALIVE = 15.0
"""Seconds between comment lines on a quiet stream, so proxies and browsers keep it open."""


async def sse_stream(broadcaster: Broadcaster, *, keepalive: float = KEEPALIVE) -> AsyncIterator[bytes]:
    """The ``text/event-stream`` body of one subscriber, until it disconnects or is dropped."""
    queue = broadcaster.subscribe()
    event_id = 0
    try:
        yield b": connected\nretry: 2000\n\n"
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), keepalive)
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            if event is None:
                return
            event_id += 1
            yield event.encode(event_id)
    finally:
        broadcaster.unsubscribe(queue)
