"""The exit codes of the ``keepup`` command, one per error type, mapped in this one place.

docs/cli.md lists the same table; a test checks that they agree."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["CliFailure", "Declined", "ExitCode", "Unhealthy", "describe", "exit_code_for", "report"]


class ExitCode(IntEnum):
    """What the process's exit status means."""

    OK = 0
    INTERNAL = 1  # a bug in keepup: please report it (rerun with KEEPUP_DEBUG=1 for the traceback)
    USAGE = 2  # the command line itself was wrong (unknown option, missing argument, ambiguous id prefix)
    INVALID = 3  # ValidationError: bad input (an id, a key, a URL, an argument); nothing was written
    NOT_FOUND = 4  # NotFoundError: no such thread, checkpoint, artifact, run or snapshot
    CONFLICT = 5  # ConflictError: a concurrent writer won; nothing was written
    CORRUPT = 6  # CorruptionError: stored bytes failed their checksum; they were not decoded
    BUSY = 7  # RuntimeBusyError: a run holds the thread's lease; the message names the run
    DRIVER_UNAVAILABLE = 8  # DriverUnavailableError: unknown scheme, missing library, server down
    STORAGE = 9  # StorageError: the backend failed (I/O, lost connection)
    RECOVERY_REFUSED = 10  # RecoveryRefusedError: the run completed, was cancelled, or cannot resume
    UNSAFE_WORKSPACE = 11  # UnsafeWorkspaceError: a protected folder or a path escaping the workspace
    BUDGET_EXCEEDED = 12  # BudgetExceededError: the operation ran out of its time or size budget
    KEEPUP_ERROR = 13  # any other KeepupError
    DECLINED = 14  # the confirmation prompt was answered "no"; nothing was changed
    UNHEALTHY = 15  # `store doctor` found a problem it could not fix
    OS_ERROR = 16  # the operating system refused a file operation (permission, disk full, missing file)
    INTERRUPTED = 130  # Ctrl-C


class CliFailure(Exception):
    """A failure of the command line itself (not of the store), with its exit code."""

    code: ExitCode = ExitCode.INTERNAL


class Declined(CliFailure):
    """The person answered "no" at a confirmation prompt; nothing was changed."""

    code = ExitCode.DECLINED


class Unhealthy(CliFailure):
    """``store doctor`` found a problem; its report says what to do."""

    code = ExitCode.UNHEALTHY


def _by_error() -> tuple[tuple[type[BaseException], ExitCode], ...]:
    """Error types and their codes, most specific first (the first class that matches wins).
    runtime_core is imported here, not with this module: ``keepup --help`` never needs it."""
    from runtime_core import (
        BudgetExceededError,
        ConflictError,
        CorruptionError,
        DriverUnavailableError,
        NotFoundError,
        RecoveryRefusedError,
        RuntimeBusyError,
        StorageError,
        UnsafeWorkspaceError,
        ValidationError,
    )

    return (
        (ValidationError, ExitCode.INVALID),
        (NotFoundError, ExitCode.NOT_FOUND),
        (ConflictError, ExitCode.CONFLICT),
        (CorruptionError, ExitCode.CORRUPT),
        (RuntimeBusyError, ExitCode.BUSY),
        (DriverUnavailableError, ExitCode.DRIVER_UNAVAILABLE),
        (StorageError, ExitCode.STORAGE),
        (RecoveryRefusedError, ExitCode.RECOVERY_REFUSED),
        (UnsafeWorkspaceError, ExitCode.UNSAFE_WORKSPACE),
        (BudgetExceededError, ExitCode.BUDGET_EXCEEDED),
    )


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code for ``error``: its Keepup error type's code, OS_ERROR for an OSError,
    INTERRUPTED for Ctrl-C, INTERNAL for anything else (a bug)."""
    if isinstance(error, CliFailure):
        return error.code
    from runtime_core import KeepupError

    if isinstance(error, KeepupError):
        for cls, code in _by_error():
            if isinstance(error, cls):
                return code
        return ExitCode.KEEPUP_ERROR
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(error, OSError):
        return ExitCode.OS_ERROR
    return ExitCode.INTERNAL


def describe(error: BaseException) -> str:
    """The one line printed on stderr for ``error`` (no traceback): what happened and, where
    Keepup knows, what to do. A busy thread's message always names the run holding it."""
    message = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, CliFailure):
        return f"keepup: {message}"
    from runtime_core import KeepupError, RuntimeBusyError
    from runtime_execution import run_id_of_holder

    if isinstance(error, RuntimeBusyError):
        if error.holder:
            run_id = run_id_of_holder(error.holder)
            if run_id not in message:
                message = f"{message} (held by run {run_id})"
            message += f"; see it with `keepup run show {run_id}`, stop it with `keepup run cancel {run_id}`"
        return f"keepup: refused: {message}"
    if isinstance(error, KeepupError):
        return f"keepup: error: {message}"
    if isinstance(error, KeyboardInterrupt):
        return "keepup: interrupted"
    if isinstance(error, OSError):
        return f"keepup: error: {message}"
    return (
        f"keepup: internal error: {type(error).__name__}: {message} "
        "(this is a bug in keepup; rerun with KEEPUP_DEBUG=1 to see the traceback)"
    )


def report(error: BaseException) -> int:
    """Print ``error`` as the command's one line on stderr (its traceback first when
    ``KEEPUP_DEBUG`` is set) and return its exit code: how every command ends on an error."""
    import os
    import sys

    if os.environ.get("KEEPUP_DEBUG"):
        import traceback

        traceback.print_exception(error, file=sys.stderr)
    sys.stderr.write(describe(error) + "\n")
    sys.stderr.flush()
    return int(exit_code_for(error))
