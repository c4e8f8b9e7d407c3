"""The Redis driver (``redis://[:password@]host:port/db?prefix=p_``), redis-py (extra ``[redis]``).

Layout: every key of a store starts with ``{keepup:<prefix>}:`` (one hash tag, so a store lives in
one cluster slot). Per namespace, a sorted set ``i:<ns>`` holds the keys (all scores 0, so
``ZRANGEBYLEX`` orders them by their UTF-8 bytes), a hash ``v:<ns>`` the values and a hash
``n:<ns>`` the versions. A blob is a hash ``b:<digest>`` (size, creation time, upload id, chunk
count) over string keys ``c:<upload>:<seq>`` of 1 MiB each, and the set ``blobs`` lists digests.

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

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from runtime_core import (
    BlobInfo,
    ConflictError,
    Delete,
    Durability,
    Entry,
    KeepupError,
    NotFoundError,
    Put,
    StorageError,
    utc_now,
    validate_digest,
)

from runtime_persistence.storage.drivers._common import (
    DEFAULT_CHUNK,
    check_batch,
    check_chunk_size,
    check_digest_of,
    check_key_op,
    check_put,
    check_scan,
    key_bounds,
    verified_chunks,
)
from runtime_persistence.storage.drivers._servers import (
    DEFAULT_CONNECT_TIMEOUT,
    int_option,
    merged_options,
    missing_chunk,
    pieces,
    rechunk,
    split_options,
    storage_failure,
    store_prefix,
    unavailable,
)
from runtime_persistence.storage.stores import redact_url

__all__ = ["RedisDriver"]

_KIND = "Redis"
_OPTIONS = ("prefix", "max_value_size")
_MAX_VALUE = 32 << 20
_MAX_VALUE_CEILING = 512 << 20
_STORED_CHUNK = 1 << 20
_PIPELINE_BYTES = 8 << 20  # chunk bytes sent or fetched per round trip
_UPLOAD_TTL = 86_400  # seconds an unpublished upload's chunks live
_SCAN_PAGE = 256

_GET = """
local v = redis.call('HGET', KEYS[2], ARGV[1])
if not v then return false end
return {v, redis.call('HGET', KEYS[3], ARGV[1])}
"""

# KEYS: index, values, versions. ARGV: key, value, mode ('' | 'a' create-only | 'v' expected), expected
_PUT = """
local cur = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
if ARGV[3] == 'a' and cur ~= 0 then return {0, cur} end
if ARGV[3] == 'v' and cur ~= tonumber(ARGV[4]) then return {0, cur} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local ver = redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
if cur == 0 then redis.call('ZADD', KEYS[1], 0, ARGV[1]) end
return {1, ver}
"""

# KEYS: index, values, versions. ARGV: key, expected ('' for none). -1: conflict, 0: absent, 1: deleted
_DELETE = """
local cur = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
if ARGV[2] ~= '' and cur ~= tonumber(ARGV[2]) then return -1 end
if cur == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"""

# KEYS: (index, values, versions) per namespace. ARGV: 6 per op: kind ('p'|'d'), namespace number,
# key, mode ('' | 'a' | 'v'), expected, value. Every condition is checked before anything is written.
_BATCH = """
local count = #ARGV / 6
local seen = {}
local results = {}
for j = 0, count - 1 do
  local kind, t, key, mode, expected = ARGV[j*6+1], tonumber(ARGV[j*6+2]), ARGV[j*6+3], ARGV[j*6+4], ARGV[j*6+5]
  local id = t .. ':' .. key
  local cur = seen[id]
  if cur == nil then cur = tonumber(redis.call('HGET', KEYS[t*3], key) or '0') end
  if mode == 'a' and cur ~= 0 then return {-1, j, cur} end
  if mode == 'v' and cur ~= tonumber(expected) then return {-1, j, cur} end
  if kind == 'p' then
    seen[id] = cur + 1
    results[j+1] = cur + 1
  else
    seen[id] = 0
    if cur ~= 0 then results[j+1] = 1 else results[j+1] = 0 end
  end
