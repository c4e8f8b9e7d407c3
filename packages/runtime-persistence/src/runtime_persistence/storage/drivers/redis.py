"""The Redis driver (``redis://[:password@]host:port/db?prefix=p_``), redis-py (extra ``[redis]``).

Layout: every key of a store starts with ``{keepup:<prefix>}:`` (one hash tag, so a store lives in
one cluster slot). Per namespace, a sorted set ``i:<ns>`` holds the keys (all scores 0, so
``ZRANGEBYLEX`` orders them by their UTF-8 bytes), a hash ``v:<ns>`` the values and a hash
``n:<ns>`` the versions. A blob is a hash ``b:<digest>`` (size, creation time, upload id, chunk
count) over string keys ``c:<upload>:<seq>`` of 1 MiB each, and the set ``blobs`` lists digests.

Two twins with the same guarantees and errors: :class:`AsyncRedisDriver` on ``redis.asyncio``
(what :func:`~runtime_persistence.open_store_async` gives for ``redis://``) and :class:`RedisDriver`
on the blocking client, generated from the async source (``_async/redis.py``) by
scripts/gen_sync.py. Concurrent calls on one driver run at once, each on a pooled connection.

Guarantees: put, delete and batch run as server-side Lua scripts, so each is atomic and
isolated: a conditional put checks and writes in one step, and a batch checks every condition
before it writes anything (``atomic_batch``). A blob's chunks are written first with a one-day
expiry, then one script checks them, removes the expiry and publishes the blob, so a crashed
upload leaves nothing behind once its chunks expire.

Durability is the server's: Redis acknowledges a write once it is in memory. ``durable`` and
``relaxed`` behave the same here; a write survives a server crash only as far as the server's
persistence settings allow (``appendonly yes`` with ``appendfsync always`` loses nothing that was
acknowledged; ``everysec`` up to a second; RDB snapshots only up to the last snapshot). Use Redis
as a Keepup store only with AOF enabled. Redis Cluster is not supported (the driver speaks to one
server).

Limits: values up to ``max_value_size`` (default 32 MiB, at most 512 MiB). URL options:
``prefix`` (key prefix, at most 32 of ``a-z 0-9 _``), ``max_value_size``; every other query
parameter is a redis-py connection option (``socket_connect_timeout`` defaults to 5 seconds,
``socket_timeout`` to 60)."""

from runtime_persistence.storage.drivers._async.redis import AsyncRedisDriver
from runtime_persistence.storage.drivers._sync.redis import RedisDriver

__all__ = ["AsyncRedisDriver", "RedisDriver"]
