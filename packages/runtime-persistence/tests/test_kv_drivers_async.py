"""The key-value server drivers' async twins, where no server is needed: ``open_store_async`` loads
the native :class:`AsyncRedisDriver` and :class:`AsyncMongoDriver` (not the worker-thread
wrapper), refuses bad options before connecting, and reports an unreachable server as a fast,
one-line DriverUnavailableError without the password, like the sync drivers
(tests/test_server_drivers.py). With servers, tests/test_redis_driver.py,
tests/test_mongodb_driver.py and the conformance suite run both twins."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util

import pytest
from runtime_core import DriverUnavailableError, ValidationError
from runtime_persistence.storage.stores import BUILTIN_SCHEMES, open_store_async

LIBRARIES = {"redis": "redis", "mongodb": "pymongo"}
DEAD_URLS = {  # a port nothing listens on, so the connection is refused at once
    "redis": "redis://:s3cret-pw@127.0.0.1:1/0?prefix=kt_dead",
    "mongodb": "mongodb://keepup:s3cret-pw@127.0.0.1:1/test?serverSelectionTimeoutMS=500",
}
NATIVE = {
    "redis": ("runtime_persistence.storage.drivers.redis", "AsyncRedisDriver", "RedisDriver"),
    "mongodb": ("runtime_persistence.storage.drivers.mongodb", "AsyncMongoDriver", "MongoDriver"),
}


def _needs_library(name: str) -> None:
    if importlib.util.find_spec(LIBRARIES[name]) is None:
        pytest.skip(f"the {LIBRARIES[name]} library (extra [{name}]) is not installed")


@pytest.mark.parametrize("name", sorted(NATIVE))
def test_the_scheme_names_the_native_async_twin(name: str) -> None:
    _needs_library(name)
    module_name, async_name, sync_name = NATIVE[name]
    spec = BUILTIN_SCHEMES[name]
    assert spec.async_target == f"{module_name}:{async_name}"
    assert spec.target == f"{module_name}:{sync_name}"
    module = importlib.import_module(module_name)
    async_class, sync_class = getattr(module, async_name), getattr(module, sync_name)
    # the sync class is generated from the async one: same methods, same module family
    assert async_class.__module__.endswith("._async." + name)
    assert sync_class.__module__.endswith("._sync." + name)
    public = {n for n in dir(async_class) if not n.startswith("_")}
    assert public == {n for n in dir(sync_class) if not n.startswith("_")}
    assert asyncio.iscoroutinefunction(async_class.from_url.__func__)
    assert not asyncio.iscoroutinefunction(sync_class.from_url.__func__)


@pytest.mark.parametrize("name", sorted(NATIVE))
def test_an_unreachable_server_is_a_one_line_driver_unavailable_error_in_async_too(name: str) -> None:
    _needs_library(name)
    with pytest.raises(DriverUnavailableError) as caught:
        asyncio.run(open_store_async(DEAD_URLS[name]))
    message = str(caught.value)
    assert "s3cret-pw" not in message and "***" in message
    assert "\n" not in message and "127.0.0.1:1" in message
    assert caught.value.__suppress_context__  # no library traceback chained under it


@pytest.mark.parametrize("name", sorted(NATIVE))
@pytest.mark.parametrize("bad", [{"prefix": "UPPER"}, {"no_such_option": 1}, {"max_value_size": 0}])
def test_bad_options_are_refused_before_connecting_in_async_too(name: str, bad: dict[str, object]) -> None:
    _needs_library(name)
    with pytest.raises(ValidationError):
        asyncio.run(open_store_async(DEAD_URLS[name], **bad))
