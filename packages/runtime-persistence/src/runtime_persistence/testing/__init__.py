"""Test support for Keepup storage drivers: the conformance suite every driver must pass, and
fresh isolated test stores for every backend this machine offers.

Import it from tests only: it needs pytest. Typical uses::

    # a conftest.py that wants one fresh driver per available backend
    from runtime_persistence.testing import any_driver, any_store  # noqa: F401

    # a test module that runs the whole suite over some backends
    from runtime_persistence.testing import conformance_class
    TestLocalConformance = conformance_class("memory", "file", "sqlite")
"""

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
from runtime_persistence.testing.blocking import Portal, blocking, unwrap
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
