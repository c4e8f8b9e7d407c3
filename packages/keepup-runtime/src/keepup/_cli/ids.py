"""Ids as people type and read them: any unique prefix of at least 6 characters, in any case, and
tables that show the shortest unique prefix (as git does), never a cut-off form.

Resolution scans the id namespace of the kind of record (threads, checkpoints, runs) through the
public driver contract (``driver.scan(namespace, prefix=...)``), so it works on every store. A full
id is passed through unchanged (the command then says "not found" itself)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from runtime_core import Driver, NotFoundError, ValidationError
from runtime_persistence.checkpoint._records import CKPT_ID_NS, THREAD_NS

from keepup._cli.context import runtime_of
from keepup._cli.exit_codes import CliFailure, ExitCode

if TYPE_CHECKING:  # typer only in annotations: the fast path (keepup._cli.fast) runs without it
    import typer

__all__ = [
    "CHECKPOINT",
    "MIN_PREFIX",
    "RUN",
    "THREAD",
    "AmbiguousId",
    "IdKind",
    "Short",
    "abbreviate",
    "resolve",
    "resolve_arg",
    "resolve_with",
    "resolver",
]

MIN_PREFIX = 6
"""The fewest characters of an id that a command accepts."""

MIN_SHOWN = 8
"""The fewest characters of an id that a table shows."""

_FULL_LENGTH = 36
_MAX_CANDIDATES = 10
_PREFIX = r"[0-9a-f-]+"  # compiled on first use (re caches it), not at import


class IdKind(NamedTuple):
    """A kind of record with an id: what people call it and the namespace its ids are keys of.
    (A named tuple: a frozen dataclass costs ``keepup thread list`` four times as much to build.)"""

    noun: str
    namespace: str


# The keys of these public namespaces of runtime_persistence are the ids.
THREAD = IdKind("thread", THREAD_NS)
CHECKPOINT = IdKind("checkpoint", CKPT_ID_NS)
if TYPE_CHECKING:
    RUN: IdKind
else:

    def __getattr__(name: str) -> Any:
        # RUN on first use: the run namespace lives with the session records, which a command
        # that lists threads does not otherwise load.
        if name == "RUN":
            from runtime_persistence.runs import RUN_NS

            kind = globals()["RUN"] = IdKind("run", RUN_NS)
            return kind
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class AmbiguousId(CliFailure):
    """A prefix matched more than one id; the message lists the candidates. A usage error."""

    code = ExitCode.USAGE


def _normalize(text: str) -> str:
    """``text`` in lower case; a prefix typed without dashes gets them where a UUID has them."""
    value = text.strip().lower()
    if "-" not in value and len(value) > 8:
        groups, start = [], 0
        for size in (8, 4, 4, 4, 12):
            if start >= len(value):
                break
            groups.append(value[start : start + size])
            start += size
        value = "-".join(groups) + value[start:]
    return value


def _checked(kind: IdKind, text: str) -> str:
    """``text`` normalized; ValidationError unless it is a full id or a long enough prefix."""
    value = _normalize(text)
    if len(value) == _FULL_LENGTH:
        return value
    if len(value) < MIN_PREFIX or len(value) > _FULL_LENGTH or not re.fullmatch(_PREFIX, value):
        raise ValidationError(
            f"a {kind.noun} id is a UUID or a unique prefix of it of at least {MIN_PREFIX} "
            f"characters; got {text!r:.50}"
        )
    return value


def resolve(driver: Driver, kind: IdKind, text: str) -> str:
    """The full id that ``text`` names: the id itself, or the one id starting with ``text`` (at
    least 6 characters, any case). ValidationError for too short or malformed input,
    NotFoundError when no id starts with it, AmbiguousId (listing the candidates) when several do."""
    value = _checked(kind, text)
    if len(value) == _FULL_LENGTH:
        return value  # the command itself validates it and says whether it exists
    keys = [e.key for e in driver.scan(kind.namespace, prefix=value, limit=_MAX_CANDIDATES + 1)]
    if not keys:
        raise NotFoundError(f"no {kind.noun} id starts with {value!r}")
    if len(keys) > 1:
        listed = ", ".join(keys[:_MAX_CANDIDATES]) + (", …" if len(keys) > _MAX_CANDIDATES else "")
        raise AmbiguousId(
            f"{kind.noun} id prefix {value!r} is ambiguous; it matches: {listed} (type more characters)"
        )
    return keys[0]


def resolve_arg(ctx: typer.Context, kind: IdKind, text: str) -> str:
    """:func:`resolve` on the store of the command being run (malformed input is refused before
    the store is opened)."""
    return resolve_with(lambda: runtime_of(ctx).driver, kind, text)


def resolve_with(driver_of: Callable[[], Driver], kind: IdKind, text: str) -> str:
    """:func:`resolve` on the driver ``driver_of()`` returns, called only when ``text`` is a
    well-formed prefix (malformed input is refused before the store is opened)."""
    value = _checked(kind, text)
    if len(value) == _FULL_LENGTH:
        return value
    return resolve(driver_of(), kind, value)


def _unique_length(driver: Driver, kind: IdKind, full: str) -> int:
    length = MIN_SHOWN
    while length < len(full):
        keys = [e.key for e in driver.scan(kind.namespace, prefix=full[:length], limit=2)]
        if len(keys) <= 1:
            break
        # Skip straight past the characters the two matches share.
        other = keys[1] if keys[0] == full else keys[0]
        common = 0
        while common < min(len(other), len(full)) and other[common] == full[common]:
            common += 1
        length = max(length + 1, common + 1)
    # A prefix never ends on a dash: it would look cut off.
    while length < len(full) and full[length - 1] == "-":
        length += 1
    return min(length, len(full))


class Short(str):
    """An id as a table shows it (its shortest unique prefix); ``full`` is the whole id, printed
    instead when the output is not a terminal."""

    full: str

    def __new__(cls, shown: str, full: str) -> Short:
        obj = super().__new__(cls, shown)
        obj.full = full
        return obj


def abbreviate(driver: Driver, kind: IdKind, ids: Iterable[str | None]) -> dict[str, Short]:
    """The shortest unique prefix (at least 8 characters) of each id, among every id of its kind
    in the store."""
    out: dict[str, Short] = {}
    for full in ids:
        if full is None or full in out:
            continue
        out[full] = Short(full[: _unique_length(driver, kind, full)], full)
    return out


def resolver(kind: IdKind) -> Callable[[typer.Context, Any], Any]:
    """A typer parameter callback that turns what was typed (one value, a list, or None) into
    full ids of ``kind``."""

    # ``ctx`` is not annotated typer.Context: typer evaluates a callback's annotations in this
    # module, which does not import typer at run time. Unannotated, typer passes the context as
    # the first of two parameters, the value as the last.
    def callback(ctx: Any, value: Any) -> Any:
        if value is None or ctx.resilient_parsing:
            return value
        if isinstance(value, list | tuple):
            return [resolve_arg(ctx, kind, v) for v in value]
        return resolve_arg(ctx, kind, value)

    return callback
