"""``keepup session``: the session DB (list, show, close, sweep, migrate).

A session is active while its client heartbeats; the sweeper marks it stale after a silence
(``--stale-after``) and purges closed and stale sessions that ended long enough ago
(``--purge-after``), with their threads and runs only when asked (``--delete-linked``). ``list``
and ``show`` take the same two rules and say, for each session, what a sweep would do to it now
(``due``), without changing anything; ``close --dry-run`` shows the session as closing would
leave it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from runtime_core import Session, SessionStatus, SweepReport
from runtime_persistence.session.sessions import SESSION_NS
from runtime_persistence.session.sweeper import due

from keepup._cli.context import runtime_of
from keepup._cli.ids import IdKind, abbreviate, resolver
from keepup._cli.options import JsonOption, YesOption, confirm, parse_duration
from keepup._cli.rendering import Column, fields, out_console, plain, print_json, table, when

__all__ = ["SESSION", "app", "session_json", "sweep_json"]

SESSION = IdKind("session", SESSION_NS)

app = typer.Typer(
    help="Sessions: who is connected, since when, and what they worked on.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

StaleAfterOption = Annotated[
    str | None,
    typer.Option(
        "--stale-after",
        metavar="AGE",
        help="Say which active sessions a sweep would mark stale (silent this long); changes nothing.",
    ),
]
PurgeAfterOption = Annotated[
    str | None,
    typer.Option(
        "--purge-after",
        metavar="AGE",
        help="Say which closed and stale sessions a sweep would purge (ended this long ago); changes nothing.",
    ),
]


def _rules(stale_after: str | None, purge_after: str | None) -> tuple[timedelta | None, timedelta | None]:
    return (
        None if stale_after is None else parse_duration(stale_after),
        None if purge_after is None else parse_duration(purge_after),
    )


SessionArg = Annotated[
    str,
    typer.Argument(
        metavar="SESSION", help="Session id (or a unique prefix of it).", callback=resolver(SESSION)
    ),
]


def session_json(session: Session) -> dict[str, Any]:
    return {
        "id": session.id,
        "name": session.name,
        "status": session.status.value,
        "created_at": session.created_at.isoformat(),
        "last_seen_at": session.last_seen_at.isoformat(),
        "ended_at": None if session.ended_at is None else session.ended_at.isoformat(),
        "thread_ids": list(session.thread_ids),
        "run_ids": list(session.run_ids),
        "metadata": plain(session.metadata),
        "format_version": session.format_version,
    }


def sweep_json(report: SweepReport, stale_after: str, purge_after: str | None) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "stale_after": stale_after,
        "purge_after": purge_after,
        "marked_stale": list(report.marked_stale),
        "purged": list(report.purged),
        "threads_deleted": list(report.threads_deleted),
        "runs_deleted": list(report.runs_deleted),
        "kept": dict(report.kept),
    }


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        SessionStatus | None, typer.Option("--status", help="Only sessions in this status.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000, help="At most this many.")] = 50,
    stale_after: StaleAfterOption = None,
    purge_after: PurgeAfterOption = None,
    json_: JsonOption = False,
) -> None:
    """List sessions, newest first; with --stale-after and/or --purge-after, each with what a
    sweep by those rules would do to it now (its "due": stale, purge or nothing)."""
    stale, purge = _rules(stale_after, purge_after)
    runtime = runtime_of(ctx)
    sessions = runtime.sessions.list(status=status, limit=limit)
    now = datetime.now(UTC)
    dues = {s.id: due(s, now, stale_after=stale, purge_after=purge) for s in sessions}
    if json_:
        print_json({"sessions": [{**session_json(s), "due": dues[s.id]} for s in sessions]})
        return
    if not sessions:
        out_console().print("no sessions")
        return
    ids = abbreviate(runtime.driver, SESSION, [s.id for s in sessions])
    table(
        None,
        [
            Column("session", 100, wrap=False),
            Column("name", 70),
            Column("status", 90, wrap=False),
            Column("last seen", 80),
            Column("started", 40),
            Column("threads", 30, wrap=False),
            Column("runs", 30, wrap=False),
            *([Column("due", 95, wrap=False)] if stale is not None or purge is not None else []),
        ],
        [
            (
                ids[s.id],
                s.name or "-",
                s.status.value,
                when(s.last_seen_at),
                when(s.created_at),
                len(s.thread_ids),
                len(s.run_ids),
                *([dues[s.id] or "-"] if stale is not None or purge is not None else []),
            )
            for s in sessions
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    session_id: SessionArg,
    stale_after: StaleAfterOption = None,
    purge_after: PurgeAfterOption = None,
    json_: JsonOption = False,
) -> None:
    """Show a session and the threads and runs it worked on; with --stale-after and/or
    --purge-after, what a sweep by those rules would do to it now."""
    stale, purge = _rules(stale_after, purge_after)
    runtime = runtime_of(ctx)
    session = runtime.sessions.get(session_id)
    verdict = due(session, datetime.now(UTC), stale_after=stale, purge_after=purge)
    if json_:
        print_json({"session": {**session_json(session), "due": verdict}})
        return
    rows: list[tuple[str, Any]] = [
        ("name", session.name or "-"),
        ("status", session.status.value),
        ("started", when(session.created_at)),
        ("last seen", when(session.last_seen_at)),
        ("ended", when(session.ended_at)),
        ("threads", ", ".join(session.thread_ids) or "-"),
        ("runs", ", ".join(session.run_ids) or "-"),
        ("metadata", session.metadata or "-"),
    ]
    if stale is not None or purge is not None:
        rows.append(
            (
                "due",
                {"stale": "a sweep would mark it stale", "purge": "a sweep would purge it"}.get(
                    verdict or "", "nothing: a sweep would leave it as it is"
                ),
            )
        )
    fields(f"Session {session.id}", rows)


@app.command("close")
def close(
    ctx: typer.Context,
    session_id: SessionArg,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show the session as closing would leave it.")
    ] = False,
    json_: JsonOption = False,
) -> None:
    """End a session (its client takes no more heartbeats; the sweeper may purge it later)."""
    sessions = runtime_of(ctx).sessions
    if dry_run:
        current = sessions.get(session_id)
        session = (
            current
            if current.status is SessionStatus.CLOSED
            else replace(
                current,
                status=SessionStatus.CLOSED,
                ended_at=current.ended_at if current.ended_at is not None else datetime.now(UTC),
            )
        )
    else:
        session = sessions.close(session_id)
    if json_:
        print_json({"session": session_json(session), "dry_run": dry_run})
        return
    would = "would be" if dry_run else "is"
    out_console().print(f"session {session.id} {would} closed", markup=False)


@app.command("sweep")
def sweep(
    ctx: typer.Context,
    stale_after: Annotated[
        str, typer.Option("--stale-after", metavar="AGE", help="Mark active sessions silent this long stale.")
    ] = "30m",
    purge_after: Annotated[
        str | None,
        typer.Option(
            "--purge-after", metavar="AGE", help="Delete closed and stale sessions that ended this long ago."
        ),
    ] = None,
    delete_linked: Annotated[
        bool,
        typer.Option(
            "--delete-linked", help="With --purge-after: delete the threads and runs of purged sessions too."
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be marked and purged.")
    ] = False,
    yes: YesOption = False,
    json_: JsonOption = False,
) -> None:
    """Mark silent sessions stale and (with --purge-after) purge old ones. Safe to run while
    other processes sweep the same store: each session is handled once."""
    stale = parse_duration(stale_after)
    purge = None if purge_after is None else parse_duration(purge_after)
    if delete_linked and purge is None:
        raise typer.BadParameter("--delete-linked needs --purge-after")
    runtime = runtime_of(ctx)
    sweeper = runtime.sweeper(stale_after=stale, purge_after=purge, delete_linked=delete_linked)
    if not dry_run and delete_linked:
        confirm("Delete the threads and runs of the sessions purged?", yes=yes)
    report = sweeper.sweep(dry_run=dry_run)
    if json_:
        print_json(sweep_json(report, stale_after, purge_after))
        return
    console = out_console()
    would = "would " if dry_run else ""
    console.print(
        f"{would}mark {len(report.marked_stale)} session(s) stale; {would}purge {len(report.purged)}"
        + (
            f" with {len(report.threads_deleted)} thread(s) and {len(report.runs_deleted)} run(s)"
            if delete_linked
            else ""
        ),
        markup=False,
    )
    for sid in report.purged:
        console.print(f"  purged {sid}" if not dry_run else f"  would purge {sid}", markup=False)
    for what, why in report.kept.items():
        console.print(f"  kept {what}: {why}", markup=False)


@app.command("migrate")
def migrate(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count the records of an older format.")
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Rewrite session records of an older format in the current one (reads migrate them in
    memory anyway; this makes it permanent)."""
    count = runtime_of(ctx).sessions.migrate(dry_run=dry_run)
    if json_:
        print_json({"dry_run": dry_run, "migrated": count})
        return
    out_console().print(
        f"{'would migrate' if dry_run else 'migrated'} {count} session record(s)", markup=False
    )
