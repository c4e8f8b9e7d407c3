"""Fresh, isolated test stores for every backend this machine offers.

Local backends (``memory``, ``file``, ``sqlite``) are always available. Server backends are used
when their URL is in the environment: ``KEEPUP_TEST_POSTGRES_URL``, ``KEEPUP_TEST_MYSQL_URL``,
``KEEPUP_TEST_REDIS_URL``, ``KEEPUP_TEST_MONGODB_URL``. Where a URL is unset the backend's tests
skip with a reason; under ``CI=true`` a set URL whose server does not answer fails the test.

Under ``CI=true`` an *unset* URL fails the test too (a CI machine that lost a variable must not
go green by skipping a driver), unless the backend is listed as unavailable on purpose in
``KEEPUP_TEST_UNAVAILABLE`` (comma-separated names, e.g. ``KEEPUP_TEST_UNAVAILABLE=mongodb``):
those still skip, visibly, with the reason.

Isolation convention (every server driver implements it): the URL query parameter
``prefix=<str>`` (1-32 characters of ``a-z 0-9 _``) is prepended to every table name (SQL
drivers), key (Redis) or collection (MongoDB) the driver uses, and ``driver.destroy()`` removes
every table, key or collection under that prefix. Each test store gets its own random prefix and
is destroyed afterwards, so tests never see each other's data, and a test may open the same store
again (in this or another process) with ``open_store(store.url)``.

``KEEPUP_TEST_DRIVERS`` (comma-separated names) restricts which backends are used, for example
``KEEPUP_TEST_DRIVERS=memory,sqlite`` while iterating locally.

**Sync and async.** A backend name with the suffix ``+async`` (``sqlite+async``,
``postgres+async``) opens the store with :func:`~runtime_persistence.open_store_async` and hands
the test the async driver behind a :func:`~runtime_persistence.testing.blocking.blocking` proxy,
so one sync-written suite proves both twins; :meth:`TestStore.make` builds a repository in the
store's mode (``store.make(Checkpoints)`` is an ``AsyncCheckpoints`` behind the proxy in async
mode). The async loop runs in debug mode, and a callback that blocks it fails the test.
``driver_params(modes=("sync", "async"))`` yields both. ``KEEPUP_TEST_MODES=sync`` (or
``async``) restricts the modes while iterating.
"""

from __future__ import annotations

import importlib
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from runtime_core import Driver, Durability

from runtime_persistence.storage.stores import open_store, open_store_async
from runtime_persistence.testing.blocking import Portal, blocking, unwrap

__all__ = [
    "LOCAL_DRIVERS",
    "SERVER_DRIVERS",
    "TestStore",
    "any_driver",
    "any_store",
    "driver_names",
    "driver_params",
    "isolated_url",
    "open_driver_at",
    "open_test_driver",
    "open_test_store",
    "server_url",
    "split_mode",
    "store_fixture",
]

LOCAL_DRIVERS: tuple[str, ...] = ("memory", "file", "sqlite")
SERVER_DRIVERS: dict[str, str] = {
    "postgres": "KEEPUP_TEST_POSTGRES_URL",
    "mysql": "KEEPUP_TEST_MYSQL_URL",
    "redis": "KEEPUP_TEST_REDIS_URL",
    "mongodb": "KEEPUP_TEST_MONGODB_URL",
}


