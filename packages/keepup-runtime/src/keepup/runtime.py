"""The composition root: one object that opens a store and gives every part of Keepup wired to it.

``open_runtime()`` with no arguments opens the embedded SQLite store in the Keepup home, which is
the user's state directory (``platformdirs.user_state_dir("keepup")``) unless ``KEEPUP_HOME`` names
another; ``KEEPUP_STORE_URL`` (or the ``store`` argument) chooses any other store by URL.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Self

import platformdirs
from runtime_core import Clock, Driver, Durability, NullTelemetry, SystemClock, Telemetry
from runtime_persistence.stores import open_store

__all__ = ["HOME_ENV", "STORE_URL_ENV", "Runtime", "default_store_url", "keepup_home", "open_runtime"]

HOME_ENV = "KEEPUP_HOME"
STORE_URL_ENV = "KEEPUP_STORE_URL"
STORE_FILE = "keepup.db"


def keepup_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The Keepup home: ``home`` if given, else ``$KEEPUP_HOME``, else the user's state directory.

    Holds the default SQLite store (``keepup.db``), the shadow-git snapshots (``shadow/``) and the
    demo's scratch workspaces (``demo/``). Not created here."""
    if home is not None:
        return Path(home).expanduser().absolute()
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().absolute()
    return Path(platformdirs.user_state_dir("keepup")).absolute()


def default_store_url(home: str | os.PathLike[str] | None = None) -> str:
    """The URL of the embedded SQLite store in the Keepup home."""
    return f"sqlite:///{keepup_home(home) / STORE_FILE}"


class Runtime:
    """Every part of Keepup over one store. Close it (or use it as a context manager) when done."""

    def __init__(
        self,
        driver: Driver,
        *,
        home: Path,
        telemetry: Telemetry | None = None,
        clock: Clock | None = None,
        owns_driver: bool = True,
    ) -> None:
        self.driver = driver
        self.home = home
        self.telemetry: Telemetry = telemetry if telemetry is not None else NullTelemetry()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._owns_driver = owns_driver
        self._closed = False

    def close(self) -> None:
        """Close the store (when this runtime opened it). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._owns_driver:
            self.driver.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_runtime(
    store: str | Driver | None = None,
    home: str | os.PathLike[str] | None = None,
    *,
    durability: Durability | str = Durability.DURABLE,
    telemetry: Telemetry | None = None,
    clock: Clock | None = None,
) -> Runtime:
    """Open Keepup over ``store``: a URL, an open driver (which stays the caller's to close), or
    None for ``$KEEPUP_STORE_URL`` or else the embedded SQLite store in the Keepup home.

    Raises ValidationError for a malformed URL and DriverUnavailableError when the store's
    driver is not installed or its server does not answer."""
    root = keepup_home(home)
    if store is None or isinstance(store, str):
        url = store or os.environ.get(STORE_URL_ENV) or None
        if url is None:
            root.mkdir(parents=True, exist_ok=True)
            url = default_store_url(root)
        driver = open_store(url, durability=durability)
        owns = True
    else:
        driver, owns = store, False
    return Runtime(driver, home=root, telemetry=telemetry, clock=clock, owns_driver=owns)
