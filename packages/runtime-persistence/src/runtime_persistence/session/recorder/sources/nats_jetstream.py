"""The NATS JetStream source: a durable pull consumer on a stream.

``nats://host:port?stream=S&subject=agents.>`` with optional ``durable`` (the consumer name,
default ``keepup-recorder``), ``ack_wait`` (seconds before an unacknowledged message is
redelivered, default 30) and ``create`` (``1``, the default: create the stream over ``subject``
when it does not exist). JetStream keeps every message in the stream while the recorder is
down; the recorder acknowledges a message only after the batch holding it is durable, so a crash
means redelivery, never loss, and the store's dedup by message id makes the recording exactly
once."""

from __future__ import annotations

import asyncio

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from runtime_persistence.session.recorder.sources import Delivery, source_options

__all__ = ["NatsSource"]


class NatsSource:
    """Deliveries from a JetStream durable consumer."""

    name = "nats"

    def __init__(self, url: str) -> None:
        from runtime_core import ValidationError

        host, port, options = source_options(url)
        self._url = url
        self._server = f"nats://{host}:{port}"
        self._stream = options.get("stream", "")
        self._subject = options.get("subject", "")
        if not self._stream or not self._subject:
            raise ValidationError(f"a nats:// source names ?stream=S&subject=SUBJECT; got {url!r:.200}")
        self._durable = options.get("durable", "keepup-recorder")
        self._ack_wait = float(options.get("ack_wait", "30"))
        self._create = options.get("create", "1").lower() in ("1", "true", "yes")
        self._nc: NATS | None = None
        self._sub: object = None

    @property
    def url(self) -> str:
        return self._url

    async def start(self) -> None:
        nc = await nats.connect(
            servers=[self._server], max_reconnect_attempts=-1, reconnect_time_wait=0.2, connect_timeout=5
        )
        js = nc.jetstream()
        if self._create:
            try:
                await js.stream_info(self._stream)
            except nats.js.errors.NotFoundError:
                await js.add_stream(name=self._stream, subjects=[self._subject])
        config = ConsumerConfig(
            durable_name=self._durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self._ack_wait,
            max_ack_pending=20_000,
        )
        self._sub = await js.pull_subscribe(
            self._subject, durable=self._durable, stream=self._stream, config=config
        )
        self._nc = nc

    async def receive(self, most: int, timeout: float) -> list[Delivery]:
        sub = self._sub
        if sub is None:
            raise RuntimeError("start() the source first")
        try:
            msgs = await sub.fetch(batch=most, timeout=max(timeout, 0.05))  # type: ignore[attr-defined]
        except (TimeoutError, nats.errors.TimeoutError):
            return []
        except nats.errors.Error:  # reconnecting: the server restarts; try again shortly
            await asyncio.sleep(min(timeout, 0.2))
            return []
        return [Delivery(topic=m.subject, body=m.data, ack=m.ack) for m in msgs]

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()
            self._nc = None
            self._sub = None
