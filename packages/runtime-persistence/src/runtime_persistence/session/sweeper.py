"""The session sweeper: :class:`SessionSweeper` and its async twin :class:`AsyncSessionSweeper`
(the source is ``_async/sweeper.py``), and how a long-running process runs one in the
background: :class:`SweeperThread` (a daemon thread) or :func:`sweep_forever` (an asyncio task).

Several sweepers, in any processes, may run at once: see ``_async/sweeper.py`` for why that is
safe. A failed pass (the store unreachable, say) is reported to ``on_error`` and retried at the
next interval; it never stops the sweeper or the process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import timedelta

from runtime_core import SweepReport, ValidationError

from runtime_persistence.session._async.sweeper import AsyncSessionSweeper
from runtime_persistence.session._sync.sweeper import SessionSweeper, due

__all__ = ["AsyncSessionSweeper", "SessionSweeper", "SweeperThread", "due", "sweep_forever"]


def _check_interval(interval: timedelta) -> float:
    if not isinstance(interval, timedelta) or interval <= timedelta(0):
        raise ValidationError(f"interval must be a positive timedelta, got {interval!r:.60}")
    return interval.total_seconds()


class SweeperThread:
    """Runs ``sweeper.sweep()`` every ``interval`` on a daemon thread until :meth:`stop`.
    ``on_report`` gets each pass's report, ``on_error`` each exception of a failed pass."""

    def __init__(
        self,
        sweeper: SessionSweeper,
        interval: timedelta = timedelta(minutes=1),
        *,
        on_report: Callable[[SweepReport], object] | None = None,
        on_error: Callable[[BaseException], object] | None = None,
    ) -> None:
        self.sweeper = sweeper
        self._interval = _check_interval(interval)
        self._on_report = on_report
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keepup-session-sweeper", daemon=True)
        self.passes = 0

    def start(self) -> SweeperThread:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 10.0) -> None:
        """Ask the thread to stop and wait for the pass under way (at most ``timeout`` s)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.sweeper.sweep()
            except Exception as exc:  # a failed pass is retried at the next interval
                if self._on_error is not None:
                    self._on_error(exc)
            else:
                self.passes += 1
                if self._on_report is not None:
                    self._on_report(report)
            self._stop.wait(self._interval)

    def __enter__(self) -> SweeperThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def sweep_forever(
    sweeper: AsyncSessionSweeper,
    interval: timedelta = timedelta(minutes=1),
    *,
    on_report: Callable[[SweepReport], object] | None = None,
    on_error: Callable[[BaseException], object] | None = None,
) -> None:
    """Sweep every ``interval`` until cancelled (run it with ``asyncio.create_task`` and cancel
    the task to stop)."""
    seconds = _check_interval(interval)
    while True:
        try:
            report = await sweeper.sweep()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if on_error is not None:
                on_error(exc)
        else:
            if on_report is not None:
                on_report(report)
        await asyncio.sleep(seconds)
