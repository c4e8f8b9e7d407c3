"""Test support for Keepup storage drivers: the conformance suite every driver must pass, and
fresh isolated test stores for every backend this machine offers.

Import it from tests only: it needs pytest. Typical uses::

    # a conftest.py that wants one fresh driver per available backend
    from runtime_persistence.testing import any_driver, any_store  # noqa: F401

    # a test module that runs the whole suite over some backends
    from runtime_persistence.testing import conformance_class
    TestLocalConformance = conformance_class("memory", "file", "sqlite")
"""

# Made lazy by scripts/gen_facade.py: add a re-export to the imports under TYPE_CHECKING,
# then run the script, which rewrites __all__, _SOURCES and __getattr__ from them.

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from runtime_persistence.testing.blocking import blocking

if TYPE_CHECKING:
    from runtime_persistence.testing.backends import (
        LOCAL_DRIVERS,
        SERVER_DRIVERS,
        TestStore,
        any_driver,
        any_store,
        driver_names,
        driver_params,
        isolated_url,
        open_driver_at,
        open_test_driver,
        open_test_store,
        server_url,
        split_mode,
        store_fixture,
    )
    from runtime_persistence.testing.blocking import (
        Portal,
        unwrap,
    )
    from runtime_persistence.testing.conformance import (
        BAD_KEYS,
        BAD_NAMESPACES,
        ORDER_KEYS,
        DriverConformance,
        conformance_class,
    )

__all__ = [
    "BAD_KEYS",
    "BAD_NAMESPACES",
    "LOCAL_DRIVERS",
    "ORDER_KEYS",
    "SERVER_DRIVERS",
    "DriverConformance",
    "Portal",
    "TestStore",
    "any_driver",
    "any_store",
    "blocking",
    "conformance_class",
    "driver_names",
    "driver_params",
    "isolated_url",
    "open_driver_at",
    "open_test_driver",
    "open_test_store",
    "server_url",
    "split_mode",
    "store_fixture",
    "unwrap",
]

# Where each name is imported from, on first use.
_SOURCES: dict[str, str] = {
    "BAD_KEYS": "runtime_persistence.testing.conformance",
    "BAD_NAMESPACES": "runtime_persistence.testing.conformance",
    "LOCAL_DRIVERS": "runtime_persistence.testing.backends",
    "ORDER_KEYS": "runtime_persistence.testing.conformance",
    "SERVER_DRIVERS": "runtime_persistence.testing.backends",
    "DriverConformance": "runtime_persistence.testing.conformance",
    "Portal": "runtime_persistence.testing.blocking",
    "TestStore": "runtime_persistence.testing.backends",
    "any_driver": "runtime_persistence.testing.backends",
    "any_store": "runtime_persistence.testing.backends",
    "conformance_class": "runtime_persistence.testing.conformance",
    "driver_names": "runtime_persistence.testing.backends",
    "driver_params": "runtime_persistence.testing.backends",
    "isolated_url": "runtime_persistence.testing.backends",
    "open_driver_at": "runtime_persistence.testing.backends",
    "open_test_driver": "runtime_persistence.testing.backends",
    "open_test_store": "runtime_persistence.testing.backends",
    "server_url": "runtime_persistence.testing.backends",
    "split_mode": "runtime_persistence.testing.backends",
    "store_fixture": "runtime_persistence.testing.backends",
    "unwrap": "runtime_persistence.testing.blocking",
}

# Submodules reachable as attributes, as they were when this module imported them.
_SUBMODULES = frozenset(
    {"_processes", "backends", "blocking", "conformance", "crash", "pgbouncer", "seaweedfs"}
)


if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        source = _SOURCES.get(name)
        if source is not None:
            value = getattr(importlib.import_module(source), name)
            globals()[name] = value  # later lookups skip this function
            return value
        if name in _SUBMODULES:
            return importlib.import_module(f"{__name__}.{name}")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
