"""The parts of the checkpoint-to-snapshot link that do no I/O, shared by
:class:`AsyncWorkspaceCheckpoints` (``_async/workspaces.py``) and its generated sync twin
:class:`WorkspaceCheckpoints`."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from runtime_core import Checkpoint, CheckpointStore, LeaseStore, RestoreReport

__all__ = [
    "CheckpointStore",  # the types of the sync WorkspaceCheckpoints, named in _async directives
    "LeaseStore",
    "Notifies",
    "WorkspaceRestore",
    "first_link",
    "leases_of",
    "notifier",
    "same_path",
]


class Notifies(Protocol):
    def add_removal_listener(self, listener: Callable[[str, tuple[str, ...]], None]) -> None: ...


@dataclass(frozen=True, slots=True)
class WorkspaceRestore:
    """The result of restoring a checkpoint with its workspace.

    ``checkpoint`` is the new head written by the restore (None on a dry run); ``source`` the
    checkpoint restored; ``files`` what the file restore changed or would change (None when the
    workspace was not asked for or the checkpoint has no snapshot)."""

    source: Checkpoint
    checkpoint: Checkpoint | None
    files: RestoreReport | None
    dry_run: bool = False


def same_path(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


_LINKED: weakref.WeakKeyDictionary[object, set[str]] = weakref.WeakKeyDictionary()
_LINKED_GUARD = threading.Lock()


def first_link(store: object, workspace: str) -> bool:
    """Whether this is the first link of ``store`` to ``workspace`` in this process, so that
    linking again (a facade builds one per call) does not pile up removal listeners."""
    with _LINKED_GUARD:
        try:
            seen = _LINKED.setdefault(store, set())
        except TypeError:  # not weak-referenceable: cannot tell, so listen (releases are idempotent)
            return True
        if workspace in seen:
            return False
        seen.add(workspace)
        return True


def leases_of(store: object) -> LeaseStore | None:
    leases: object = getattr(store, "leases", None)
    return leases if isinstance(leases, LeaseStore) else None


def notifier(store: object) -> Notifies | None:
    add = getattr(store, "add_removal_listener", None)
    return store if callable(add) else None  # type: ignore[return-value]
