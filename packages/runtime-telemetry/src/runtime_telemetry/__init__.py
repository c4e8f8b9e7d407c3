"""Keepup telemetry: structured logging on the standard ``logging`` module, counters and timing
histograms behind :class:`runtime_core.Telemetry`, a null implementation, and an optional
OpenTelemetry bridge (``runtime-telemetry[otel]``), imported only by :func:`otel_telemetry`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime_core import Clock, NullTelemetry

from runtime_telemetry.logs import (
    FIELDS_ATTR,
    ContextFilter,
    HumanFormatter,
    JsonFormatter,
    LogFormat,
    configure_logging,
    current_log_context,
    log_context,
)
from runtime_telemetry.metrics import (
    DEFAULT_BUCKETS,
    HistogramSnapshot,
    LabelSet,
    MetricsRegistry,
    MetricsSnapshot,
)
from runtime_telemetry.recorder import EventRecord, StructuredTelemetry, TeeTelemetry

if TYPE_CHECKING:
    from runtime_telemetry.otel import OtelTelemetry

__version__ = "0.1.0"

OTEL_EXTRA = "runtime-telemetry[otel]"
"""The extra that installs what :func:`otel_telemetry` needs."""

__all__ = [
    "DEFAULT_BUCKETS",
    "FIELDS_ATTR",
    "OTEL_EXTRA",
    "ContextFilter",
    "EventRecord",
    "HistogramSnapshot",
    "HumanFormatter",
    "JsonFormatter",
    "LabelSet",
    "LogFormat",
    "MetricsRegistry",
    "MetricsSnapshot",
    "NullTelemetry",
    "StructuredTelemetry",
    "TeeTelemetry",
    "configure_logging",
    "current_log_context",
    "log_context",
    "otel_telemetry",
]


def otel_telemetry(
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    instrumentation_name: str = "keepup",
    clock: Clock | None = None,
) -> OtelTelemetry:
    """Telemetry sent through OpenTelemetry (the global providers unless given).

    Imports the bridge only now. Raises :class:`runtime_core.DriverUnavailableError` naming
    ``runtime-telemetry[otel]`` when the OpenTelemetry API is not installed."""
    from runtime_telemetry.otel import OtelTelemetry

    return OtelTelemetry(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        instrumentation_name=instrumentation_name,
        clock=clock,
    )