@dataclass(frozen=True, slots=True)
class TestStore:
    """A fresh test store.

    ``url`` opens the same store again with :func:`runtime_persistence.open_store` (in this or
    another process); it is None when the store lives only inside this driver object (memory).
    ``open`` returns another, independent driver on the same store (the caller closes it)."""

    __test__ = False  # not a pytest test class

    name: str
    driver: Driver
    url: str | None
    in_process: bool = False  # the data lives in this process's memory (memory://)
    mode: str = "sync"  # "async": ``driver`` is an async driver behind a blocking proxy
    portal: Portal | None = None  # the loop the async driver runs on (async mode only)

    @property
    def is_async(self) -> bool:
        return self.mode == "async"

    def make(self, sync_class: Any, *args: Any, **kwargs: Any) -> Any:
        """``sync_class(self.driver, *args, **kwargs)`` in sync mode; in async mode its async twin
        (``Async`` + the class name, in the sibling ``_async`` module) on the async driver,
        behind a blocking proxy. Blocking proxies among the arguments are unwrapped."""
        return self._make_on(self.driver, sync_class, *args, **kwargs)

    def make_with_writer_between(
        self, sync_class: Any, namespace: str, before: Callable[[Any], Any], **kwargs: Any
    ) -> Any:
        """Like :meth:`make`, but the repository's first write to ``namespace`` first runs
        ``before(other)`` (awaited in async mode), ``other`` being a second repository of the same
        mode on the same store: another writer landing between its read and its compare-and-set."""
        other = self.make(sync_class, **kwargs)
        target = unwrap(self.driver)
        peer = unwrap(other)
        if not self.is_async:

            class _Sync:
                done = False

                def __getattr__(self, name: str) -> object:
                    return getattr(target, name)

                def put(self, ns: str, key: str, value: bytes, **kw: Any) -> int:
                    if ns == namespace and not self.done:
                        self.done = True
                        before(peer)
                    result: int = target.put(ns, key, value, **kw)
                    return result

            return self._make_on(_Sync(), sync_class, **kwargs)

        class _Async:
            done = False

            def __getattr__(self, name: str) -> object:
                return getattr(target, name)

            async def put(self, ns: str, key: str, value: bytes, **kw: Any) -> int:
                if ns == namespace and not self.done:
                    self.done = True
                    await before(peer)
                result: int = await target.put(ns, key, value, **kw)
                return result

        return self._make_on(_Async(), sync_class, **kwargs)

    def _make_on(self, driver: Any, sync_class: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.is_async:
            return sync_class(driver, *args, **kwargs)
        assert self.portal is not None
        module = importlib.import_module(sync_class.__module__.replace("._sync.", "._async."))
        async_class = getattr(module, "Async" + sync_class.__name__)
        args = tuple(unwrap(a) for a in args)
        kwargs = {k: unwrap(v) for k, v in kwargs.items()}
        return blocking(async_class(unwrap(driver), *args, **kwargs), self.portal)

    def open(self, **options: Any) -> Driver:
        if self.url is None:
            pytest.skip(f"the {self.name} store cannot be opened twice (it lives in one driver object)")
        return open_store(self.url, **options)


def _selected(name: str) -> bool:
    only = os.environ.get("KEEPUP_TEST_DRIVERS", "").strip()
    return not only or name in {n.strip() for n in only.split(",")}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


UNAVAILABLE_ENV = "KEEPUP_TEST_UNAVAILABLE"
"""Comma-separated server backends a CI machine does not run on purpose: their tests skip."""


def unavailable_on_purpose() -> frozenset[str]:
    """The backends listed in ``KEEPUP_TEST_UNAVAILABLE``."""
    raw = os.environ.get(UNAVAILABLE_ENV, "")
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def _must_fail_when_unset(name: str) -> bool:
    """Under CI=true a server backend whose URL is unset fails, unless listed as unavailable."""
    return _in_ci() and name not in unavailable_on_purpose()


def _unset_message(name: str) -> str:
    message = f"{SERVER_DRIVERS[name]} is not set: no {name} server to test against"
    if name in unavailable_on_purpose():
        message += f" (listed in {UNAVAILABLE_ENV})"
    return message


def server_url(name: str) -> str | None:
    """The configured test server URL for ``name`` (``postgres``, ``mysql``, ``redis``,
    ``mongodb``), or None when its environment variable is unset or empty."""
    return os.environ.get(SERVER_DRIVERS[name], "").strip() or None


def driver_names() -> list[str]:
    """Every backend name the test helpers know: local ones first, then servers."""
    return [*LOCAL_DRIVERS, *SERVER_DRIVERS]


def _modes(modes: tuple[str, ...]) -> tuple[str, ...]:
    only = os.environ.get("KEEPUP_TEST_MODES", "").strip()
    return tuple(m for m in modes if not only or m in {n.strip() for n in only.split(",")})


def split_mode(param: str) -> tuple[str, str]:
    """``"sqlite+async"`` -> ``("sqlite", "async")``; ``"sqlite"`` -> ``("sqlite", "sync")``."""
    name, _, mode = param.partition("+")
    return name, mode or "sync"


def driver_params(
    names: tuple[str, ...] | list[str] | None = None, *, modes: tuple[str, ...] = ("sync",)
) -> list[Any]:
    """``pytest.param`` objects, one per backend (all by default) and mode, not excluded by
    ``KEEPUP_TEST_DRIVERS`` or ``KEEPUP_TEST_MODES``, with a visible skip mark on server backends
    whose URL is not set (under CI=true only for those listed in ``KEEPUP_TEST_UNAVAILABLE``; the
    others run and fail in :func:`isolated_url`). The async mode's params are ``<name>+async``."""
    params: list[Any] = []
    for mode in _modes(modes):
        params += _driver_params(names, "" if mode == "sync" else f"+{mode}")
    return params


def _driver_params(names: tuple[str, ...] | list[str] | None, suffix: str) -> list[Any]:
    params: list[Any] = []
    for name in names or driver_names():
        if name not in LOCAL_DRIVERS and name not in SERVER_DRIVERS:
            raise ValueError(f"unknown test backend {name!r}; known: {', '.join(driver_names())}")
        if not _selected(name):
            continue
        marks: list[Any] = []
        if name in SERVER_DRIVERS and server_url(name) is None and not _must_fail_when_unset(name):
            marks.append(pytest.mark.skip(reason=_unset_message(name)))
        params.append(pytest.param(name + suffix, id=name + suffix, marks=marks))
    return params


def _with_prefix(url: str, prefix: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "prefix"]
    query.append(("prefix", prefix))
    return urlunsplit(parts._replace(query=urlencode(query)))


def isolated_url(name: str, tmp_path: Path) -> str:
    """A URL for a new, empty store of backend ``name`` that nothing else uses: a file or
    directory under ``tmp_path`` for local backends, a random ``prefix=`` on the server URL for
    server backends. Skips (or fails under CI=true) when a server backend is not configured."""
    if name == "memory":
        return "memory://"
    if name == "file":
        return f"file://{(tmp_path / f'store-{secrets.token_hex(4)}').resolve()}"
    if name == "sqlite":
        return f"sqlite:///{(tmp_path / f'store-{secrets.token_hex(4)}.db').resolve()}"
    url = server_url(name)
    if url is None:
        if _must_fail_when_unset(name):
            pytest.fail(
                f"{_unset_message(name)}: CI=true needs every server backend, so set it, or list "
                f"{name} in {UNAVAILABLE_ENV} if this machine does not run it on purpose"
            )
        pytest.skip(_unset_message(name))
    return _with_prefix(url, f"kt{secrets.token_hex(5)}_")


def _open_or_report(name: str, url: str, **options: Any) -> Driver:
    try:
        return open_store(url, **options)
    except Exception as exc:
        _report_unusable(name, exc)


def _report_unusable(name: str, exc: Exception) -> NoReturn:
    if name in LOCAL_DRIVERS:
        raise exc
    message = f"the {name} test server at {SERVER_DRIVERS[name]} cannot be used: {exc!r}"
    if _in_ci():
        pytest.fail(message + " (CI=true: a configured server that does not answer is a failure)")
    pytest.skip(message)


def _destroy(driver: Driver) -> None:
    destroy: Callable[[], None] | None = getattr(driver, "destroy", None)
    try:
        if destroy is not None:
            destroy()
    finally:
        driver.close()


@contextmanager
def open_test_store(
    name: str, tmp_path: Path, *, durability: Durability | str = Durability.DURABLE, **options: Any
) -> Iterator[TestStore]:
    """Open a fresh, isolated store of backend ``name``; destroy and close it on exit."""
    name, mode = split_mode(name)
    url = isolated_url(name, tmp_path)
    if mode == "async":
        with _open_async_test_store(name, url, durability=durability, **options) as store:
            yield store
        return
    driver = _open_or_report(name, url, durability=durability, **options)
    try:
        yield TestStore(name, driver, None if name == "memory" else url, in_process=name == "memory")
    finally:
        _destroy(driver)


@contextmanager
def _open_async_test_store(name: str, url: str, **options: Any) -> Iterator[TestStore]:
    portal = Portal()
    try:
        try:
            async_driver = portal.call(open_store_async(url, **options))
        except Exception as exc:
            _report_unusable(name, exc)
        driver = blocking(async_driver, portal)
        try:
            yield TestStore(
                name, driver, None if name == "memory" else url, name == "memory", "async", portal
            )
        finally:
            _destroy(driver)
        if portal.slow_callbacks:
            pytest.fail(
                f"async code blocked the event loop {len(portal.slow_callbacks)} time(s): "
                + "; ".join(portal.slow_callbacks[:3])
            )
    finally:
        portal.close()


@contextmanager
def open_driver_at(param: str, url: str, **options: Any) -> Iterator[Any]:
    """A driver on an existing store ``url`` in the mode of the backend param ``param``: the sync
    driver, or (``<name>+async``) the async driver behind a blocking proxy on its own event loop.
    Closed on exit; nothing is destroyed."""
    if split_mode(param)[1] != "async":
        plain = open_store(url, **options)
        try:
            yield plain
        finally:
            plain.close()
        return
    portal = Portal()
    try:
        driver = blocking(portal.call(open_store_async(url, **options)), portal)
        try:
            yield driver
        finally:
            driver.close()
    finally:
        portal.close()


@contextmanager
def open_test_driver(name: str, tmp_path: Path, **options: Any) -> Iterator[Driver]:
    """Open a fresh, isolated driver of backend ``name``; destroy and close it on exit."""
    with open_test_store(name, tmp_path, **options) as store:
        yield store.driver


def store_fixture(
    *names: str, durability: Durability | str = Durability.DURABLE, modes: tuple[str, ...] = ("sync",)
) -> Any:
    """A pytest fixture yielding a fresh :class:`TestStore`, parametrized over backends
    ``names`` (every backend when empty) and ``modes``. Assign it at module level or in a conftest::

        my_store = store_fixture("sqlite", "postgres", modes=("sync", "async"))
    """

    @pytest.fixture(params=driver_params(list(names) or None, modes=modes))
    def _store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestStore]:
        with open_test_store(request.param, tmp_path, durability=durability) as store:
            yield store

    return _store


any_store = store_fixture()
"""Fixture: a fresh :class:`TestStore` for every available backend (import it into a conftest)."""


@pytest.fixture
def any_driver(any_store: TestStore) -> Driver:
    """Fixture: a fresh driver for every available backend (import it and ``any_store`` into a
    conftest: ``from runtime_persistence.testing import any_driver, any_store``)."""
    return any_store.driver
