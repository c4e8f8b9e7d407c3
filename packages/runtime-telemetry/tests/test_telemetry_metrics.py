"""The in-memory metrics registry: counters, histograms, labels, snapshots, thread safety."""

from __future__ import annotations

import json
import math
import threading

import pytest
from runtime_core import ValidationError
from runtime_telemetry import DEFAULT_BUCKETS, MetricsRegistry


def test_counters_add_up_per_label_set() -> None:
    reg = MetricsRegistry()
    reg.increment("checkpoint.saved")
    reg.increment("checkpoint.saved", 2)
    reg.increment("checkpoint.saved", driver="sqlite")
    reg.increment("checkpoint.saved", 5, driver="postgres")
    assert reg.counter("checkpoint.saved") == 3
    assert reg.counter("checkpoint.saved", driver="sqlite") == 1
    assert reg.counter("checkpoint.saved", driver="postgres") == 5
    assert reg.counter_total("checkpoint.saved") == 9
    assert reg.counter("never.moved") == 0


def test_label_order_does_not_matter() -> None:
    reg = MetricsRegistry()
    reg.increment("ops", a="1", b="2")
    reg.increment("ops", b="2", a="1")
    assert reg.counter("ops", b="2", a="1") == 2


def test_histogram_counts_sum_min_max_and_buckets() -> None:
    reg = MetricsRegistry(buckets=(0.1, 1.0, 10.0))
    for value in (0.05, 0.1, 0.5, 2.0, 50.0):
        reg.observe("step.seconds", value)
    hist = reg.histogram("step.seconds")
    assert hist is not None
    assert hist.count == 5
    assert hist.total == pytest.approx(52.65)
    assert (hist.min, hist.max) == (0.05, 50.0)
    # a value equal to a bound falls in that bound's bucket; the last bucket is "above all bounds"
    assert hist.bucket_counts == (2, 1, 1, 1)
    assert hist.mean == pytest.approx(52.65 / 5)


def test_quantiles_are_bucket_upper_bounds_capped_by_the_maximum() -> None:
    reg = MetricsRegistry(buckets=(0.1, 1.0, 10.0))
    for _ in range(90):
        reg.observe("t", 0.05)
    for _ in range(10):
        reg.observe("t", 3.0)
    hist = reg.histogram("t")
    assert hist is not None
    assert hist.quantile(0.5) == 0.1
    assert hist.quantile(0.9) == 0.1
    assert hist.quantile(0.95) == 3.0  # bucket bound 10.0, capped by the largest value seen
    assert hist.quantile(0.0) == 0.1
    with pytest.raises(ValidationError):
        hist.quantile(1.5)


def test_empty_histogram_is_none_and_snapshot_of_nothing_is_empty() -> None:
    reg = MetricsRegistry()
    assert reg.histogram("nothing") is None
    assert reg.snapshot().to_dict() == {"counters": [], "histograms": []}


def test_snapshot_is_a_consistent_copy_and_serialises_to_json() -> None:
    reg = MetricsRegistry()
    reg.increment("a", op="put")
    reg.observe("lat", 0.002, op="put")
    snap = reg.snapshot()
    reg.increment("a", op="put")
    assert snap.counter("a", op="put") == 1
    assert reg.counter("a", op="put") == 2
    data = json.loads(json.dumps(snap.to_dict()))
    assert data["counters"] == [{"name": "a", "labels": {"op": "put"}, "value": 1}]
    [h] = data["histograms"]
    assert (h["name"], h["labels"], h["count"], h["p50"]) == ("lat", {"op": "put"}, 1, 0.002)


def test_reset_forgets_every_series() -> None:
    reg = MetricsRegistry()
    reg.increment("a")
    reg.observe("b", 1.0)
    reg.reset()
    assert reg.counter("a") == 0
    assert reg.histogram("b") is None


@pytest.mark.parametrize("value", [-1, 1.5, True, "1"])
def test_counter_refuses_non_counts(value: object) -> None:
    with pytest.raises(ValidationError, match="non-negative integer"):
        MetricsRegistry().increment("a", value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [math.nan, math.inf, -0.5, "fast", None])
def test_histogram_refuses_non_durations(value: object) -> None:
    with pytest.raises(ValidationError):
        MetricsRegistry().observe("a", value)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "has space", "9starts-with-digit", "x" * 201, None])
def test_bad_metric_names_are_refused(name: object) -> None:
    with pytest.raises(ValidationError, match="metric name"):
        MetricsRegistry().increment(name)  # type: ignore[arg-type]


def test_label_values_must_be_strings() -> None:
    with pytest.raises(ValidationError, match="label 'n' must be a string"):
        MetricsRegistry().increment("a", n=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("buckets", [(), (1.0, 1.0), (2.0, 1.0), (0.0, 1.0), (1.0, math.inf)])
def test_bad_buckets_are_refused(buckets: tuple[float, ...]) -> None:
    with pytest.raises(ValidationError, match="buckets"):
        MetricsRegistry(buckets=buckets)


def test_default_buckets_are_increasing_seconds() -> None:
    assert list(DEFAULT_BUCKETS) == sorted(set(DEFAULT_BUCKETS))
    assert MetricsRegistry().buckets == DEFAULT_BUCKETS


def test_concurrent_updates_are_not_lost() -> None:
    reg = MetricsRegistry()

    def work() -> None:
        for _ in range(2000):
            reg.increment("hits")
            reg.observe("lat", 0.001)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert reg.counter("hits") == 8000
    hist = reg.histogram("lat")
    assert hist is not None and hist.count == 8000
