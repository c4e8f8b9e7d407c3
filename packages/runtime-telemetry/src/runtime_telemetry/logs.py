"""Structured logging on the standard :mod:`logging` module.

Two formatters render the same records: :class:`JsonFormatter` writes one JSON object per line
(for machines and log shippers), :class:`HumanFormatter` one readable line (for terminals). Both
add the *log context*: fields such as ``thread_id`` and ``run_id`` bound with :func:`log_context`
for the duration of a block. The context lives in a :class:`contextvars.ContextVar`, so it follows
threads' and asyncio tasks' own flow and never leaks between them.

Fields reach a record in three ways, later ones winning on a clash: the log context, ``extra=``
keywords of an ordinary logging call, and the mapping stored under :data:`FIELDS_ATTR` (what
:class:`runtime_telemetry.StructuredTelemetry` uses, so an event may carry any field name, even
``msg`` or ``name``, without colliding with the record's own attributes).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from enum import Enum
from types import MappingProxyType
from typing import IO, Any, Literal
from uuid import UUID

from runtime_core import ValidationError

__all__ = [
    "FIELDS_ATTR",
    "ContextFilter",
    "HumanFormatter",
    "JsonFormatter",
    "LogFormat",
    "configure_logging",
    "current_log_context",
    "log_context",
]

FIELDS_ATTR = "keepup_fields"
"""The LogRecord attribute holding a mapping of structured fields (set with ``extra=``)."""

LogFormat = Literal["json", "human"]

_CONTEXT_ATTR = "keepup_context"
_HANDLER_MARK = "_keepup_configured"
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: ContextVar[Mapping[str, Any]] = ContextVar("keepup_log_context", default=_EMPTY)
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "taskName", _CONTEXT_ATTR, FIELDS_ATTR}
)
_RESERVED_JSON_KEYS = frozenset({"ts", "level", "logger", "msg", "exc"})


@contextmanager
def log_context(**fields: Any) -> Iterator[Mapping[str, Any]]:
    """Bind ``fields`` to every record logged inside the block (in this thread or task), on top of
    the fields already bound; the previous context comes back on exit, even on an exception."""
    for key in fields:
        if not key.isidentifier():
            raise ValidationError(f"log context field names must be identifiers, got {key!r:.60}")
    merged = MappingProxyType({**_context.get(), **fields})
    token = _context.set(merged)
    try:
        yield merged
    finally:
        _context.reset(token)


def current_log_context() -> dict[str, Any]:
    """A copy of the fields bound by the enclosing :func:`log_context` blocks."""
    return dict(_context.get())


class ContextFilter(logging.Filter):
    """Copies the current log context onto each record as it is emitted.

    Attach it to a handler that formats later (a ``QueueHandler``) so the context of the thread
    that logged, not of the thread that formats, is written. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, _CONTEXT_ATTR):
            setattr(record, _CONTEXT_ATTR, dict(_context.get()))
        return True


def _record_fields(record: logging.LogRecord) -> dict[str, Any]:
    context = getattr(record, _CONTEXT_ATTR, None)
    fields: dict[str, Any] = dict(context) if isinstance(context, Mapping) else dict(_context.get())
    for key, value in record.__dict__.items():
        if key not in _STANDARD_ATTRS and not key.startswith("_"):
            fields[key] = value
    explicit = getattr(record, FIELDS_ATTR, None)
    if isinstance(explicit, Mapping):
        fields.update(explicit)
    return fields


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _plain(value: Any) -> Any:
    """A JSON-ready form of values json does not know (never raises)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return [str(v) for v in value]
    return repr(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``ts`` (UTC, ISO 8601, milliseconds), ``level``,
    ``logger``, ``msg``, the structured fields, and ``exc`` (the formatted traceback) when there is
    one. A field named like one of those keys is written with a trailing underscore instead of
    replacing it. Values JSON cannot represent are written as their text; formatting never fails."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _record_fields(record).items():
            out[f"{key}_" if key in _RESERVED_JSON_KEYS else key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=_plain, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class HumanFormatter(logging.Formatter):
    """One readable line per record: ``time LEVEL logger message key=value …`` with string values
    quoted when they hold spaces, quotes or are empty; a traceback follows on its own lines."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), f"{record.levelname:<7}", record.name, record.getMessage()]
        parts.extend(f"{key}={_human_value(value)}" for key, value in _record_fields(record).items())
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def _human_value(value: Any) -> str:
    if isinstance(value, str):
        if value == "" or any(ch.isspace() or ch in "\"'=" for ch in value):
            return json.dumps(value, ensure_ascii=False)
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return json.dumps(value)
    return json.dumps(value, default=_plain, ensure_ascii=False)


def configure_logging(
    *,
    level: int | str = logging.INFO,
    fmt: LogFormat = "human",
    stream: IO[str] | None = None,
    logger: str = "keepup",
) -> logging.Handler:
    """Send the ``logger`` tree (default ``keepup``: every Keepup package logs below it) to
    ``stream`` (default stderr) in ``fmt``, at ``level``.

    Calling it again replaces the handler it installed before instead of adding a second one; it
    never touches the root logger or handlers installed by the application. Returns the handler."""
    if fmt not in ("json", "human"):
        raise ValidationError(f"log format must be 'json' or 'human', got {fmt!r:.40}")
    target = logging.getLogger(logger)
    for old in list(target.handlers):
        if getattr(old, _HANDLER_MARK, False):
            target.removeHandler(old)
            old.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else HumanFormatter())
    handler.addFilter(ContextFilter())
    setattr(handler, _HANDLER_MARK, True)
    target.addHandler(handler)
    target.setLevel(level)
    return handler
