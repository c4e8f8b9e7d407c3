"""The ZeroMQ broker and its helpers (the only module of runtime-execution importing pyzmq)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import zmq
from runtime_core import StorageError, ValidationError

from runtime_execution.broker.wire import message_body

__all__ = ["Broker", "Publisher", "Subscriber"]


def _heartbeat(sock: zmq.Socket[bytes]) -> None:
    """ZMTP heartbeats: a peer that died without closing its connection (SIGKILL, a lost host)
    is noticed within seconds, so its pipe and its subscriptions do not linger; reconnects are
    quick and capped."""
    sock.setsockopt(zmq.HEARTBEAT_IVL, 1000)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)


class Broker:
    """XSUB ``frontend`` -> XPUB ``backend`` forwarding on a background thread
    (``zmq.proxy_steerable``). Subscriptions travel upstream to the publishers; messages travel
    downstream to every matching subscriber. ``hwm``: messages queued per peer before ZeroMQ
    drops (pub/sub never blocks a publisher)."""

    def __init__(self, frontend: str, backend: str, *, hwm: int = 1_000_000) -> None:
        self.frontend = frontend
        self.backend = backend
        self._hwm = hwm
        self._ctx = zmq.Context()
        self._control = f"inproc://keepup-broker-control-{id(self)}"
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def _serve(self) -> None:
        xsub = self._ctx.socket(zmq.XSUB)
        xpub = self._ctx.socket(zmq.XPUB)
        control = self._ctx.socket(zmq.PAIR)
        try:
            for sock in (xsub, xpub):
                _heartbeat(sock)
                sock.setsockopt(zmq.LINGER, 0)
                sock.setsockopt(zmq.SNDHWM, self._hwm)
                sock.setsockopt(zmq.RCVHWM, self._hwm)
            xsub.bind(self.frontend)
            xpub.bind(self.backend)
            control.bind(self._control)
        except zmq.ZMQError as exc:
            self._error = exc
            self._ready.set()
            for sock in (xsub, xpub, control):
                sock.close(linger=0)
            return
        self._ready.set()
        try:
            zmq.proxy_steerable(xsub, xpub, None, control)
        except zmq.ContextTerminated:
            pass
        finally:
            for sock in (xsub, xpub, control):
                sock.close(linger=0)

    def start(self) -> Broker:
        """Bind and start forwarding; StorageError when an endpoint cannot be bound."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._serve, name="keepup-broker", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise StorageError(f"the broker cannot bind {self.frontend} / {self.backend}: {self._error}")
        return self

    def stop(self) -> None:
        """Stop forwarding and release the endpoints."""
        if self._thread is not None:
            control = self._ctx.socket(zmq.PAIR)
            control.connect(self._control)
            control.send(b"TERMINATE")
            self._thread.join()
            control.close(linger=0)
            self._thread = None
        self._ctx.term()

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Publisher:
    """A PUB socket connected to a broker's frontend. Each :meth:`publish` stamps a new id, the
    sender and the next sequence number (from 1), so a recorder can tell a lost message from a
    quiet sender. ZeroMQ delivers only to subscriptions it already knows: a publisher that has
    just connected should give them a moment (:meth:`wait_ready`)."""

    def __init__(self, frontend: str, sender: str, *, hwm: int = 1_000_000, first_seq: int = 1) -> None:
        if not isinstance(sender, str) or not sender:
            raise ValidationError("a publisher needs a sender name")
        self.sender = sender
        self.seq = first_seq - 1
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.PUB)
        _heartbeat(self._sock)
        self._sock.setsockopt(zmq.SNDHWM, hwm)
        self._sock.setsockopt(zmq.LINGER, 2000)
        self._sock.connect(frontend)

    def wait_ready(self, seconds: float = 0.3) -> None:
        """Give the connection and the subscriptions time to arrive."""
        threading.Event().wait(seconds)

    def publish(
        self,
        topic: str,
        text: str | None = None,
        *,
        conversation: str | None = None,
        role: str | None = None,
        **fields: Any,
    ) -> bytes:
        """Send one message and return its body."""
        self.seq += 1
        body = message_body(self.sender, self.seq, text, conversation=conversation, role=role, **fields)
        self._sock.send_multipart([topic.encode("utf-8"), body])
        return body

    def send_raw(self, topic: str, body: bytes) -> None:
        """Send a body as it is (no id, no sequence number)."""
        self._sock.send_multipart([topic.encode("utf-8"), body])

    def close(self) -> None:
        self._sock.close()
        self._ctx.term()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Subscriber:
    """A SUB socket connected to a broker's backend."""

    def __init__(self, backend: str, topics: Sequence[str] = ()) -> None:
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.SUB)
        _heartbeat(self._sock)
        self._sock.setsockopt(zmq.LINGER, 0)
        for topic in topics or ("",):
            self._sock.setsockopt(zmq.SUBSCRIBE, topic.encode("utf-8"))
        self._sock.connect(backend)

    def receive(self, timeout: float = 1.0) -> tuple[str, Any] | None:
        """The next ``(topic, body)`` (the body decoded from JSON when it is JSON, else bytes),
        or None after ``timeout`` seconds."""
        if not self._sock.poll(int(timeout * 1000)):
            return None
        parts = self._sock.recv_multipart()
        topic, body = parts[0].decode("utf-8", "replace"), b"".join(parts[1:])
        try:
            return topic, json.loads(body)
        except ValueError:
            return topic, body

    def close(self) -> None:
        self._sock.close(linger=0)
        self._ctx.term()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
