"""StructuredTelemetry and TeeTelemetry against the core Telemetry protocol: real log lines and
real metrics."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from runtime_core import ManualClock, NullTelemetry, Telemetry, ValidationError
from runtime_telemetry import (
    MetricsRegistry,
    StructuredTelemetry,
    TeeTelemetry,
    configure_logging,
    log_context,
)


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = configure_logging(fmt="json", stream=out, logger="keepup.rec")
    yield out
    logging.getLogger("keepup.rec").removeHandler(handler)


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_structured_and_null_telemetry_satisfy_the_core_protocol() -> None:
    assert isinstance(StructuredTelemetry(), Telemetry)
    assert isinstance(TeeTelemetry(), Telemetry)
    assert isinstance(NullTelemetry(), Telemetry)


def test_event_writes_a_structured_log_line_with_context(stream: io.StringIO) -> None:
    tel = StructuredTelemetry(logger="keepup.rec")
    with log_context(thread_id="t-1"):
        tel.event("checkpoint.saved", checkpoint_id="c-1", step=2, msg="field-called-msg")
    [rec] = records(stream)
    assert rec["msg"] == "checkpoint.saved"
    assert rec["event"] == "checkpoint.saved"
    assert (rec["thread_id"], rec["checkpoint_id"], rec["step"], rec["msg_"]) == (
        "t-1",
        "c-1",
        2,
        "field-called-msg",
    )
    [kept] = tel.recent_events("checkpoint.saved")
    assert kept.fields == {"thread_id": "t-1", "checkpoint_id": "c-1", "step": 2, "msg": "field-called-msg"}


def test_count_and_observe_land_in_the_registry() -> None:
    reg = MetricsRegistry()
    tel = StructuredTelemetry(reg)
    tel.count("blob.put", driver="memory")
    tel.count("blob.put", 3, driver="memory")
    tel.observe("blob.put.seconds", 0.25, driver="memory")
    assert reg.counter("blob.put", driver="memory") == 4
    hist = reg.histogram("blob.put.seconds", driver="memory")
    assert hist is not None and hist.total == 0.25


def test_span_times_the_block_with_the_clock_and_emits_one_event(stream: io.StringIO) -> None:
    clock = ManualClock()
    reg = MetricsRegistry()
    tel = StructuredTelemetry(reg, logger="keepup.rec", clock=clock)
    with tel.span("run.step", run_id="r-1") as fields:
        clock.advance(1.5)
        fields["tool_calls"] = 2
    hist = reg.histogram("run.step", ok="true")
    assert hist is not None and (hist.count, hist.total) == (1, 1.5)
    [rec] = records(stream)
    assert (rec["msg"], rec["run_id"], rec["tool_calls"], rec["duration_ms"], rec["ok"]) == (
        "run.step",
        "r-1",
        2,
        1500.0,
        True,
    )


def test_span_records_failure_and_reraises(stream: io.StringIO) -> None:
    clock = ManualClock()
    reg = MetricsRegistry()
    tel = StructuredTelemetry(reg, logger="keepup.rec", clock=clock)
    with pytest.raises(KeyError), tel.span("tool.call", tool="read"):
        clock.advance(0.5)
        raise KeyError("x")
    assert reg.histogram("tool.call", ok="true") is None
    hist = reg.histogram("tool.call", ok="false")
    assert hist is not None and hist.total == 0.5
    [rec] = records(stream)
    assert (rec["ok"], rec["error"], rec["tool"]) == (False, "KeyError", "read")


def test_events_below_the_logger_level_are_still_kept_in_memory(stream: io.StringIO) -> None:
    tel = StructuredTelemetry(logger="keepup.rec", level=logging.DEBUG)
    tel.event("quiet")
    assert stream.getvalue() == ""
    assert [e.name for e in tel.recent_events()] == ["quiet"]


def test_recent_events_are_bounded() -> None:
    tel = StructuredTelemetry(keep_events=3)
    for i in range(5):
        tel.event("e", i=i)
    assert [e.fields["i"] for e in tel.recent_events()] == [2, 3, 4]
    assert StructuredTelemetry(keep_events=0).recent_events() == []


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValidationError):
        StructuredTelemetry(keep_events=-1)
    with pytest.raises(ValidationError):
        StructuredTelemetry().event("")


def test_tee_sends_everything_to_every_target_and_shares_span_fields() -> None:
    clock = ManualClock()
    a = StructuredTelemetry(clock=clock)
    b = StructuredTelemetry(clock=clock)
    tee = TeeTelemetry(a, b, NullTelemetry())
    tee.event("hello", x=1)
    tee.count("c", 2)
    tee.observe("h", 0.1)
    with tee.span("s") as fields:
        clock.advance(2)
        fields["added"] = "yes"
    for target in (a, b):
        assert [e.name for e in target.recent_events()] == ["hello", "s"]
        assert target.recent_events("s")[0].fields["added"] == "yes"
        assert target.registry.counter("c") == 2
        span_hist = target.registry.histogram("s", ok="true")
        assert span_hist is not None and span_hist.total == 2.0
