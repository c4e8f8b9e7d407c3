"""Run records stored through the driver (:class:`RunRecords`), so runs can be listed, shown,
cancelled and resumed from another process.

Layout::

    run         {run_id}                 the run record; changed by compare-and-set
    run.thread  {thread_id}/{run_id}     index: runs of a thread (never changes)
    run.status  {status}/{run_id}        index: runs by status (added before a status change,
                                         removed after; readers check the record, so a stale
                                         entry is skipped, never believed)

Run ids are UUIDv7, so key order is creation order and every list is newest first by a reverse
range scan.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator

from runtime_core import (
    ConflictError,
    Driver,
    NotFoundError,
    Run,
    RunStatus,
    Serializer,
    ValidationError,
    validate_id,
)

from runtime_persistence.storage.serialization import EnvelopeSerializer

__all__ = ["RUN_NS", "RUN_STATUS_NS", "RUN_THREAD_NS", "RunRecords"]

RUN_NS = "run"
RUN_THREAD_NS = "run.thread"
RUN_STATUS_NS = "run.status"
_MAX_LIMIT = 10_000


class RunRecords:
    """:class:`runtime_core.RunStore` over any driver.

    ``update`` is a compare-and-set loop on the record: a cancel request made by another process
    is never lost (``cancel_requested`` is sticky), and a finished run (completed, failed,
    cancelled) cannot be moved to another status (ConflictError)."""

    def __init__(self, driver: Driver, *, serializer: Serializer | None = None) -> None:
        self._driver = driver
        self._ser: Serializer = serializer or EnvelopeSerializer()

    def _read(self, run_id: str) -> tuple[Run, int]:
        validate_id(run_id, "run id")
        entry = self._driver.get(RUN_NS, run_id)
        if entry is None:
            raise NotFoundError(f"run {run_id} not found")
        return self._ser.loads(entry.value, Run), entry.version

    def create(self, run: Run) -> Run:
        """Store a new run. Raises ConflictError if its id exists. Durable when it returns."""
        if not isinstance(run, Run):
            raise ValidationError("create() takes a runtime_core.Run")
        self._driver.put(RUN_STATUS_NS, f"{run.status.value}/{run.id}", b"\x01")
        self._driver.put(RUN_THREAD_NS, f"{run.thread_id}/{run.id}", b"\x01")
        try:
            self._driver.put(RUN_NS, run.id, self._ser.dumps(run), if_absent=True)
        except ConflictError:
            raise ConflictError(f"run {run.id} already exists") from None
        return run

    def get(self, run_id: str) -> Run:
        """The run. Raises NotFoundError."""
        return self._read(run_id)[0]

    def _change(self, run_id: str, fn: Callable[[Run], Run]) -> Run:
        for _ in range(100):
            current, version = self._read(run_id)
            new = fn(current)
            if new.status is not current.status:
                self._driver.put(RUN_STATUS_NS, f"{new.status.value}/{run_id}", b"\x01")
            try:
                self._driver.put(RUN_NS, run_id, self._ser.dumps(new), if_version=version)
            except ConflictError:
                continue
            if new.status is not current.status:
                self._driver.delete(RUN_STATUS_NS, f"{current.status.value}/{run_id}")
            return new
        raise ConflictError(f"run {run_id} kept changing; try again")

    def update(self, run: Run) -> Run:
        """Replace the stored run with ``run`` (same id and thread). A pending cancel request is
        kept. Raises NotFoundError, ConflictError if the stored run already finished with another
        status, ValidationError if the thread differs."""

        def change(current: Run) -> Run:
            if run.thread_id != current.thread_id:
                raise ValidationError(f"run {run.id} belongs to thread {current.thread_id}")
            if current.status.finished and run.status is not current.status:
                raise ConflictError(
                    f"run {run.id} already finished as {current.status.value}; it cannot become {run.status.value}"
                )
            if current.cancel_requested and not run.cancel_requested:
                return _replace(run, cancel_requested=True)
            return run

        return self._change(run.id, change)

    def request_cancel(self, run_id: str) -> Run:
        """Ask the run to stop: sets ``cancel_requested`` (the runner checks it between steps).
        A run that already finished is returned unchanged."""

        def change(current: Run) -> Run:
            if current.status.finished or current.cancel_requested:
                return current
            return _replace(current, cancel_requested=True)

        return self._change(run_id, change)

    def list(
        self, *, thread_id: str | None = None, status: RunStatus | None = None, limit: int = 50
    ) -> builtins.list[Run]:
        """Runs newest first, of one thread and/or in one status."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= _MAX_LIMIT:
            raise ValidationError(f"limit must be an integer from 0 to {_MAX_LIMIT}, got {limit!r:.40}")
        if thread_id is not None:
            validate_id(thread_id, "thread id")
        wanted = RunStatus(status) if status is not None else None
        out: list[Run] = []
        if limit == 0:
            return out
        for run in self._candidates(thread_id, wanted, limit):
            if (thread_id is None or run.thread_id == thread_id) and (wanted is None or run.status is wanted):
                out.append(run)
                if len(out) == limit:
                    break
        return out

    def _candidates(self, thread_id: str | None, status: RunStatus | None, limit: int) -> Iterator[Run]:
        if thread_id is not None:
            ns, prefix = RUN_THREAD_NS, f"{thread_id}/"
        elif status is not None:
            ns, prefix = RUN_STATUS_NS, f"{status.value}/"
        else:
            ns, prefix = RUN_NS, ""
        before: str | None = None
        page = limit + 1
        while True:
            entries = list(self._driver.scan(ns, prefix=prefix, before=before, reverse=True, limit=page))
            for entry in entries:
                if ns == RUN_NS:
                    yield self._ser.loads(entry.value, Run)
                    continue
                found = self._driver.get(RUN_NS, entry.key[len(prefix) :])
                if found is not None:
                    yield self._ser.loads(found.value, Run)
            if len(entries) < page:
                return
            before = entries[-1].key
            page = min(page * 2, 1024)


def _replace(run: Run, **changes: object) -> Run:
    from dataclasses import replace

    return replace(run, **changes)  # type: ignore[arg-type]
