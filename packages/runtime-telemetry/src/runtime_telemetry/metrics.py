"""An in-memory metrics registry: counters and timing histograms, labelled, readable back.

It is what :class:`runtime_telemetry.StructuredTelemetry` records into, and what tests and the
command line read (``registry.counter("checkpoint.saved")``, ``registry.histogram(...).quantile``).
Thread-safe; every update is O(number of buckets) at worst, so it is cheap enough for hot paths.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from runtime_core import ValidationError

__all__ = ["DEFAULT_BUCKETS", "HistogramSnapshot", "LabelSet", "MetricsRegistry", "MetricsSnapshot"]

DEFAULT_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
"""Upper bounds, in seconds, of the default timing buckets (a last bucket holds the rest)."""

LabelSet = tuple[tuple[str, str], ...]
"""Labels as a sorted tuple of (name, value) pairs: the key of one series of a metric."""

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,199}$")


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValidationError(
            "a metric name is 1-200 characters of letters, digits, '_', '.', ':', '-' starting with a "
            f"letter or '_'; got {name!r:.80}"
        )
    return name


def _labels(labels: Mapping[str, object]) -> LabelSet:
    for key, value in labels.items():
        if not isinstance(value, str):
            raise ValidationError(f"label {key!r} must be a string, got {type(value).__name__}")
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """A histogram at one moment. ``bucket_counts[i]`` counts values ``<= bounds[i]`` and above the
    previous bound (not cumulative); the last entry counts values above every bound."""

    count: int
    total: float
    min: float
    max: float
    bounds: tuple[float, ...]
    bucket_counts: tuple[int, ...]

    @property
    def mean(self) -> float:
        """The average value (0.0 when empty)."""
        return self.total / self.count if self.count else 0.0

    def quantile(self, q: float) -> float:
        """An upper estimate of the ``q`` quantile (0 ≤ q ≤ 1): the bound of the bucket holding it,
        never more than the largest value seen. 0.0 when empty."""
        if not 0.0 <= q <= 1.0:
            raise ValidationError(f"a quantile is between 0 and 1, got {q!r}")
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for bound, n in zip((*self.bounds, math.inf), self.bucket_counts, strict=True):
            seen += n
            if seen >= rank:
                return min(bound, self.max)
        return self.max

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for JSON output)."""
        return {
            "count": self.count,
            "sum": self.total,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "p50": self.quantile(0.5),
            "p95": self.quantile(0.95),
            "p99": self.quantile(0.99),
        }


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """Every counter and histogram series at one moment, keyed by (name, labels)."""

    counters: Mapping[tuple[str, LabelSet], int] = field(default_factory=dict)
    histograms: Mapping[tuple[str, LabelSet], HistogramSnapshot] = field(default_factory=dict)

    def counter(self, name: str, **labels: str) -> int:
        """The value of one counter series (0 if it never moved)."""
        return self.counters.get((name, _labels(labels)), 0)

    def histogram(self, name: str, **labels: str) -> HistogramSnapshot | None:
        """One histogram series, or None if nothing was observed in it."""
        return self.histograms.get((name, _labels(labels)))

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ``{"counters": [...], "histograms": [...]}``, each entry with its name and
        labels, sorted by name then labels."""
        return {
            "counters": [
                {"name": name, "labels": dict(labels), "value": value}
                for (name, labels), value in sorted(self.counters.items())
            ],
            "histograms": [
                {"name": name, "labels": dict(labels), **hist.to_dict()}
                for (name, labels), hist in sorted(self.histograms.items(), key=lambda item: item[0])
            ],
        }


class _Histogram:
    __slots__ = ("count", "counts", "max", "min", "total")

    def __init__(self, n_buckets: int) -> None:
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.counts = [0] * (n_buckets + 1)


class MetricsRegistry:
    """Counters and histograms kept in memory. Safe to share between threads.

    ``buckets`` are the histogram upper bounds (strictly increasing, positive); the default suits
    durations in seconds from half a millisecond to a minute."""

    def __init__(self, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        bounds = tuple(float(b) for b in buckets)
        if not bounds or any(not math.isfinite(b) or b <= 0 for b in bounds):
            raise ValidationError("histogram buckets must be positive finite numbers")
        if any(a >= b for a, b in pairwise(bounds)):
            raise ValidationError("histogram buckets must be strictly increasing")
        self._bounds = bounds
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, LabelSet], int] = {}
        self._histograms: dict[tuple[str, LabelSet], _Histogram] = {}

    @property
    def buckets(self) -> tuple[float, ...]:
        return self._bounds

    def increment(self, name: str, value: int = 1, **labels: str) -> int:
        """Add ``value`` (a non-negative integer) to a counter series; return its new value."""
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationError(f"a counter moves by a non-negative integer, got {value!r:.40}")
        key = (_check_name(name), _labels(labels))
        with self._lock:
            new = self._counters.get(key, 0) + value
            self._counters[key] = new
            return new

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Add a value (a finite, non-negative number, seconds for timings) to a histogram series."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValidationError(f"an observed value must be a finite number, got {value!r:.40}")
        if value < 0:
            raise ValidationError(f"an observed value must not be negative, got {value!r}")
        key = (_check_name(name), _labels(labels))
        index = bisect.bisect_left(self._bounds, value)
        with self._lock:
            hist = self._histograms.get(key)
            if hist is None:
                hist = self._histograms[key] = _Histogram(len(self._bounds))
            hist.count += 1
            hist.total += value
            hist.min = min(hist.min, value)
            hist.max = max(hist.max, value)
            hist.counts[index] += 1

    def counter(self, name: str, **labels: str) -> int:
        """The current value of one counter series (0 if it never moved)."""
        key = (name, _labels(labels))
        with self._lock:
            return self._counters.get(key, 0)

    def counter_total(self, name: str) -> int:
        """The sum of every series of counter ``name``, whatever their labels."""
        with self._lock:
            return sum(v for (n, _), v in self._counters.items() if n == name)

    def histogram(self, name: str, **labels: str) -> HistogramSnapshot | None:
        """One histogram series as it is now, or None if nothing was observed in it."""
        key = (name, _labels(labels))
        with self._lock:
            hist = self._histograms.get(key)
            return None if hist is None else self._freeze(hist)

    def snapshot(self) -> MetricsSnapshot:
        """Every series, copied under one lock (a consistent view)."""
        with self._lock:
            return MetricsSnapshot(
                counters=dict(self._counters),
                histograms={key: self._freeze(h) for key, h in self._histograms.items()},
            )

    def reset(self) -> None:
        """Forget every series."""
        with self._lock:
            self._counters.clear()
            self._histograms.clear()

    def _freeze(self, hist: _Histogram) -> HistogramSnapshot:
        return HistogramSnapshot(
            count=hist.count,
            total=hist.total,
            min=hist.min,
            max=hist.max,
            bounds=self._bounds,
            bucket_counts=tuple(hist.counts),
        )
