"""``AsyncShadowGit``: shadow-git snapshots for async callers; runs on worker threads.

A snapshot is subprocess git plus local file I/O (a walk of the workspace, lock files, the index),
which an event loop cannot do asynchronously without threads. So the async twin does not reimplement
anything: it wraps a :class:`~runtime_persistence.shadow_git.repository.ShadowGit` and runs each
public operation on a worker thread with :func:`asyncio.to_thread`, so the loop never blocks. Same
method names, arguments, results, guarantees and errors (they are raised in the awaiting task).

Cancelling an awaiting task does not stop the operation already running on its thread: git is left
to finish (a snapshot is then recorded, a restore completed), since killing it midway is what the
time budget is for. Construction does I/O (it checks the workspace and may ``git init``), so build
one with ``await AsyncShadowGit.open(workspace, ...)`` (same arguments as ``ShadowGit``) or wrap an
existing ``ShadowGit``: ``AsyncShadowGit(shadow)``."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Concatenate, ParamSpec, TypeVar

from runtime_persistence.shadow_git.excludes import WorkspaceScan
from runtime_persistence.shadow_git.repository import ShadowGit
from runtime_persistence.shadow_git.sharing import SharedSnapshots

__all__ = ["AsyncShadowGit"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _on_thread(
    method: Callable[Concatenate[ShadowGit, _P], _R],
) -> Callable[Concatenate[AsyncShadowGit, _P], Coroutine[Any, Any, _R]]:
    """The async form of a ``ShadowGit`` method: same signature and docstring, run on a worker
    thread against the wrapped instance."""

    @functools.wraps(method)
    async def run(self: AsyncShadowGit, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        return await asyncio.to_thread(method, self._sync, *args, **kwargs)

    return run


def _opened_on_thread(
    factory: Callable[_P, ShadowGit],
) -> Callable[_P, Coroutine[Any, Any, AsyncShadowGit]]:
    """Build ``ShadowGit(*args, **kwargs)`` on a worker thread and wrap it."""

    @functools.wraps(factory, assigned=())  # only ``__wrapped__``: inspect shows its signature
    async def open_(*args: _P.args, **kwargs: _P.kwargs) -> AsyncShadowGit:
        return AsyncShadowGit(await asyncio.to_thread(factory, *args, **kwargs))

    open_.__name__ = "open"
    open_.__qualname__ = "AsyncShadowGit.open"
    open_.__doc__ = (
        "Check the workspace and set up its shadow repository on a worker thread; takes the "
        "arguments of :class:`ShadowGit` and raises its errors."
    )
    return open_


class AsyncShadowGit:
    """Snapshots of one workspace for async code (the async twin of :class:`ShadowGit`); runs
    every operation of the wrapped ``ShadowGit`` on a worker thread.

    Safe to share between tasks and threads, like ``ShadowGit``; writers queue on its locks."""

    __slots__ = ("_sync",)

    def __init__(self, shadow: ShadowGit) -> None:
        if not isinstance(shadow, ShadowGit):
            raise TypeError(f"AsyncShadowGit wraps a ShadowGit, got {type(shadow).__name__}")
        self._sync = shadow

    open = staticmethod(_opened_on_thread(ShadowGit))

    @property
    def sync(self) -> ShadowGit:
        """The wrapped ``ShadowGit`` (blocking; for sync code sharing the same instance)."""
        return self._sync

    @property
    def workspace(self) -> str:
        """The resolved absolute path of the workspace."""
        return self._sync.workspace

    @property
    def git_dir(self) -> str:
        """The shadow git directory (for people and tools that want to look inside)."""
        return self._sync.git_dir

    @property
    def shared(self) -> SharedSnapshots | None:
        """Where snapshots are published and fetched (None: this repository only)."""
        return self._sync.shared

    @property
    def last_scan(self) -> WorkspaceScan:
        """What the most recent snapshot, diff or restore left out."""
        return self._sync.last_scan

    @property
    def trust_changed_paths(self) -> bool:
        """Whether snapshots may stage only the paths the tools reported."""
        return self._sync.trust_changed_paths

    def paths_changed(self, paths: Iterable[str]) -> None:
        """Told that ``paths`` were written or deleted (no I/O: called directly, not awaited)."""
        self._sync.paths_changed(paths)

    def tree_changed(self) -> None:
        """Told that anything may have changed (no I/O: called directly, not awaited)."""
        self._sync.tree_changed()

    # Every public operation of ShadowGit, awaited; the signatures and docstrings are ShadowGit's.
    snapshot = _on_thread(ShadowGit.snapshot)
    head = _on_thread(ShadowGit.head)
    list = _on_thread(ShadowGit.list)
    info = _on_thread(ShadowGit.info)
    diff = _on_thread(ShadowGit.diff)
    restore = _on_thread(ShadowGit.restore)
    keep = _on_thread(ShadowGit.keep)
    release = _on_thread(ShadowGit.release)
    kept = _on_thread(ShadowGit.kept)
    prune = _on_thread(ShadowGit.prune)
    gc = _on_thread(ShadowGit.gc)
    resolve = _on_thread(ShadowGit.resolve)

    def __repr__(self) -> str:
        return f"AsyncShadowGit({self._sync.workspace!r})"
