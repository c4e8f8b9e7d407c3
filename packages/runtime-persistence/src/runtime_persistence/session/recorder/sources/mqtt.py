"""The MQTT source: a persistent session (``clean_session=False``) subscribed at QoS 1.

``mqtt://host:port?topic=agents/#`` with optional ``client_id`` (default ``keepup-recorder``:
the broker keeps the session's messages under this name while the recorder is down) and ``qos``
(``1``, the default, or ``0``). Acknowledgements are manual: a message is acknowledged (PUBACK)
only after the batch holding it is durable, so a crash means redelivery, and the store's dedup by
id makes the recording exactly once. What a broker queues for an absent session is bounded by
its own settings (Mosquitto: ``max_queued_messages``, 1000 by default), and it sends at most its
in-flight window unacknowledged (Mosquitto: 20), which bounds the recorder's batches on MQTT."""

from __future__ import annotations

import asyncio
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from runtime_persistence.session.recorder.sources import Delivery, source_options

__all__ = ["MqttSource"]


class MqttSource:
    """Deliveries from an MQTT broker, run on paho's network thread."""

    name = "mqtt"

    def __init__(self, url: str) -> None:
        from runtime_core import ValidationError

        host, port, options = source_options(url)
        self._url = url
        self._host, self._port = host, port
        self._topic = options.get("topic", "#")
        self._client_id = options.get("client_id", "keepup-recorder")
        self._qos = int(options.get("qos", "1"))
        if self._qos not in (0, 1):
            raise ValidationError(f"qos is 0 or 1, got {self._qos}")
        self._queue: asyncio.Queue[tuple[str, bytes, int, int]] | None = None
        self._client: mqtt.Client | None = None

    @property
    def url(self) -> str:
        return self._url

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, bytes, int, int]] = asyncio.Queue()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self._client_id, clean_session=False, manual_ack=True
        )
        client.reconnect_delay_set(min_delay=1, max_delay=2)

        def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            c.subscribe(self._topic, qos=self._qos)

        def on_message(c: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (msg.topic, bytes(msg.payload), msg.mid, msg.qos))

        client.on_connect = on_connect
        client.on_message = on_message
        client.connect_async(self._host, self._port, keepalive=30)
        client.loop_start()
        self._queue, self._client = queue, client

    def _ack(self, mid: int, qos: int) -> Any:
        client = self._client

        async def ack() -> None:
            if client is not None and qos > 0:
                client.ack(mid, qos)

        return ack

    async def receive(self, most: int, timeout: float) -> list[Delivery]:
        queue = self._queue
        if queue is None:
            raise RuntimeError("start() the source first")
        try:
            first = await asyncio.wait_for(queue.get(), timeout=max(timeout, 0.001))
        except TimeoutError:
            return []
        items = [first]
        while len(items) < most and not queue.empty():
            items.append(queue.get_nowait())
        return [Delivery(topic=t, body=b, ack=self._ack(mid, qos)) for t, b, mid, qos in items]

    async def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
