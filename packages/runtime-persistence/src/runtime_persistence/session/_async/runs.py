"""Run records stored through the driver (:class:`AsyncRunRecords`), so runs can be listed,
shown, cancelled and resumed from another process. Written once as async code in
``session/_async/``; the sync twin in ``session/_sync/`` is generated from it.

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
from dataclasses import replace

from runtime_core import (
    ConflictError,
    Run,
    RunStatus,
    ValidationError,
    validate_id,
)

from runtime_persistence.session._async._repository import AsyncRepository
from runtime_persistence.session._records import (
    MARK,
    MAX_TRIES,
    RUN_NS,
    RUN_STATUS_NS,
    RUN_THREAD_NS,
    check_limit,
)

__all__ = ["AsyncRunRecords"]


class AsyncRunRecords(AsyncRepository[Run]):
    """Runs over any driver (the sync class implements :class:`runtime_core.RunStore`; the async
    one has the same methods, guarantees and errors). ``clock`` is accepted like the other
    repositories' and unused: a run carries its own times.

    ``update`` is a compare-and-set loop on the record: a cancel request made by another process
    is never lost (``cancel_requested`` is sticky), and a finished run (completed, failed,
    cancelled) cannot be moved to another status (ConflictError)."""

    _record = Run
    _ns = RUN_NS
    _what = "run"
    _status_ns = RUN_STATUS_NS

    async def create(self, run: Run) -> Run:
        """Store a new run. Raises ConflictError if its id exists. Durable when it returns."""
        if not isinstance(run, Run):
            raise ValidationError("create() takes a runtime_core.Run")
        await self._driver.put(RUN_STATUS_NS, self._index_entry(run), MARK)
        await self._driver.put(RUN_THREAD_NS, f"{run.thread_id}/{run.id}", MARK)
        try:
            await self._driver.put(RUN_NS, run.id, self._ser.dumps(run, at=(RUN_NS, run.id)), if_absent=True)
        except ConflictError:
            raise ConflictError(f"run {run.id} already exists") from None
        return run

    async def get(self, run_id: str) -> Run:
        """The run. Raises NotFoundError."""
        return (await self._read(run_id))[0]

    async def update(self, run: Run) -> Run:
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
                return replace(run, cancel_requested=True)
            return run

        return (await self._change(run.id, change))[0]

    async def request_cancel(self, run_id: str) -> Run:
        """Ask the run to stop: sets ``cancel_requested`` (the runner checks it between steps).
        A run that already finished is returned unchanged."""

        def change(current: Run) -> Run:
            if current.status.finished or current.cancel_requested:
                return current
            return replace(current, cancel_requested=True)

        return (await self._change(run_id, change))[0]

    async def list(
        self, *, thread_id: str | None = None, status: RunStatus | None = None, limit: int = 50
    ) -> builtins.list[Run]:
        """Runs newest first, of one thread and/or in one status."""
        check_limit(limit)
        if thread_id is not None:
            validate_id(thread_id, "thread id")
        wanted = RunStatus(status) if status is not None else None
        out: builtins.list[Run] = []
        if limit == 0:
            return out
        if thread_id is not None:
            ns, prefix = RUN_THREAD_NS, f"{thread_id}/"
        elif wanted is not None:
            ns, prefix = RUN_STATUS_NS, f"{wanted.value}/"
        else:
            ns, prefix = RUN_NS, ""
        async for run in self._candidates(ns, prefix, limit, reverse=True):
            if (thread_id is None or run.thread_id == thread_id) and (wanted is None or run.status is wanted):
                out.append(run)
                if len(out) == limit:
                    break
        return out

    async def delete(self, run_id: str) -> Run | None:
        """Delete a finished run's record and its index entries; return it as it was, or None when
        it is gone already (or another process deleted it first). Raises ConflictError for a run
        that has not finished (cancel it first)."""
        for _ in range(MAX_TRIES):
            validate_id(run_id, "run id")
            entry = await self._driver.get(RUN_NS, run_id)
            if entry is None:
                return None
            run = self._decode(run_id, entry.value)
            if not run.status.finished:
                raise ConflictError(f"run {run_id} is {run.status.value}; cancel it before deleting it")
            try:
                deleted = await self._driver.delete(RUN_NS, run_id, if_version=entry.version)
            except ConflictError:
                continue  # changed or deleted meanwhile: look again
            if not deleted:
                continue
            await self._driver.delete(RUN_STATUS_NS, self._index_entry(run))
            await self._driver.delete(RUN_THREAD_NS, f"{run.thread_id}/{run.id}")
            return run
        raise ConflictError(f"run {run_id} kept changing; try again")
