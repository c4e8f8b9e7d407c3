"""Run async drivers and repositories through the sync test suites.

Every behavioural test in Keepup is written once, against the sync API. To prove an async twin
(``AsyncCheckpoints``, ``AsyncPostgresDriver`` …) keeps the same promises, the suites run it
through :func:`blocking`: a proxy that presents the sync API and runs each awaited call on a
private event loop in a background thread (a :class:`Portal`). Async iterators come back as sync
iterators pulled one item at a time, objects with an async API come back wrapped, and a sync
iterable passed where the async method wants an ``AsyncIterable`` is adapted (bytes and str are
passed as they are: a parameter typed ``bytes | AsyncIterable[bytes]`` takes either), and the
items of a returned tuple are wrapped one by one.

The portal's loop runs in asyncio debug mode with a slow-callback threshold: every callback that
holds the loop longer than ``slow_callback`` (a blocking call inside async code) is recorded in
:attr:`Portal.slow_callbacks`, and the suites fail on any. The default threshold is 1 s of wall
time (a full collection of a long test session's heap alone held trivial callbacks 0.26-0.30 s on
a quiet machine), stretched by the machine's load per core when the portal starts (:func:`slow_threshold`): a
loop thread waiting for a core on a machine loaded 10 times over is not blocked by its own code."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import threading
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar

__all__ = ["Portal", "blocking", "slow_threshold", "unwrap"]

_T = TypeVar("_T")
_SLOW = 1.0  # seconds a callback may hold the loop before it counts as blocking, on a quiet machine


def slow_threshold(base: float = _SLOW, *, load: float | None = None, cpus: int | None = None) -> float:
    """``base`` seconds, times the 1-minute load average per core when that is above 1 (the wall
    time a callback of ``base`` seconds of work takes when every core is shared ``load / cpus``
    ways). ``load`` and ``cpus`` default to the machine's."""
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # not available on this platform
            load = 0.0
    cpus = cpus or os.cpu_count() or 1
    return base * max(1.0, load / cpus)


class _SlowCallbackLog(logging.Handler):
    def __init__(self, portal: Portal) -> None:
        super().__init__(logging.WARNING)
        self._portal = portal

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "took" in message and "seconds" in message and threading.get_ident() == self._portal.thread_id:
            self._portal.slow_callbacks.append(message)


class Portal:
    """An event loop on a background thread, in debug mode, that sync code submits coroutines to."""

    def __init__(self, *, slow_callback: float | None = None) -> None:
        if slow_callback is None:
            slow_callback = slow_threshold()
        self.loop = asyncio.new_event_loop()
        self.loop.set_debug(True)
        self.loop.slow_callback_duration = slow_callback
        self.slow_callbacks: list[str] = []
        self._log = _SlowCallbackLog(self)
        logging.getLogger("asyncio").addHandler(self._log)
        ready = threading.Event()
        self.thread_id = 0

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.thread_id = threading.get_ident()
            ready.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, name="keepup-test-portal", daemon=True)
        self._thread.start()
        ready.wait()

    def call(self, awaitable: Awaitable[_T]) -> _T:
        """Run ``awaitable`` on the portal's loop and return its result (or raise its error)."""

        async def run() -> _T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result()

    def iterate(self, source: AsyncIterator[_T]) -> Iterator[_T]:
        """``source``, consumed one item at a time on the loop."""
        try:
            while True:
                try:
                    yield self.call(source.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None and not self.loop.is_closed():
                self.call(aclose())

    def close(self) -> None:
        logging.getLogger("asyncio").removeHandler(self._log)
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


_DONE: Any = object()


async def _aiter_of(items: Iterable[_T]) -> AsyncIterator[_T]:
    """``items`` as an async iterator, each item produced on a worker thread: a sync iterable is
    the caller's code (a test's generator may read the server between items), not the async
    code under test, so its time does not count against the loop."""
    iterator = iter(items)
    while (item := await asyncio.to_thread(next, iterator, _DONE)) is not _DONE:
        yield item


_ASYNC_API: dict[type, bool] = {}


def _has_async_api(cls: type) -> bool:
    if cls not in _ASYNC_API:
        _ASYNC_API[cls] = _scan_async_api(cls)
    return _ASYNC_API[cls]


def _scan_async_api(cls: type) -> bool:
    for name in dir(cls):
        if name.startswith("__"):
            continue
        member = inspect.getattr_static(cls, name, None)
        func = getattr(member, "__func__", member)
        if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
            return True
    return False


def _wants_async_iterable(method: Callable[..., Any]) -> set[str]:
    try:
        params = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return set()
    return {name for name, p in params.items() if "AsyncIterable" in str(p.annotation)}


class _Blocking:
    """The sync face of an object with an async API (see :func:`blocking`)."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: Any, portal: Portal) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_portal", portal)

    def __repr__(self) -> str:
        return f"blocking({self._target!r})"

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value) or isinstance(value, type):
            return _wrap(value, self._portal)
        adapted = _wants_async_iterable(value)
        portal = self._portal

        def call(*args: Any, **kwargs: Any) -> Any:
            args = tuple(unwrap(a) for a in args)
            kwargs = {k: unwrap(v) for k, v in kwargs.items()}
            if adapted:
                bound = inspect.signature(value).bind_partial(*args, **kwargs)
                for pname in adapted:
                    arg = bound.arguments.get(pname)
                    if arg is not None and not isinstance(
                        arg, (AsyncIterable, bytes, bytearray, memoryview, str)
                    ):
                        bound.arguments[pname] = _aiter_of(arg)
                args, kwargs = bound.args, bound.kwargs
            result = value(*args, **kwargs)
            if inspect.isawaitable(result):
                result = portal.call(result)
            return _wrap(result, portal)

        return call


def _wrap(value: Any, portal: Portal) -> Any:
    if type(value) is tuple:  # (version, stream) and the like: wrap each item
        return tuple(_wrap(item, portal) for item in value)
    if isinstance(value, AsyncIterator):
        return (_wrap(item, portal) for item in portal.iterate(value))
    if value is not None and not isinstance(value, type) and _has_async_api(type(value)):
        return _Blocking(value, portal)
    return value


def blocking(target: Any, portal: Portal) -> Any:
    """A proxy with the sync API of ``target`` (an object with an async API), running on ``portal``."""
    return _Blocking(target, portal)


def unwrap(value: Any) -> Any:
    """The async object behind a :func:`blocking` proxy; anything else unchanged."""
    if isinstance(value, _Blocking):
        return object.__getattribute__(value, "_target")
    return value
