"""Where a recorder's messages come from: one small :class:`MessageSource` interface and a module per
broker, loaded by URL scheme on first use (its client library is an extra, imported only there):

* ``zmq://host:port[?topic=prefix]``: a ZeroMQ SUB socket connected to a broker's XPUB backend
  (``runtime-persistence[zmq]``);
* ``nats://host:port?stream=S&subject=agents.>[&durable=NAME]``: a NATS JetStream durable pull
  consumer, acknowledged only after the batch is durable (``runtime-persistence[nats]``);
* ``mqtt://host:port?topic=agents/#[&client_id=ID&qos=1]``: an MQTT persistent session,
  acknowledged only after the batch is durable (``runtime-persistence[mqtt]``)."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from runtime_core import DriverUnavailableError, ValidationError

__all__ = ["SOURCE_SCHEMES", "Delivery", "MessageSource", "open_source", "source_options"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message from a source: its topic (subject), its body, and how to acknowledge it
    (None: the source does not redeliver, nothing to acknowledge)."""

    topic: str
    body: bytes
    ack: Callable[[], Awaitable[None]] | None = None


@runtime_checkable
class MessageSource(Protocol):
    """A stream of deliveries. A recorder calls :meth:`start`, then :meth:`receive` in a loop,
    acknowledges each delivery once the batch holding it is durable, and :meth:`close` at the end.
    A source reconnects by itself when its broker restarts."""

    @property
    def name(self) -> str:
        """The scheme (``zmq``, ``nats``, ``mqtt``), stored with every message."""
        ...

    @property
    def url(self) -> str: ...

    async def start(self) -> None: ...

    async def receive(self, most: int, timeout: float) -> list[Delivery]:
        """Up to ``most`` deliveries, waiting at most ``timeout`` seconds for the first one
        (an empty list when none came)."""
        ...

    async def close(self) -> None: ...


SOURCE_SCHEMES: dict[str, tuple[str, str, str]] = {
    "zmq": ("runtime_persistence.session.recorder.sources.zeromq", "ZmqSource", "zmq"),
    "nats": ("runtime_persistence.session.recorder.sources.nats_jetstream", "NatsSource", "nats"),
    "mqtt": ("runtime_persistence.session.recorder.sources.mqtt", "MqttSource", "mqtt"),
}
"""scheme -> (module, class, the extra of runtime-persistence that installs its library)."""


def source_options(url: str) -> tuple[str, int, dict[str, str]]:
    """``(host, port, query options)`` of a source URL; ValidationError when it has no host/port.
    The query is read as written: ``#`` (an MQTT wildcard) is not a fragment and ``+`` is not a
    space; ``%XX`` escapes are decoded."""
    base, _, query = url.partition("?")
    parts = urlsplit(base)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ValidationError(
            f"a source URL names a host and port, like zmq://127.0.0.1:5556; got {url!r:.200}"
        )
    options: dict[str, str] = {}
    for pair in query.split("&") if query else ():
        name, _, value = pair.partition("=")
        options[unquote(name)] = unquote(value)
    return parts.hostname, port, options


def open_source(url: str) -> MessageSource:
    """The source for ``url`` (not started). ValidationError for an unknown scheme or a
    malformed URL; DriverUnavailableError naming the extra when the client library is missing."""
    if not isinstance(url, str) or "://" not in url:
        raise ValidationError(f"a source is a URL such as zmq://127.0.0.1:5556; got {url!r:.200}")
    scheme = url.split("://", 1)[0].lower()
    if scheme not in SOURCE_SCHEMES:
        known = ", ".join(f"{s}://" for s in SOURCE_SCHEMES)
        raise ValidationError(f"unknown source scheme {scheme}:// (known: {known})")
    module_name, class_name, extra = SOURCE_SCHEMES[scheme]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DriverUnavailableError(
            f"the {scheme}:// source needs its client library: pip install 'runtime-persistence[{extra}]' ({exc})"
        ) from exc
    source: MessageSource = getattr(module, class_name)(url)
    return source
