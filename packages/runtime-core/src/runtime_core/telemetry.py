"""The telemetry interface and its no-op implementation. runtime_telemetry holds the real ones."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol, runtime_checkable

__all__ = ["NullTelemetry", "Telemetry"]


@runtime_checkable
class Telemetry(Protocol):
    """Structured events, counters, timing histograms and timed spans."""

    def event(self, name: str, **fields: Any) -> None:
        """Record a structured event (``checkpoint.saved``, ``run.step``…) with its fields."""
        ...

    def count(self, name: str, value: int = 1, **labels: str) -> None: ...

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        """Add a duration to the histogram ``name``."""
        ...

    def span(self, name: str, **fields: Any) -> AbstractContextManager[dict[str, Any]]:
        """Time a block: on exit, observe its duration and emit an event ``name`` with
        ``duration_ms``, ``ok`` and the fields (the yielded dict may add more)."""
        ...


class NullTelemetry:
    """Telemetry that records nothing (the default when none is given)."""

    def event(self, name: str, **fields: Any) -> None:
        return None

    def count(self, name: str, value: int = 1, **labels: str) -> None:
        return None

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        return None

    def span(self, name: str, **fields: Any) -> AbstractContextManager[dict[str, Any]]:
        return _null_span()


@contextmanager
def _null_span() -> Iterator[dict[str, Any]]:
    yield {}
