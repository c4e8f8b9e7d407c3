"""``--since``/``--until`` and durations as people type them: the parsing behind the shared
options of :mod:`keepup._cli.options`, without typer, so the command's fast path
(:mod:`keepup._cli.fast`) can use it too."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from runtime_core import ValidationError

__all__ = ["parse_duration", "parse_moment", "within"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``30s``, ``15m``, ``12h``, ``7d``, ``2w`` (or a bare number of seconds) as a timedelta;
    ValidationError for anything else."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if match is None:
        raise ValidationError(f"a duration looks like 30s, 15m, 12h, 7d or 2w; got {text!r:.40}")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2) or "s"])


def parse_moment(text: str, *, now: datetime | None = None) -> datetime:
    """``--since``/``--until``: an ISO 8601 date or time (local time when it has no offset), or an
    age such as ``12h`` meaning that long ago. ValidationError for anything else."""
    now = now or datetime.now(UTC)
    try:
        return now - parse_duration(text)
    except ValidationError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(
            f"a time looks like 2026-11-29, 2026-11-29T14:00+01:00 or an age like 12h; got {text!r:.40}"
        ) from None
    return moment if moment.tzinfo is not None else moment.astimezone()


T = TypeVar("T")


def within(
    items: Sequence[T], moment: Callable[[T], datetime | None], since: str | None, until: str | None
) -> list[T]:
    """The items whose moment lies in ``[since, until)`` (all of them when neither is given)."""
    start = None if since is None else parse_moment(since)
    end = None if until is None else parse_moment(until)
    out = []
    for item in items:
        at = moment(item)
        if at is None:
            continue
        if (start is None or at >= start) and (end is None or at < end):
            out.append(item)
    return out
