# Generated from packages/runtime-persistence/src/runtime_persistence/storage/drivers/_async/redis.py by scripts/gen_sync.py: edit that file and rerun the script.
"""The Redis driver's I/O: the layout, guarantees and options are described in
:mod:`runtime_persistence.storage.drivers.redis`, the scripts and keys are in ``_redis_core.py``
and the loops shared with MongoDB in ``_kv.py``.

Written once, as async code on ``redis.asyncio`` in ``drivers/_async/redis.py``; the twin on
the blocking redis-py client in ``drivers/_sync/redis.py`` is generated from it by
scripts/gen_sync.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar

from redis import Redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.exceptions import RedisError
from redis.maint_notifications import MaintNotificationsConfig
from redis.retry import Retry
from runtime_core import BlobInfo, Delete, Entry, Put, ValidationError

from runtime_persistence.storage.drivers import _redis_core as core
from runtime_persistence.storage.drivers._servers import (
    one_line,
    rechunk,
    split_options,
    unavailable,
)
from runtime_persistence.storage.drivers._sync._kv import (
    STORED_CHUNK,
    UPLOAD_TTL,
    Published,
    _KeyValueServer,
)
from runtime_persistence.storage.drivers._sync._streams import password_from_file

__all__ = ["RedisDriver"]

_DISCARD_GROUP = 512  # keys removed per UNLINK


class RedisDriver(_KeyValueServer):
    """An ordered key-value store and blob area in one Redis database (see
    :mod:`runtime_persistence.storage.drivers.redis` for the layout and guarantees). Safe to share
    between threads (sync) or tasks (async): the client pools connections, so concurrent calls
    run at once. Open it with :meth:`from_url`, one per process (the async one per event loop)."""

    _kind = core.KIND
    _options: ClassVar[tuple[str, ...]] = ("prefix", "max_value_size", "password_file")
    _errors = (RedisError,)
    _default_max_value = core.MAX_VALUE
    _max_value_ceiling = core.MAX_VALUE_CEILING
    _atomic_batch = True  # every batch is one Lua script
    _write_group_bytes = 8 << 20  # chunk bytes sent per pipeline round trip
    _read_ahead = 8  # chunks fetched per MGET

    def _make_client(self) -> None:
        self._keys = core.Keys.for_prefix(self._prefix)
        try:
            # no automatic retry (see core.client_options); and no maintenance notifications (a
            # Redis Enterprise feature, "auto" by default): with them on, redis-py skips its check
            # that a pooled connection is still open, so a connection the server closed while idle
            # would carry the next command and fail it as "may or may not have been applied"
            self._r: Redis = Redis.from_url(
                self._client_url,
                retry=Retry(NoBackoff(), 0),
                maint_notifications_config=MaintNotificationsConfig(enabled=False),
                **core.client_options(self._client_url),
            )
        except ValueError as exc:  # a malformed URL or option: a usage mistake, not a server failure
            raise ValidationError(
                f"malformed Redis store URL {self._url}: {one_line(exc, self._raw_url)}"
            ) from None
        self._get: Script = self._r.register_script(core.GET)
        self._put: Script = self._r.register_script(core.PUT)
        self._delete: Script = self._r.register_script(core.DELETE)
        self._batch: Script = self._r.register_script(core.BATCH)
        self._scan: Script = self._r.register_script(core.SCAN)
        self._publish_script: Script = self._r.register_script(core.PUBLISH)
        self._delete_blob: Script = self._r.register_script(core.DELETE_BLOB)

    def _open(self) -> None:
        # from the URL or a keyword of from_url/open_store (both merged there)
        _, query = split_options(self._raw_url, ("password_file",))
        path = self._opened_with.get("password_file") or query.get("password_file")
        if path:  # read here: __init__ does no I/O; no connection is made yet
            kind = self._kind
            pw = password_from_file(path, kind)
            self._r.connection_pool.connection_kwargs["password"] = pw
        try:
            self._r.ping()
        except RedisError as exc:
            self._r.close()
            raise unavailable(self._kind, self._raw_url, exc) from None

    @property
    def _base(self) -> bytes:
        """The prefix of every key of this store (tests look their keys up with it)."""
        return self._keys.base

    # key-value ---------------------------------------------------------------------------------
    def _read(self, namespace: str, key: str) -> Entry | None:
        found = self._get(keys=self._keys.namespace(namespace), args=[key.encode()])
        return Entry(key, bytes(found[0]), int(found[1])) if found else None

    def _scan_page(
        self, namespace: str, low: bytes, low_inclusive: bool, high: bytes | None, reverse: bool, page: int
    ) -> list[Entry]:
        found, values, versions = self._scan(
            keys=self._keys.namespace(namespace), args=core.scan_args(low, low_inclusive, high, reverse, page)
        )
        return [
            Entry(bytes(k).decode(), bytes(v), int(ver))
            for k, v, ver in zip(found, values, versions, strict=True)
        ]

    def _write(self, namespace: str, key: str, value: bytes, if_absent: bool, if_version: int | None) -> int:
        reply = self._put(
            keys=self._keys.namespace(namespace), args=core.put_args(key, value, if_absent, if_version)
        )
        return core.put_result(namespace, key, if_absent, if_version, reply)

    def _erase(self, namespace: str, key: str, if_version: int | None) -> bool:
        reply = self._delete(keys=self._keys.namespace(namespace), args=core.delete_args(key, if_version))
        return core.delete_result(namespace, key, if_version, reply)

    def _apply(self, ops: list[Put | Delete]) -> list[int | bool]:
        """All or nothing, in one script: every condition is checked first (against the state as
        it will be when that op runs), and a lost one raises ConflictError with nothing written."""
        keys, args = core.batch_args(ops, self._keys)
        return core.batch_results(ops, self._batch(keys=keys, args=args))

    # blobs -------------------------------------------------------------------------------------
    def _write_chunks(self, upload: str, first: int, chunks: list[bytes]) -> None:
        pipe = self._r.pipeline(transaction=False)
        for name, chunk in zip(self._keys.chunks(upload, first, first + len(chunks)), chunks, strict=True):
            pipe.set(name, chunk, ex=UPLOAD_TTL)
        pipe.execute()

    def _publish(self, upload: str, digest: str, size: int, count: int, created: datetime) -> Published:
        outcome = self._publish_script(
            keys=[self._keys.meta(digest), self._keys.blobs],
            args=[digest, upload, count, size, created.isoformat(), self._keys.chunk_prefix(upload)],
        )
        return {1: Published.NEW, 0: Published.EXISTS}.get(int(outcome), Published.EXPIRED)

    def _discard(self, upload: str, count: int) -> None:
        names = self._keys.chunks(upload, 0, count)
        for i in range(0, len(names), _DISCARD_GROUP):
            self._r.unlink(*names[i : i + _DISCARD_GROUP])

    def _read_blob_info(self, digest: str) -> BlobInfo | None:
        size, created = self._r.hmget(self._keys.meta(digest), core.BLOB_FIELDS)
        return None if size is None else BlobInfo(digest, int(size), core.parse_time(created))

    def _blob_layout(self, digest: str) -> tuple[str, int] | None:
        upload, count = self._r.hmget(self._keys.meta(digest), core.LAYOUT_FIELDS)
        if upload is None or count is None:
            return None
        return core.as_bytes(upload).decode(), int(count)

    def _read_chunks(self, upload: str, start: int, end: int) -> list[bytes | None]:
        return [
            None if data is None else core.as_bytes(data)
            for data in self._r.mget(self._keys.chunks(upload, start, end))
        ]

    def _blob_exists(self, digest: str) -> bool:
        return bool(self._r.exists(self._keys.meta(digest)))

    def _remove_blob(self, digest: str) -> bool:
        outcome = self._delete_blob(
            keys=[self._keys.meta(digest), self._keys.blobs], args=[digest, self._keys.chunk_base]
        )
        return bool(outcome == 1)

    def _blob_page(self, token: str | None) -> tuple[list[BlobInfo], str | None]:
        cursor, digests = self._r.sscan(self._keys.blobs, int(token or 0), count=500)
        pipe = self._r.pipeline(transaction=False)
        for d in digests:
            pipe.hmget(self._keys.meta(core.as_bytes(d).decode()), core.BLOB_FIELDS)
        metas: list[Any] = pipe.execute() if digests else []
        infos = [
            BlobInfo(core.as_bytes(d).decode(), int(size), core.parse_time(created))
            for d, (size, created) in zip(digests, metas, strict=True)
            if size is not None
        ]
        return infos, None if int(cursor) == 0 else str(int(cursor))

    def namespaces(self) -> Iterator[str]:
        """The namespaces that hold keys, in byte order (for backups): a SCAN for the index of
        each namespace (an index holds one member per key, and Redis drops it with the last)."""
        index = self._keys.base + b"i:"
        with self._op("namespaces"):
            found = {
                core.as_bytes(name)[len(index) :]
                for name in self._r.scan_iter(match=index + b"*", count=1000)
            }
        for name in sorted(found):
            yield name.decode()

    # lifecycle ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection pool. Idempotent."""
        self._r.close()

    def destroy(self) -> None:
        """Remove every key of this store (its data is gone for good). For tests and ``keepup store
        destroy``; the driver cannot be used afterwards except to close it."""
        with self._op("destroy"):
            batch: list[bytes] = []
            for name in self._r.scan_iter(match=self._keys.everything, count=1000):
                batch.append(name)
                if len(batch) >= _DISCARD_GROUP:
                    self._r.unlink(*batch)
                    batch.clear()
            if batch:
                self._r.unlink(*batch)

    # test hooks: let the corruption tests damage stored bytes the way a disk would
    def _raw_blob(self, digest: str) -> bytes:
        layout = self._blob_layout(digest)
        assert layout is not None
        upload, count = layout
        return b"".join(core.as_bytes(data) for data in self._read_chunks(upload, 0, count))

    def _set_raw_blob(self, digest: str, data: bytes) -> None:
        layout = self._blob_layout(digest)
        assert layout is not None
        upload, count = layout
        parts = list(rechunk([data], STORED_CHUNK))
        pipe = self._r.pipeline(transaction=True)
        for name in self._keys.chunks(upload, 0, count):
            pipe.delete(name)
        for name, part in zip(self._keys.chunks(upload, 0, len(parts)), parts, strict=True):
            pipe.set(name, part)
        pipe.hset(self._keys.meta(digest), b"chunks", len(parts))
        pipe.execute()
