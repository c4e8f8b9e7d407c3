"""The typed error hierarchy shared by every Keepup package.

Each error says what happened and, where it can, what to do next. The command line and the HTTP API
map these classes to exit codes and status codes in one place each; code that catches errors should
catch these classes, never parse messages.
"""

from __future__ import annotations

__all__ = [
    "BudgetExceededError",
    "ConflictError",
    "CorruptionError",
    "DriverUnavailableError",
    "KeepupError",
    "NotFoundError",
    "RecoveryRefusedError",
    "RuntimeBusyError",
    "StorageError",
    "UnsafeWorkspaceError",
    "ValidationError",
]


class KeepupError(Exception):
    """Base class of every error Keepup raises on purpose."""


class ValidationError(KeepupError, ValueError):
    """Input was rejected before anything was written (a bad id, key, name, size or argument)."""


class NotFoundError(KeepupError, LookupError):
    """The thread, checkpoint, artifact, blob or record asked for does not exist."""


class ConflictError(KeepupError):
    """A conditional write lost: the key already existed, or its version moved underneath us.

    Nothing was written. Re-read the current state and decide again; never retry blindly.
    """


class CorruptionError(KeepupError):
    """Stored bytes failed their checksum, envelope or schema check and were not decoded."""


class RuntimeBusyError(KeepupError):
    """The thread is held by a live lease (a run is active); the operation was refused.

    ``holder`` names the run holding the lease, so people can find and stop it.
    """

    def __init__(self, message: str, *, thread_id: str | None = None, holder: str | None = None):
        super().__init__(message)
        self.thread_id = thread_id
        self.holder = holder


class DriverUnavailableError(KeepupError):
    """A storage driver cannot be used: its library is missing (the message names the extra to
    install), its URL scheme is unknown, or its server does not answer."""

    def __init__(self, message: str, *, extra: str | None = None):
        super().__init__(message)
        self.extra = extra


class StorageError(KeepupError):
    """The storage backend failed in a way that is not a conflict or corruption (I/O error, lost
    connection, server error). The operation may or may not have been applied; read to find out."""


class RecoveryRefusedError(KeepupError):
    """A run cannot be recovered: it completed, was cancelled, or failed with a non-recoverable error."""


class UnsafeWorkspaceError(KeepupError):
    """A workspace path was refused: it escapes the workspace root, or it is a protected folder
    (the home directory, the filesystem root, a system folder)."""


class BudgetExceededError(KeepupError, TimeoutError):
    """An operation ran out of its time or size budget and was stopped cleanly."""
