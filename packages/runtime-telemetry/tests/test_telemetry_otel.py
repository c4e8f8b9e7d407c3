"""The OpenTelemetry bridge, checked with the SDK's in-memory exporter and reader; and the clear
error when the extra is missing."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import pytest
from runtime_core import DriverUnavailableError, ManualClock, Telemetry

pytest.importorskip("opentelemetry.sdk", reason="opentelemetry-sdk is a test dependency of the otel bridge")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from runtime_telemetry import OTEL_EXTRA, otel_telemetry


def _setup(clock: ManualClock | None = None) -> tuple[Any, InMemorySpanExporter, InMemoryMetricReader]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    tel = otel_telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider, clock=clock)
    return tel, exporter, reader


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    out: dict[str, list[Any]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def test_bridge_satisfies_the_core_protocol() -> None:
    tel, _, _ = _setup()
    assert isinstance(tel, Telemetry)


def test_span_becomes_a_trace_span_with_fields_and_a_histogram_point() -> None:
    clock = ManualClock()
    tel, exporter, reader = _setup(clock)
    with tel.span("run.step", run_id="r-1") as fields:
        clock.advance(0.25)
        tel.event("tool.called", tool="read", args={"path": "a"})
        fields["steps"] = 3
    [span] = exporter.get_finished_spans()
    assert span.name == "run.step"
    assert span.attributes is not None
    assert span.attributes["run_id"] == "r-1"
    assert span.attributes["steps"] == 3
    assert span.attributes["ok"] is True
    assert span.attributes["duration_ms"] == 250.0
    [event] = span.events
    assert event.name == "tool.called"
    assert event.attributes is not None
    assert event.attributes["tool"] == "read"
    assert event.attributes["args"] == '{"path": "a"}'
    [point] = _points(reader)["run.step"]
    assert (point.count, point.sum, dict(point.attributes)) == (1, 0.25, {"ok": "true"})


def test_failed_span_has_error_status_and_the_exception_propagates() -> None:
    tel, exporter, reader = _setup(ManualClock())
    with pytest.raises(ValueError, match="nope"), tel.span("tool.call"):
        raise ValueError("nope")
    [span] = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None and span.attributes["ok"] is False
    assert [p.attributes["ok"] for p in _points(reader)["tool.call"]] == ["false"]


def test_event_outside_a_span_gets_a_span_of_its_own() -> None:
    tel, exporter, _ = _setup()
    tel.event("checkpoint.saved", checkpoint_id="c-1")
    [span] = exporter.get_finished_spans()
    assert span.name == "checkpoint.saved"
    assert span.attributes is not None and span.attributes["checkpoint_id"] == "c-1"


def test_counters_and_histograms_are_exported() -> None:
    tel, _, reader = _setup()
    tel.count("blob.put", 2, driver="sqlite")
    tel.count("blob.put", 1, driver="sqlite")
    tel.observe("blob.put.seconds", 0.5, driver="sqlite")
    points = _points(reader)
    [counter] = points["blob.put"]
    assert (counter.value, dict(counter.attributes)) == (3, {"driver": "sqlite"})
    [hist] = points["blob.put.seconds"]
    assert (hist.count, hist.sum) == (1, 0.5)


def test_missing_opentelemetry_raises_an_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # Hide the library the way an environment without the extra would: a None entry in
    # sys.modules makes every import of it fail with ImportError.
    for name in [m for m in sys.modules if m == "opentelemetry" or m.startswith("opentelemetry.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "runtime_telemetry.otel", raising=False)
    with pytest.raises(DriverUnavailableError, match=r"runtime-telemetry\[otel\]") as info:
        otel_telemetry()
    assert info.value.extra == OTEL_EXTRA
    with pytest.raises(DriverUnavailableError):
        importlib.import_module("runtime_telemetry.otel")


def test_the_named_extra_exists_in_the_distribution_metadata() -> None:
    from importlib.metadata import metadata

    extras = metadata("runtime-telemetry").get_all("Provides-Extra") or []
    assert OTEL_EXTRA == "runtime-telemetry[otel]"
    assert "otel" in extras


def test_importing_runtime_telemetry_does_not_import_opentelemetry() -> None:
    import subprocess

    code = (
        "import sys, runtime_telemetry; "
        "print(any(m == 'opentelemetry' or m.startswith('opentelemetry.') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
