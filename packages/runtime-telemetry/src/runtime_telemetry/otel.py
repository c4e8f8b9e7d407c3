"""The OpenTelemetry bridge: :class:`runtime_core.Telemetry` on top of the OpenTelemetry API.

Imported only when chosen (``runtime_telemetry.otel_telemetry()`` or an explicit import), so the
rest of Keepup never needs OpenTelemetry. Without the ``otel`` extra, importing this module raises
:class:`runtime_core.DriverUnavailableError` naming the extra to install.

Mapping: ``count`` → an OpenTelemetry counter; ``observe`` → a histogram in seconds; ``span`` → a
trace span (the current one while the block runs) plus a duration in the histogram of the same
name; ``event`` → an event on the current span, or a zero-length span of its own when no span is
recording, so no event is dropped.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from runtime_core import Clock, DriverUnavailableError, SystemClock

try:
    from opentelemetry import metrics as _metrics
    from opentelemetry import trace as _trace
    from opentelemetry.trace import Status, StatusCode
except ImportError as _exc:  # pragma: no cover - exercised by a test that hides the library
    raise DriverUnavailableError(
        "the OpenTelemetry bridge needs the OpenTelemetry API; install it with "
        "pip install 'runtime-telemetry[otel]'",
        extra="runtime-telemetry[otel]",
    ) from _exc

__all__ = ["OtelTelemetry"]

_Attr = str | bool | int | float


def _attribute(value: Any) -> _Attr | list[str]:
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    try:
        return json.dumps(value, default=str, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _attributes(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _attribute(value) for key, value in fields.items() if value is not None}


class OtelTelemetry:
    """Implements :class:`runtime_core.Telemetry` with the OpenTelemetry API.

    ``tracer_provider`` and ``meter_provider`` default to the globally configured ones (a no-op
    until the application installs an SDK)."""

    def __init__(
        self,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        instrumentation_name: str = "keepup",
        clock: Clock | None = None,
    ) -> None:
        self.tracer = _trace.get_tracer(instrumentation_name, tracer_provider=tracer_provider)
        self.meter = _metrics.get_meter(instrumentation_name, meter_provider=meter_provider)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()
        self._counters: dict[str, Any] = {}
        self._histograms: dict[str, Any] = {}

    def _counter(self, name: str) -> Any:
        with self._lock:
            inst = self._counters.get(name)
            if inst is None:
                inst = self._counters[name] = self.meter.create_counter(name)
            return inst

    def _histogram(self, name: str) -> Any:
        with self._lock:
            inst = self._histograms.get(name)
            if inst is None:
                inst = self._histograms[name] = self.meter.create_histogram(name, unit="s")
            return inst

    def event(self, name: str, **fields: Any) -> None:
        span = _trace.get_current_span()
        if span.is_recording():
            span.add_event(name, attributes=_attributes(fields))
            return
        with self.tracer.start_as_current_span(name, attributes=_attributes(fields)):
            pass

    def count(self, name: str, value: int = 1, **labels: str) -> None:
        self._counter(name).add(value, attributes=labels)

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        self._histogram(name).record(seconds, attributes=labels)

    def span(self, name: str, **fields: Any) -> AbstractContextManager[dict[str, Any]]:
        return self._span(name, fields)

    @contextmanager
    def _span(self, name: str, fields: dict[str, Any]) -> Iterator[dict[str, Any]]:
        extra = dict(fields)
        start = self.clock.monotonic()
        ok = True
        with self.tracer.start_as_current_span(name, attributes=_attributes(fields)) as span:
            try:
                yield extra
            except BaseException as exc:
                ok = False
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            finally:
                seconds = max(0.0, self.clock.monotonic() - start)
                span.set_attributes(_attributes({**extra, "duration_ms": seconds * 1000, "ok": ok}))
                self.observe(name, seconds, ok="true" if ok else "false")