end
for j = 0, count - 1 do
  local kind, t, key = ARGV[j*6+1], tonumber(ARGV[j*6+2]), ARGV[j*6+3]
  if kind == 'p' then
    redis.call('HSET', KEYS[t*3-1], key, ARGV[j*6+6])
    redis.call('HSET', KEYS[t*3], key, results[j+1])
    redis.call('ZADD', KEYS[t*3-2], 0, key)
  else
    redis.call('HDEL', KEYS[t*3-1], key)
    redis.call('HDEL', KEYS[t*3], key)
    redis.call('ZREM', KEYS[t*3-2], key)
  end
end
return {1, results}
"""

# KEYS: index, values, versions. ARGV: min, max, limit, reverse ('1' | '0')
_SCAN = """
local keys
if ARGV[4] == '1' then
  keys = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[2], ARGV[1], 'LIMIT', 0, ARGV[3])
else
  keys = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', 0, ARGV[3])
end
if #keys == 0 then return {{}, {}, {}} end
return {keys, redis.call('HMGET', KEYS[2], unpack(keys)), redis.call('HMGET', KEYS[3], unpack(keys))}
"""

# KEYS: meta, blob set. ARGV: digest, upload, chunk count, size, created, chunk key prefix.
# 0: already stored, -1: some chunk expired, 1: published
_PUBLISH = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n = tonumber(ARGV[3])
for s = 0, n - 1 do
  if redis.call('EXISTS', ARGV[6] .. s) == 0 then return -1 end
end
for s = 0, n - 1 do redis.call('PERSIST', ARGV[6] .. s) end
redis.call('HSET', KEYS[1], 'size', ARGV[4], 'created', ARGV[5], 'upload', ARGV[2], 'chunks', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""

# KEYS: meta, blob set. ARGV: digest, chunk key base (followed by upload ':' seq)
_DELETE_BLOB = """
local meta = redis.call('HMGET', KEYS[1], 'upload', 'chunks')
if not meta[1] then return 0 end
for s = 0, tonumber(meta[2]) - 1 do redis.call('UNLINK', ARGV[2] .. meta[1] .. ':' .. s) end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""


