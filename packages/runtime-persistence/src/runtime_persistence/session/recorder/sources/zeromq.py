"""The ZeroMQ source: a SUB socket connected to a broker's XPUB backend, subscribed to every
topic (or to ``?topic=prefix``). The broker is not changed: a recorder is one more subscriber.

ZeroMQ pub/sub does not redeliver: a message published while the recorder is disconnected, or
dropped at a full queue, is gone. The recorder notices by the senders' sequence numbers and
records a gap. The receive queue is deep (``?hwm=``, default 1,000,000 messages) so a recorder
committing a batch does not drop what arrives meanwhile; the socket reconnects by itself when the
broker restarts."""

from __future__ import annotations

import zmq
import zmq.asyncio

from runtime_persistence.session.recorder.sources import Delivery, source_options

__all__ = ["ZmqSource"]


class ZmqSource:
    """Deliveries from ``zmq://host:port`` (a broker's backend)."""

    name = "zmq"

    def __init__(self, url: str) -> None:
        host, port, options = source_options(url)
        self._url = url
        self._endpoint = f"tcp://{host}:{port}"
        self._topic = options.get("topic", "").encode("utf-8")
        self._hwm = int(options.get("hwm", "1000000"))
        self._ctx: zmq.asyncio.Context | None = None
        self._sock: zmq.asyncio.Socket | None = None

    @property
    def url(self) -> str:
        return self._url

    async def start(self) -> None:
        self._ctx = zmq.asyncio.Context()
        sock = self._ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, self._hwm)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        sock.setsockopt(zmq.HEARTBEAT_IVL, 1000)  # a dead broker is noticed within seconds
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)
        sock.setsockopt(zmq.SUBSCRIBE, self._topic)
        sock.connect(self._endpoint)
        self._sock = sock

    async def receive(self, most: int, timeout: float) -> list[Delivery]:
        sock = self._sock
        if sock is None:
            raise RuntimeError("start() the source first")
        if not await sock.poll(int(max(timeout, 0) * 1000)):
            return []
        out: list[Delivery] = []
        while len(out) < most:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
                parts = await frames
            except zmq.Again:
                break
            if len(parts) >= 2:
                topic, body = bytes(parts[0]), b"".join(bytes(p) for p in parts[1:])
            else:
                topic, body = b"", bytes(parts[0])
            out.append(Delivery(topic=topic.decode("utf-8", "replace"), body=body))
        return out

    async def close(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
