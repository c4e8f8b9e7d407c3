"""A pytest plugin for the ``stress`` session: run the slow tests within a fixed time budget.

The slow tests (long races, crash harnesses, whole conformance suites on a second backend) take
longer together than CI can spend on them. With this plugin (``-p scripts.stress_budget``):

* the budget is ``KEEPUP_STRESS_BUDGET`` seconds (default 1500);
* test modules run in an order that rotates every day (a hash of the module's path and the UTC
  date), tests inside a module in their own order, so a module left out today runs first on
  another day;
* once the budget is spent, every test that has not started is skipped with the reason
  ``stress budget spent`` (visible in the summary), and the session ends with a line saying how
  many ran and how many were left for another day. A test that started runs to its end.

A failure is a failure whatever the budget; only tests that never started are skipped.
"""

from __future__ import annotations

import hashlib
import os
import time
from datetime import UTC, datetime
from typing import Any

import pytest

__all__ = ["budget_seconds", "rotation_key"]

_START = [time.monotonic()]  # reset when collection ends: the budget is for running tests
_SKIPPED: list[str] = []
_RAN: list[str] = []


def budget_seconds() -> float:
    """``KEEPUP_STRESS_BUDGET`` (seconds), 1500 when unset; ValueError for anything else."""
    raw = os.environ.get("KEEPUP_STRESS_BUDGET", "1500")
    value = float(raw)
    if value <= 0:
        raise ValueError(f"KEEPUP_STRESS_BUDGET must be a positive number of seconds, got {raw!r}")
    return value


def rotation_key(module: str, day: str) -> str:
    """Where ``module`` goes in the order of ``day`` (``YYYY-MM-DD``): a stable hash, so the
    order is the same all day and different the next."""
    return hashlib.sha256(f"{day}/{module}".encode()).hexdigest()


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[Any]) -> None:
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    position = {id(item): n for n, item in enumerate(items)}
    items.sort(key=lambda item: (rotation_key(str(item.path), day), position[id(item)]))


def pytest_collection_finish(session: pytest.Session) -> None:
    _START[0] = time.monotonic()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if time.monotonic() - _START[0] > budget_seconds():
        _SKIPPED.append(item.nodeid)
        pytest.skip("stress budget spent (KEEPUP_STRESS_BUDGET); it runs on another day's rotation")
    _RAN.append(item.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    spent = time.monotonic() - _START[0]
    terminalreporter.write_line(
        f"stress budget: {len(_RAN)} slow tests started in {spent:.0f} s of {budget_seconds():.0f} s; "
        f"{len(_SKIPPED)} left for another day's rotation"
    )
