"""Every error the HTTP API answers, mapped in this one place: Keepup's typed errors to status
codes, and every body an ``application/problem+json`` document (RFC 9457).

A 500 never carries a traceback or an exception's text: it says that the server failed and gives
an id to find the traceback in the server's log."""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from keepup import (
    BudgetExceededError,
    ConflictError,
    CorruptionError,
    DriverUnavailableError,
    KeepupError,
    NotFoundError,
    RecoveryRefusedError,
    RuntimeBusyError,
    StorageError,
    UnsafeWorkspaceError,
    ValidationError,
    run_id_of_holder,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "STATUS_BY_ERROR",
    "NotAvailable",
    "Problem",
    "install_error_handlers",
    "internal_response",
    "log_unanswered",
    "problem_response",
    "status_for",
]

log = logging.getLogger("keepup_server")

PROBLEM_MEDIA_TYPE = "application/problem+json"


class NotAvailable(KeepupError):
    """The route exists but this installation cannot answer it yet (501), e.g. message search
    before a message recorder with search is installed."""


@dataclass(frozen=True)
class Problem:
    """How one error type is answered: its status and the problem ``type`` and ``title``."""

    status: int
    type: str
    title: str


STATUS_BY_ERROR: tuple[tuple[type[KeepupError], Problem], ...] = (
    (ValidationError, Problem(422, "invalid", "Invalid input; nothing was written")),
    (UnsafeWorkspaceError, Problem(422, "unsafe-workspace", "Unsafe workspace path; nothing was written")),
    (NotFoundError, Problem(404, "not-found", "Not found")),
    (RuntimeBusyError, Problem(409, "busy", "A run holds the thread")),
    (ConflictError, Problem(409, "conflict", "A concurrent writer won; nothing was written")),
    (RecoveryRefusedError, Problem(409, "recovery-refused", "The run cannot be recovered")),
    (CorruptionError, Problem(500, "corrupt", "Stored data failed its checksum and was not decoded")),
    (DriverUnavailableError, Problem(503, "store-unavailable", "The store is unavailable")),
    (StorageError, Problem(503, "storage", "The store failed; the operation may not have been applied")),
    (
        BudgetExceededError,
        Problem(503, "budget-exceeded", "The operation ran out of its time or size budget"),
    ),
    (NotAvailable, Problem(501, "not-available", "Not available in this installation")),
)
"""Error types and how they are answered, most specific first (the first class that matches
wins); docs/http-api.md lists the same table and a test checks that they agree."""

_INTERNAL = Problem(500, "internal", "Internal server error")
_OTHER = Problem(500, "keepup-error", "Keepup error")


def status_for(error: BaseException) -> Problem:
    """How ``error`` is answered: its type's problem, or a 500."""
    for cls, problem in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return problem
    return _OTHER if isinstance(error, KeepupError) else _INTERNAL


def problem_response(
    status: int,
    type_: str,
    title: str,
    detail: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """An ``application/problem+json`` response."""
    body: dict[str, Any] = {"type": f"/problems/{type_}", "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _for_keepup_error(error: KeepupError) -> JSONResponse:
    problem = status_for(error)
    if problem.status == 500:
        log.warning("%s on a request: %s", type(error).__name__, error)
    detail = " ".join(str(error).split()) or type(error).__name__
    extra: dict[str, Any] = {"error": type(error).__name__}
    if isinstance(error, RuntimeBusyError):
        extra["thread_id"] = error.thread_id
        if error.holder:
            run_id = run_id_of_holder(error.holder)
            extra["run_id"] = run_id
            if run_id not in detail:
                detail = f"{detail} (held by run {run_id})"
    return problem_response(problem.status, problem.type, problem.title, detail, **extra)


_LOGGED = "_keepup_server_logged"


def _internal(error: BaseException, problem: Problem = _INTERNAL) -> JSONResponse:
    incident = uuid.uuid4().hex[:12]
    if not getattr(error, _LOGGED, False):
        log.error("internal error %s on a request", incident, exc_info=error)
        with contextlib.suppress(AttributeError):  # an exception class with __slots__
            setattr(error, _LOGGED, True)
    return problem_response(
        problem.status,
        problem.type,
        problem.title,
        f"the server failed; its log has the details under incident {incident}",
        incident=incident,
    )


async def _keepup_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, KeepupError)
    return _for_keepup_error(error)


async def _validation(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = [
        {"where": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg", ""))}
        for e in error.errors()
    ]
    detail = "; ".join(f"{p['where']}: {p['message']}" for p in problems) or "invalid request"
    return problem_response(422, "invalid", "Invalid input; nothing was written", detail, errors=problems)


async def _http(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    titles = {401: "Unauthorized", 404: "Not found", 405: "Method not allowed", 413: "Request too large"}
    return problem_response(
        error.status_code,
        "http",
        titles.get(error.status_code, "HTTP error"),
        str(error.detail),
        headers=dict(error.headers) if error.headers else None,
    )


def internal_response(error: BaseException) -> JSONResponse:
    """The 500 for an unexpected exception: logged with its traceback (once), answered without it."""
    return _internal(error)


def log_unanswered(error: BaseException) -> None:
    """Log an exception that escaped after its response had started (so no 500 could be sent),
    unless :func:`internal_response` already logged it."""
    if not getattr(error, _LOGGED, False):
        log.error("internal error after the response started", exc_info=error)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    return _internal(error)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error raised by a route with problem+json, by :data:`STATUS_BY_ERROR`."""
    app.add_exception_handler(KeepupError, _keepup_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    # Starlette answers this one from its outermost layer, then re-raises to the server (the
    # Guard in keepup_server.security swallows it; it has been logged here).
    app.add_exception_handler(Exception, _unexpected)