class RedisDriver:
    """An ordered key-value store and blob area in one Redis database (see the module docstring
    for the layout and guarantees). Thread-safe (redis-py pools connections); open one per process."""

    def __init__(
        self,
        url: str,
        *,
        durability: Durability = Durability.DURABLE,
        prefix: str = "",
        max_value_size: int = _MAX_VALUE,
    ) -> None:
        self._url = redact_url(url)
        self._raw_url = url
        self._prefix = store_prefix(prefix)
        self._durability = Durability(durability)
        self._max_value_size = max_value_size
        self._base = ("{keepup:" + self._prefix + "}:").encode()
        clean, _ = split_options(url, _OPTIONS)
        client_options: dict[str, Any] = {}
        if "socket_connect_timeout" not in clean:
            client_options["socket_connect_timeout"] = DEFAULT_CONNECT_TIMEOUT
        if "socket_timeout" not in clean:
            client_options["socket_timeout"] = 60.0
        try:
            # no automatic retry: a write whose reply was lost must surface as StorageError
            # ("may or may not have been applied"), never be applied twice
            self._r: redis.Redis = redis.Redis.from_url(
                clean,
                decode_responses=False,
                retry=Retry(NoBackoff(), 0),
                health_check_interval=30,
                **client_options,
            )
            self._r.ping()
        except (redis.RedisError, ValueError) as exc:
            raise unavailable(_KIND, url, exc) from None
        self._get = self._r.register_script(_GET)
        self._put = self._r.register_script(_PUT)
        self._delete = self._r.register_script(_DELETE)
        self._batch = self._r.register_script(_BATCH)
        self._scan = self._r.register_script(_SCAN)
        self._publish = self._r.register_script(_PUBLISH)
        self._delete_blob = self._r.register_script(_DELETE_BLOB)

    @classmethod
    def from_url(
        cls, url: str, *, durability: Durability = Durability.DURABLE, **options: Any
    ) -> RedisDriver:
        """Open the store at ``url``. Raises ValidationError for bad options and
        DriverUnavailableError when the server does not answer or refuses."""
        _, query = split_options(url, _OPTIONS)
        opts = merged_options(query, options, _OPTIONS, url)
        return cls(
            url,
            durability=durability,
            prefix=store_prefix(opts.get("prefix", "")),
            max_value_size=int_option(opts, "max_value_size", _MAX_VALUE, low=1, high=_MAX_VALUE_CEILING),
        )

    # plumbing ----------------------------------------------------------------------------------
    @contextmanager
    def _op(self, action: str) -> Iterator[None]:
        try:
            yield
        except KeepupError:
            raise
        except redis.RedisError as exc:
            raise storage_failure(_KIND, self._raw_url, action, exc) from exc

    def _ns_keys(self, namespace: str) -> list[bytes]:
        ns = namespace.encode()
        return [self._base + b"i:" + ns, self._base + b"v:" + ns, self._base + b"n:" + ns]

    def _meta_key(self, digest: str) -> bytes:
        return self._base + b"b:" + digest.encode()

    def _chunk_base(self) -> bytes:
        return self._base + b"c:"

    # properties --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self._url

    @property
    def atomic_batch(self) -> bool:
        return True

    @property
    def max_value_size(self) -> int:
        return self._max_value_size

    @property
    def durability(self) -> Durability:
        return self._durability

    # key-value ---------------------------------------------------------------------------------
    def get(self, namespace: str, key: str) -> Entry | None:
        check_key_op(namespace, key)
        with self._op("get"):
            found = self._get(keys=self._ns_keys(namespace), args=[key.encode()])
        return Entry(key, bytes(found[0]), int(found[1])) if found else None

    def scan(
        self,
        namespace: str,
        *,
        prefix: str = "",
        after: str | None = None,
        before: str | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[Entry]:
        """See :meth:`runtime_core.Driver.scan`. Each page of a few hundred keys is read
        atomically; keys written between pages may or may not appear."""
        check_scan(namespace, prefix, after, before, limit)
        low, low_inclusive, high = key_bounds(prefix, after, before)
        return self._scan_pages(
            namespace,
            (b"[" if low_inclusive else b"(") + low,
            b"(" + high if high is not None else b"+",
            reverse,
            limit,
        )

    def _scan_pages(
        self, namespace: str, low: bytes, high: bytes, reverse: bool, limit: int | None
    ) -> Iterator[Entry]:
        keys = self._ns_keys(namespace)
        remaining = limit
        while remaining is None or remaining > 0:
            page = _SCAN_PAGE if remaining is None else min(remaining, _SCAN_PAGE)
            with self._op("scan"):
                found, values, versions = self._scan(keys=keys, args=[low, high, page, 1 if reverse else 0])
            for k, v, ver in zip(found, values, versions, strict=True):
                yield Entry(bytes(k).decode(), bytes(v), int(ver))
            if len(found) < page:
                return
            if remaining is not None:
                remaining -= len(found)
            if reverse:
                high = b"(" + bytes(found[-1])
            else:
                low = b"(" + bytes(found[-1])

    def put(
        self,
        namespace: str,
        key: str,
        value: bytes,
        *,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> int:
        check_put(namespace, key, value, if_absent, if_version, self._max_value_size)
        mode = b"a" if if_absent else b"v" if if_version is not None else b""
        with self._op("put"):
            ok, version = self._put(
                keys=self._ns_keys(namespace), args=[key.encode(), bytes(value), mode, if_version or 0]
            )
        if not ok:
            if if_absent:
                raise ConflictError(f"key {key!r} already exists in {namespace!r}")
            raise ConflictError(f"key {key!r} in {namespace!r} is at version {version}, not {if_version}")
        return int(version)

    def delete(self, namespace: str, key: str, *, if_version: int | None = None) -> bool:
        check_key_op(namespace, key, if_version)
        with self._op("delete"):
            outcome = self._delete(
                keys=self._ns_keys(namespace), args=[key.encode(), b"" if if_version is None else if_version]
            )
        if outcome == -1:
            raise ConflictError(f"key {key!r} in {namespace!r} is no longer at version {if_version}")
        return bool(outcome == 1)

    def batch(self, ops: Sequence[Put | Delete]) -> list[int | bool]:
        """All or nothing, in one script: every condition is checked first (against the state as
        it will be when that op runs), and a lost one raises ConflictError with nothing written."""
        check_batch(ops, self._max_value_size)
        if not ops:
            return []
        spaces: dict[str, int] = {}
        keys: list[bytes] = []
        args: list[bytes | int] = []
        for op in ops:
            if op.namespace not in spaces:
                spaces[op.namespace] = len(spaces) + 1
                keys.extend(self._ns_keys(op.namespace))
            if isinstance(op, Put):
                mode = b"a" if op.if_absent else b"v" if op.if_version is not None else b""
                args += [
                    b"p",
                    spaces[op.namespace],
                    op.key.encode(),
                    mode,
                    op.if_version or 0,
                    bytes(op.value),
                ]
            else:
                mode = b"v" if op.if_version is not None else b""
                args += [b"d", spaces[op.namespace], op.key.encode(), mode, op.if_version or 0, b""]
        with self._op("batch"):
            reply = self._batch(keys=keys, args=args)
        if reply[0] == -1:
            failed = ops[int(reply[1])]
            raise ConflictError(
                f"batch op {int(reply[1])} lost its condition: key {failed.key!r} in {failed.namespace!r} "
                f"is at version {int(reply[2])}; nothing was written"
            )
        return [int(r) if isinstance(op, Put) else bool(r) for op, r in zip(ops, reply[1], strict=True)]

    # blobs -------------------------------------------------------------------------------------
    def put_blob(self, data: bytes, digest: str | None = None) -> BlobInfo:
        data = bytes(data)
        actual = check_digest_of(data, digest)
        existing = self._blob_info(actual)
        if existing is not None:
            return existing
        view = memoryview(data)
        return self._store_blob(
            bytes(view[i : i + _STORED_CHUNK]) for i in range(0, len(data), _STORED_CHUNK)
        )

    def put_blob_stream(self, chunks: Iterable[bytes]) -> BlobInfo:
        """Store the stream as 1 MiB chunks, in bounded memory; the blob becomes visible only when
        the whole stream is stored."""
        return self._store_blob(rechunk(chunks, _STORED_CHUNK))

    def _store_blob(self, chunks: Iterable[bytes]) -> BlobInfo:
        upload = secrets.token_hex(8).encode()
        chunk_prefix = self._chunk_base() + upload + b":"
        h = hashlib.sha256()
        size = 0
        count = 0
        try:
            with self._op("put_blob"):
                pipe = self._r.pipeline(transaction=False)
                pending = 0
                for chunk in chunks:
                    h.update(chunk)
                    size += len(chunk)
                    pipe.set(chunk_prefix + str(count).encode(), chunk, ex=_UPLOAD_TTL)
                    count += 1
                    pending += len(chunk)
                    if pending >= _PIPELINE_BYTES:
                        pipe.execute()
                        pending = 0
                pipe.execute()
                digest = h.hexdigest()
                created = utc_now()
                outcome = self._publish(
                    keys=[self._meta_key(digest), self._base + b"blobs"],
                    args=[digest, upload, count, size, created.isoformat(), chunk_prefix],
                )
        except BaseException:
            self._discard_upload(chunk_prefix, count)
            raise
        if outcome == 1:
            return BlobInfo(digest, size, created)
        self._discard_upload(chunk_prefix, count)
        if outcome == -1:
            raise StorageError(
                f"a blob upload took longer than {_UPLOAD_TTL} seconds and expired; store it again"
            )
        info = self._blob_info(digest)
        if info is None:
            raise ConflictError("a blob with this content was deleted while storing it; retry")
        return info

    def _discard_upload(self, chunk_prefix: bytes, count: int) -> None:
        try:
            names = [chunk_prefix + str(i).encode() for i in range(count + 1)]
            for i in range(0, len(names), 512):
                self._r.unlink(*names[i : i + 512])
        except redis.RedisError:
            return  # the chunks expire on their own

    def _blob_info(self, digest: str) -> BlobInfo | None:
        with self._op("blob lookup"):
            size, created = self._r.hmget(self._meta_key(digest), [b"size", b"created"])
        if size is None:
            return None
        return BlobInfo(digest, int(size), _parse_time(created))

    def get_blob(self, digest: str) -> bytes:
        return b"".join(self.open_blob(digest))

    def open_blob(self, digest: str, chunk_size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
        validate_digest(digest)
        check_chunk_size(chunk_size)
        with self._op("open_blob"):
            upload, count = self._r.hmget(self._meta_key(digest), [b"upload", b"chunks"])
        if upload is None or count is None:
            raise NotFoundError(f"blob {digest} not found")
        return verified_chunks(self._read_chunks(digest, _bytes(upload), int(count), chunk_size), digest)

    def _read_chunks(self, digest: str, upload: bytes, count: int, chunk_size: int) -> Iterator[bytes]:
        chunk_prefix = self._chunk_base() + upload + b":"
        step = max(1, _PIPELINE_BYTES // _STORED_CHUNK)
        for start in range(0, count, step):
            with self._op("read blob"):
                found = self._r.mget(
                    [chunk_prefix + str(s).encode() for s in range(start, min(count, start + step))]
                )
            for data in found:
                if data is None:
                    raise missing_chunk(digest, self.has_blob(digest))
                yield from pieces(_bytes(data), chunk_size)

    def has_blob(self, digest: str) -> bool:
        validate_digest(digest)
        with self._op("has_blob"):
            return bool(self._r.exists(self._meta_key(digest)))

    def delete_blob(self, digest: str) -> bool:
        validate_digest(digest)
        with self._op("delete_blob"):
            return bool(
                self._delete_blob(
                    keys=[self._meta_key(digest), self._base + b"blobs"], args=[digest, self._chunk_base()]
                )
                == 1
            )

    def list_blobs(self) -> Iterator[BlobInfo]:
        """Every blob with its size and creation time (in no particular order; a blob stored or
        deleted during the listing may or may not appear)."""
        cursor = 0
        while True:
            with self._op("list_blobs"):
                cursor, digests = self._r.sscan(self._base + b"blobs", cursor, count=500)
                pipe = self._r.pipeline(transaction=False)
                for d in digests:
                    pipe.hmget(self._meta_key(_bytes(d).decode()), [b"size", b"created"])
                metas = pipe.execute() if digests else []
            for d, (size, created) in zip(digests, metas, strict=True):
                if size is not None:
                    yield BlobInfo(_bytes(d).decode(), int(size), _parse_time(created))
            if int(cursor) == 0:
                return

    # lifecycle ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection pool. Idempotent."""
        self._r.close()

    def destroy(self) -> None:
        """Remove every key of this store (its data is gone for good). For tests and ``keepup store
        destroy``; the driver cannot be used afterwards except to close it."""
        with self._op("destroy"):
            batch: list[bytes] = []
            for name in self._r.scan_iter(match=self._base + b"*", count=1000):
                batch.append(name)
                if len(batch) >= 500:
                    self._r.unlink(*batch)
                    batch.clear()
            if batch:
                self._r.unlink(*batch)

    # test hooks: let the corruption tests damage stored bytes the way a disk would
    def _raw_blob(self, digest: str) -> bytes:
        upload, count = self._r.hmget(self._meta_key(digest), [b"upload", b"chunks"])
        prefix = self._chunk_base() + _bytes(upload) + b":"
        return b"".join(_bytes(self._r.get(prefix + str(s).encode())) for s in range(int(_bytes(count))))

    def _set_raw_blob(self, digest: str, data: bytes) -> None:
        upload, count = self._r.hmget(self._meta_key(digest), [b"upload", b"chunks"])
        prefix = self._chunk_base() + _bytes(upload) + b":"
        parts = list(rechunk([data], _STORED_CHUNK))
        pipe = self._r.pipeline(transaction=True)
        for s in range(int(_bytes(count))):
            pipe.delete(prefix + str(s).encode())
        for s, part in enumerate(parts):
            pipe.set(prefix + str(s).encode(), part)
        pipe.hset(self._meta_key(digest), b"chunks", len(parts))
        pipe.execute()


def _bytes(reply: object) -> bytes:
    """A reply that must be a byte string (the client never decodes replies)."""
    if not isinstance(reply, bytes):
        raise StorageError(f"Redis replied {type(reply).__name__} where bytes were expected")
    return reply


def _parse_time(raw: Any) -> datetime | None:
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(bytes(raw).decode())
    except ValueError:
        return None
