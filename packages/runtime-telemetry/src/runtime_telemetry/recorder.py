"""The standard telemetry: events written as structured log records, counters and timings kept in
a :class:`~runtime_telemetry.MetricsRegistry`; and a tee that sends to several telemetries."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runtime_core import Clock, SystemClock, Telemetry, ValidationError

from runtime_telemetry.logs import FIELDS_ATTR, current_log_context
from runtime_telemetry.metrics import MetricsRegistry

__all__ = ["EventRecord", "StructuredTelemetry", "TeeTelemetry"]


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event as :class:`StructuredTelemetry` kept it: name, fields (the log context included)
    and when it happened."""

    name: str
    at: datetime
    fields: Mapping[str, Any] = field(default_factory=dict)


class StructuredTelemetry:
    """Implements :class:`runtime_core.Telemetry`.

    * ``event`` logs one record on ``logger`` (default ``keepup.events``) whose message is the event
      name and whose fields are the log context plus the event's fields, and keeps the last
      ``keep_events`` events in memory (:meth:`recent_events`);
    * ``count`` and ``observe`` update ``registry``;
    * ``span`` times a block with ``clock.monotonic``, observes the duration under the span's name
      with the label ``ok`` (``"true"``/``"false"``), and emits the event with ``duration_ms``,
      ``ok`` and, on an exception, ``error`` (its class name); the exception is re-raised.

    Telemetry never raises into the caller for an unserialisable field; it does raise
    ValidationError for a malformed metric name or label, which is a programming error."""

    def __init__(
        self,
        registry: MetricsRegistry | None = None,
        *,
        logger: logging.Logger | str = "keepup.events",
        level: int = logging.INFO,
        clock: Clock | None = None,
        keep_events: int = 1000,
    ) -> None:
        if isinstance(keep_events, bool) or not isinstance(keep_events, int) or keep_events < 0:
            raise ValidationError(f"keep_events must be a non-negative integer, got {keep_events!r}")
        self.registry = registry if registry is not None else MetricsRegistry()
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.level = level
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._events: deque[EventRecord] = deque(maxlen=keep_events)

    def event(self, name: str, **fields: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ValidationError("an event name must be a non-empty string")
        if self._events.maxlen:
            self._events.append(
                EventRecord(name=name, at=self.clock.now(), fields={**current_log_context(), **fields})
            )
        if self.logger.isEnabledFor(self.level):
            self.logger.log(self.level, name, extra={FIELDS_ATTR: {"event": name, **fields}})

    def count(self, name: str, value: int = 1, **labels: str) -> None:
        self.registry.increment(name, value, **labels)

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        self.registry.observe(name, seconds, **labels)

    def span(self, name: str, **fields: Any) -> AbstractContextManager[dict[str, Any]]:
        return self._span(name, fields)

    @contextmanager
    def _span(self, name: str, fields: dict[str, Any]) -> Iterator[dict[str, Any]]:
        extra = dict(fields)
        start = self.clock.monotonic()
        ok = True
        try:
            yield extra
        except BaseException as exc:
            ok = False
            extra.setdefault("error", type(exc).__name__)
            raise
        finally:
            seconds = max(0.0, self.clock.monotonic() - start)
            self.observe(name, seconds, ok="true" if ok else "false")
            extra.pop("duration_ms", None)
            extra.pop("ok", None)
            self.event(name, duration_ms=round(seconds * 1000, 3), ok=ok, **extra)

    def recent_events(self, name: str | None = None) -> list[EventRecord]:
        """The events kept in memory, oldest first (only those called ``name`` if given)."""
        return [e for e in self._events if name is None or e.name == name]


class TeeTelemetry:
    """Sends everything to each of ``targets`` in order (e.g. structured logs and OpenTelemetry).

    A span opens a span on every target and hands the block one dict; what the block adds to it
    reaches every target's span."""

    def __init__(self, *targets: Telemetry) -> None:
        self.targets = targets

    def event(self, name: str, **fields: Any) -> None:
        for target in self.targets:
            target.event(name, **fields)

    def count(self, name: str, value: int = 1, **labels: str) -> None:
        for target in self.targets:
            target.count(name, value, **labels)

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        for target in self.targets:
            target.observe(name, seconds, **labels)

    def span(self, name: str, **fields: Any) -> AbstractContextManager[dict[str, Any]]:
        return self._span(name, fields)

    @contextmanager
    def _span(self, name: str, fields: dict[str, Any]) -> Iterator[dict[str, Any]]:
        with ExitStack() as stack:
            inner = [stack.enter_context(target.span(name, **fields)) for target in self.targets]
            extra: dict[str, Any] = {}
            try:
                yield extra
            finally:
                for d in inner:
                    d.update(extra)
