"""The old import path ``runtime_persistence.drivers.redis``, kept working: the code lives in :mod:`runtime_persistence.storage.drivers.redis`."""

from runtime_persistence.storage.drivers.redis import (
    AsyncRedisDriver,
    RedisDriver,
)

__all__ = [
    "AsyncRedisDriver",
    "RedisDriver",
]
