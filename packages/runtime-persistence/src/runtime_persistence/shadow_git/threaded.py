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
existing ``ShadowGit``: ``AsyncShadowGit(shadow)``.

Shared snapshots (DESIGN §5) are native here: with ``shared=AsyncSnapshotPacks(async_driver)``
(to ``open`` or beside the wrapped ``ShadowGit``), a snapshot's git work runs on a thread and its
pack is then published with the async driver on the loop, and a snapshot this repository lacks is
fetched from the store the same way before ``info``, ``diff``, ``restore``, ``keep`` or
``resolve`` use it. A wrapped ``ShadowGit`` with a sync ``shared`` of its own keeps publishing
through it, on the worker thread."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Concatenate, ParamSpec, TypeVar

from runtime_core import NotFoundError, ValidationError

from runtime_persistence.shadow_git._async.packs import AsyncSnapshotPacks
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


def _fetching(
    method: Callable[Concatenate[ShadowGit, _P], _R], *commits: str
) -> Callable[Concatenate[AsyncShadowGit, _P], Coroutine[Any, Any, _R]]:
    """Like :func:`_on_thread`, after bringing in from the async shared store the snapshots named
    by the arguments ``commits`` (by name; the first positional ones) that this repository lacks."""
    names = [n for n in inspect.signature(method).parameters if n != "self"]

    @functools.wraps(method)
    async def run(self: AsyncShadowGit, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        if self._shared is not None:
            for name in commits:
                index = names.index(name)
                value = args[index] if index < len(args) else kwargs.get(name)
                if isinstance(value, str):
                    await self._fetch_missing(value)
        return await asyncio.to_thread(method, self._sync, *args, **kwargs)

    return run


def _opened_on_thread(
    factory: Callable[_P, ShadowGit],
) -> Callable[_P, Coroutine[Any, Any, AsyncShadowGit]]:
    """Build ``ShadowGit(*args, **kwargs)`` on a worker thread and wrap it."""

    @functools.wraps(factory, assigned=())  # only ``__wrapped__``: inspect shows its signature
    async def open_(*args: _P.args, **kwargs: _P.kwargs) -> AsyncShadowGit:
        shared = kwargs.get("shared")
        if isinstance(shared, AsyncSnapshotPacks):  # native: published and fetched on the loop
            kwargs["shared"] = None
            return AsyncShadowGit(await asyncio.to_thread(factory, *args, **kwargs), shared=shared)
        return AsyncShadowGit(await asyncio.to_thread(factory, *args, **kwargs))

    open_.__name__ = "open"
    open_.__qualname__ = "AsyncShadowGit.open"
    open_.__doc__ = (
        "Check the workspace and set up its shadow repository on a worker thread; takes the "
        "arguments of :class:`ShadowGit` (``shared`` may also be an ``AsyncSnapshotPacks``, "
        "used natively) and raises its errors."
    )
    return open_


class AsyncShadowGit:
    """Snapshots of one workspace for async code (the async twin of :class:`ShadowGit`); runs
    every operation of the wrapped ``ShadowGit`` on a worker thread.

    Safe to share between tasks and threads, like ``ShadowGit``; writers queue on its locks."""

    __slots__ = ("_shared", "_sync")

    def __init__(self, shadow: ShadowGit, *, shared: AsyncSnapshotPacks | None = None) -> None:
        """``shared``: publish every snapshot to (and fetch missing ones from) a store natively;
        the wrapped ``ShadowGit`` must then have no ``shared`` of its own."""
        if not isinstance(shadow, ShadowGit):
            raise TypeError(f"AsyncShadowGit wraps a ShadowGit, got {type(shadow).__name__}")
        if shared is not None and not isinstance(shared, AsyncSnapshotPacks):
            raise TypeError(f"shared is an AsyncSnapshotPacks, got {type(shared).__name__}")
        if shared is not None and shadow.shared is not None:
            raise ValidationError("this ShadowGit already shares its snapshots through its own `shared`")
        self._sync = shadow
        self._shared = shared

    async def _fetch_missing(self, commit: str) -> None:
        """Bring snapshot ``commit`` in from the async shared store when it is not here."""
        assert self._shared is not None
        try:
            await asyncio.to_thread(self._sync._resolve, commit)
        except NotFoundError:
            await self._shared.fetch(self._sync, commit)

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
    def shared(self) -> SharedSnapshots | AsyncSnapshotPacks | None:
        """Where snapshots are published and fetched (None: this repository only)."""
        return self._shared if self._shared is not None else self._sync.shared

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
    @functools.wraps(ShadowGit.snapshot)
    async def snapshot(self, message: str = "") -> str | None:
        commit = await asyncio.to_thread(self._sync.snapshot, message)
        if self._shared is not None and self._shared.publishing:
            newest = commit if commit is not None else await asyncio.to_thread(self._sync.head)
            if newest is not None and not await asyncio.to_thread(self._sync._is_shared, newest):
                await self._shared.publish(self._sync, newest)
        return commit

    head = _on_thread(ShadowGit.head)
    list = _on_thread(ShadowGit.list)
    info = _fetching(ShadowGit.info, "commit")
    diff = _fetching(ShadowGit.diff, "a", "b")
    restore = _fetching(ShadowGit.restore, "commit")
    keep = _fetching(ShadowGit.keep, "commit")
    release = _on_thread(ShadowGit.release)
    kept = _on_thread(ShadowGit.kept)
    prune = _on_thread(ShadowGit.prune)
    gc = _on_thread(ShadowGit.gc)
    resolve = _fetching(ShadowGit.resolve, "commit")

    def __repr__(self) -> str:
        return f"AsyncShadowGit({self._sync.workspace!r})"
