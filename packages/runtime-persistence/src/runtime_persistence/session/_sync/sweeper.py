# Generated from packages/runtime-persistence/src/runtime_persistence/session/_async/sweeper.py by scripts/gen_sync.py: edit that file and rerun the script.
"""The session sweeper (:class:`SessionSweeper`): marks sessions stale after a silence and
purges closed and stale sessions by a retention rule, optionally with their threads and runs.
Written once as async code; the sync twin is generated. Any number of sweepers may run at once,
in any processes: every step is a compare-and-set or a version-conditioned delete in
:class:`Sessions`, so no active session is ever purged and each stale session is marked,
and purged, by exactly one of them (the one whose report names it).

Running one in the background of a long-running process is
:class:`runtime_persistence.session.sweeper.SweeperThread` (sync) or
:func:`runtime_persistence.session.sweeper.sweep_forever` (async)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from runtime_core import KeepupError, Session, SessionStatus, SweepReport, ValidationError

from runtime_persistence.checkpoint._sync.checkpoints import Checkpoints
from runtime_persistence.session._sync.runs import RunRecords
from runtime_persistence.session._sync.sessions import Sessions

__all__ = ["SessionSweeper", "due"]

Due = Literal["stale", "purge"]


def due(
    session: Session, now: datetime, *, stale_after: timedelta | None, purge_after: timedelta | None
) -> Due | None:
    """What a sweep with these rules would do to ``session`` at ``now``: ``"stale"`` (active and
    silent for ``stale_after`` or more), ``"purge"`` (closed or stale, and ended ``purge_after``
    ago or more), or None. A session that would become stale is not purgeable in the same pass.
    A rule that is None never applies."""
    if session.status is SessionStatus.ACTIVE:
        if stale_after is not None and session.last_seen_at <= now - stale_after:
            return "stale"
        return None
    if purge_after is not None and session.ended_at is not None and session.ended_at <= now - purge_after:
        return "purge"
    return None


class SessionSweeper:
    """Sweeps ``sessions``: sessions silent for ``stale_after`` become stale; closed and stale
    sessions that ended ``purge_after`` ago (None: never) are deleted. With ``delete_linked``
    (and ``checkpoints`` and ``runs`` given) the threads and runs a purged session linked are
    deleted with it; a thread held by a live lease, or a run still going, is kept and reported."""

    def __init__(
        self,
        sessions: Sessions,
        *,
        stale_after: timedelta,
        purge_after: timedelta | None = None,
        delete_linked: bool = False,
        checkpoints: Checkpoints | None = None,
        runs: RunRecords | None = None,
    ) -> None:
        for name, value in (("stale_after", stale_after), ("purge_after", purge_after)):
            if value is not None and (not isinstance(value, timedelta) or value < timedelta(0)):
                raise ValidationError(f"{name} must be a non-negative timedelta, got {value!r:.60}")
        if delete_linked and (checkpoints is None or runs is None):
            raise ValidationError("delete_linked needs the checkpoints and runs to delete from")
        self.sessions = sessions
        self.stale_after = stale_after
        self.purge_after = purge_after
        self.delete_linked = delete_linked
        self._checkpoints = checkpoints
        self._runs = runs

    def sweep(self, *, dry_run: bool = False) -> SweepReport:
        """One pass: mark, then purge. With ``dry_run`` nothing is written and the report lists
        what a pass would do now (sessions that would become stale are not counted as purgeable
        in the same pass)."""
        if dry_run:
            now = self.sessions._clock.now()
            would_mark = [
                s.id
                for s in self.sessions.list(status=SessionStatus.ACTIVE, limit=10_000)
                if due(s, now, stale_after=self.stale_after, purge_after=None) == "stale"
            ]
            would_purge = (
                [] if self.purge_after is None else [s for s in self.sessions.purgeable(self.purge_after)]
            )
            return SweepReport(
                dry_run=True,
                marked_stale=tuple(sorted(would_mark)),
                purged=tuple(s.id for s in would_purge),
                threads_deleted=tuple(t for s in would_purge for t in s.thread_ids)
                if self.delete_linked
                else (),
                runs_deleted=tuple(r for s in would_purge for r in s.run_ids) if self.delete_linked else (),
            )
        marked = self.sessions.cleanup_stale(self.stale_after)
        if self.purge_after is None:
            return SweepReport(dry_run=False, marked_stale=tuple(marked))
        purged = self.sessions.purge(self.purge_after)
        threads: list[str] = []
        runs: list[str] = []
        kept: dict[str, str] = {}
        if self.delete_linked and self._checkpoints is not None and self._runs is not None:
            for session in purged:
                for run_id in session.run_ids:
                    try:
                        if self._runs.delete(run_id) is not None:
                            runs.append(run_id)
                    except KeepupError as exc:
                        kept[run_id] = str(exc)
                for thread_id in session.thread_ids:
                    try:
                        self._checkpoints.delete_thread(thread_id)
                        threads.append(thread_id)
                    except KeepupError as exc:  # NotFoundError: gone already; RuntimeBusyError: leased
                        kept[thread_id] = str(exc)
        return SweepReport(
            dry_run=False,
            marked_stale=tuple(marked),
            purged=tuple(s.id for s in purged),
            threads_deleted=tuple(threads),
            runs_deleted=tuple(runs),
            kept=kept,
        )
