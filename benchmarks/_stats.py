"""How every Keepup benchmark reports: side by side in one run, interleaved rounds, the median
ratio with its min-max, and the load average. Never best-of, never a single sample."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Ratio", "load_average", "rounds", "timed"]


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def timed(fn: Callable[[], int]) -> float:
    """Operations per second of one call of ``fn`` (which returns how many operations it did)."""
    start = time.perf_counter()
    n = fn()
    elapsed = time.perf_counter() - start
    return n / elapsed if elapsed > 0 else float("inf")


def rounds(variants: Mapping[str, Callable[[], int]], count: int) -> dict[str, list[float]]:
    """Run every variant once per round, ``count`` rounds, rotating which goes first so that no
    variant always runs on a warmer (or more loaded) machine; ops/second per variant per round."""
    names = list(variants)
    out: dict[str, list[float]] = {name: [] for name in names}
    for r in range(count):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            out[name].append(timed(variants[name]))
    return out


@dataclass(frozen=True, slots=True)
class Ratio:
    """Per-round ratios ``ours / theirs`` (higher is better for ops/second)."""

    values: Sequence[float]

    @classmethod
    def of(cls, ours: Sequence[float], theirs: Sequence[float]) -> Ratio:
        return cls([a / b for a, b in zip(ours, theirs, strict=True)])

    def __str__(self) -> str:
        return (
            f"{statistics.median(self.values):.2f}x "
            f"(min {min(self.values):.2f}, max {max(self.values):.2f}, {len(self.values)} rounds)"
        )


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
