"""The agent message broker: ZeroMQ XSUB/XPUB forwarding, and small publish/subscribe helpers.

Publishers connect PUB sockets to the broker's **frontend** (an XSUB socket); subscribers, the
recorder among them, connect SUB sockets to its **backend** (an XPUB socket). A message is a
two-frame multipart ``[topic, body]``; the body is UTF-8 JSON whose fields ``id``, ``sender``,
``seq`` (per-sender sequence, from 1), ``conversation``, ``role`` and ``text`` a recorder
recognises (see :func:`message_body`). The broker forwards bytes and never looks inside them.

pyzmq is the extra ``runtime-execution[zmq]``: this module imports it only when a broker,
publisher or subscriber is opened, and names the extra when it is missing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime_execution.broker.wire import message_body

if TYPE_CHECKING:
    from runtime_execution.broker.zeromq import Broker, Publisher, Subscriber

__all__ = ["message_body", "open_broker", "open_publisher", "open_subscriber"]


def _zeromq() -> object:
    from runtime_core import DriverUnavailableError

    try:
        from runtime_execution.broker import zeromq
    except ImportError as exc:
        raise DriverUnavailableError(
            f"the ZeroMQ broker needs pyzmq: pip install 'runtime-execution[zmq]' ({exc})"
        ) from exc
    return zeromq


def open_broker(frontend: str, backend: str, *, hwm: int = 1_000_000) -> Broker:
    """A broker (not started: call ``start()`` or use it as a context manager) that binds
    ``frontend`` (XSUB, where publishers connect) and ``backend`` (XPUB, where subscribers
    connect), e.g. ``tcp://127.0.0.1:5555`` and ``tcp://127.0.0.1:5556``."""
    from runtime_execution.broker.zeromq import Broker

    _zeromq()
    return Broker(frontend, backend, hwm=hwm)


def open_publisher(frontend: str, sender: str, *, hwm: int = 1_000_000) -> Publisher:
    """A publisher connected to a broker's ``frontend`` that stamps each message with an id,
    ``sender`` and the next sequence number."""
    _zeromq()
    from runtime_execution.broker.zeromq import Publisher

    return Publisher(frontend, sender, hwm=hwm)


def open_subscriber(backend: str, *topics: str) -> Subscriber:
    """A subscriber connected to a broker's ``backend``, subscribed to ``topics`` (prefixes;
    none: every topic)."""
    _zeromq()
    from runtime_execution.broker.zeromq import Subscriber

    return Subscriber(backend, topics)
