"""The I/O-free part of the Redis driver, shared by :class:`AsyncRedisDriver` and the generated
:class:`RedisDriver`: the key layout, the Lua scripts, the client options, and the packing of
script arguments and unpacking of script replies. Nothing here talks to a server (and nothing
imports redis-py), so it exists once for both twins. The layout and guarantees are described in
:mod:`runtime_persistence.storage.drivers.redis`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runtime_core import ConflictError, Delete, Put, StorageError

from runtime_persistence.storage.drivers._servers import DEFAULT_CONNECT_TIMEOUT

KIND = "Redis"
MAX_VALUE = 32 << 20
MAX_VALUE_CEILING = 512 << 20
SOCKET_TIMEOUT = 60.0
HEALTH_CHECK_INTERVAL = 30
BLOB_FIELDS = (b"size", b"created")
LAYOUT_FIELDS = (b"upload", b"chunks")

GET = """
local v = redis.call('HGET', KEYS[2], ARGV[1])
if not v then return false end
return {v, redis.call('HGET', KEYS[3], ARGV[1])}
"""

# KEYS: index, values, versions. ARGV: key, value, mode ('' | 'a' create-only | 'v' expected), expected
PUT = """
local cur = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
if ARGV[3] == 'a' and cur ~= 0 then return {0, cur} end
if ARGV[3] == 'v' and cur ~= tonumber(ARGV[4]) then return {0, cur} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local ver = redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
if cur == 0 then redis.call('ZADD', KEYS[1], 0, ARGV[1]) end
return {1, ver}
"""

# KEYS: index, values, versions. ARGV: key, expected ('' for none). -1: conflict, 0: absent, 1: deleted
DELETE = """
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
BATCH = """
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
SCAN = """
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
PUBLISH = """
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
DELETE_BLOB = """
local meta = redis.call('HMGET', KEYS[1], 'upload', 'chunks')
if not meta[1] then return 0 end
for s = 0, tonumber(meta[2]) - 1 do redis.call('UNLINK', ARGV[2] .. meta[1] .. ':' .. s) end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""


@dataclass(frozen=True, slots=True)
class Keys:
    """Every key of one store: all start with ``{keepup:<prefix>}:`` (one hash tag)."""

    base: bytes

    @classmethod
    def for_prefix(cls, prefix: str) -> Keys:
        return cls(("{keepup:" + prefix + "}:").encode())

    def namespace(self, namespace: str) -> list[bytes]:
        """The index (sorted set), values (hash) and versions (hash) of ``namespace``."""
        ns = namespace.encode()
        return [self.base + b"i:" + ns, self.base + b"v:" + ns, self.base + b"n:" + ns]

    def meta(self, digest: str) -> bytes:
        """The hash describing one blob (size, creation time, upload id, chunk count)."""
        return self.base + b"b:" + digest.encode()

    @property
    def blobs(self) -> bytes:
        """The set of every stored digest."""
        return self.base + b"blobs"

    @property
    def chunk_base(self) -> bytes:
        return self.base + b"c:"

    def chunk_prefix(self, upload: str) -> bytes:
        """The keys of an upload's chunks are this followed by the chunk's number."""
        return self.chunk_base + upload.encode() + b":"

    def chunks(self, upload: str, start: int, end: int) -> list[bytes]:
        prefix = self.chunk_prefix(upload)
        return [prefix + str(seq).encode() for seq in range(start, end)]

    @property
    def everything(self) -> bytes:
        """A SCAN pattern matching every key of the store."""
        return self.base + b"*"


def client_options(clean_url: str) -> dict[str, Any]:
    """The redis-py options the driver sets: no automatic retry (a write whose reply was lost
    must surface as StorageError, "may or may not have been applied", never be applied twice),
    raw byte replies, a health check on idle connections, and timeouts unless the URL sets them."""
    options: dict[str, Any] = {"decode_responses": False, "health_check_interval": HEALTH_CHECK_INTERVAL}
    if "socket_connect_timeout" not in clean_url:
        options["socket_connect_timeout"] = DEFAULT_CONNECT_TIMEOUT
    if "socket_timeout" not in clean_url:
        options["socket_timeout"] = SOCKET_TIMEOUT
    return options


def scan_args(low: bytes, low_inclusive: bool, high: bytes | None, reverse: bool, page: int) -> list[Any]:
    """The SCAN script's arguments for one page of a key range (``high`` exclusive)."""
    return [
        (b"[" if low_inclusive else b"(") + low,
        b"(" + high if high is not None else b"+",
        page,
        1 if reverse else 0,
    ]


def put_args(key: str, value: bytes, if_absent: bool, if_version: int | None) -> list[Any]:
    mode = b"a" if if_absent else b"v" if if_version is not None else b""
    return [key.encode(), bytes(value), mode, if_version or 0]


def delete_args(key: str, if_version: int | None) -> list[Any]:
    return [key.encode(), b"" if if_version is None else if_version]


def batch_args(ops: Sequence[Put | Delete], keys: Keys) -> tuple[list[bytes], list[Any]]:
    """The BATCH script's KEYS (three per namespace) and ARGV (six per op)."""
    spaces: dict[str, int] = {}
    script_keys: list[bytes] = []
    args: list[Any] = []
    for op in ops:
        if op.namespace not in spaces:
            spaces[op.namespace] = len(spaces) + 1
            script_keys.extend(keys.namespace(op.namespace))
        if isinstance(op, Put):
            mode = b"a" if op.if_absent else b"v" if op.if_version is not None else b""
            args += [b"p", spaces[op.namespace], op.key.encode(), mode, op.if_version or 0, bytes(op.value)]
        else:
            mode = b"v" if op.if_version is not None else b""
            args += [b"d", spaces[op.namespace], op.key.encode(), mode, op.if_version or 0, b""]
    return script_keys, args


def put_result(namespace: str, key: str, if_absent: bool, if_version: int | None, reply: Any) -> int:
    """The new version from the PUT script's reply; ConflictError for a lost condition."""
    ok, version = reply
    if not ok:
        if if_absent:
            raise ConflictError(f"key {key!r} already exists in {namespace!r}")
        raise ConflictError(f"key {key!r} in {namespace!r} is at version {version}, not {if_version}")
    return int(version)


def delete_result(namespace: str, key: str, if_version: int | None, reply: Any) -> bool:
    if reply == -1:
        raise ConflictError(f"key {key!r} in {namespace!r} is no longer at version {if_version}")
    return bool(reply == 1)


def batch_results(ops: Sequence[Put | Delete], reply: Any) -> list[int | bool]:
    """Each op's result from the BATCH script's reply; ConflictError naming the op that lost."""
    if reply[0] == -1:
        failed = ops[int(reply[1])]
        raise ConflictError(
            f"batch op {int(reply[1])} lost its condition: key {failed.key!r} in {failed.namespace!r} "
            f"is at version {int(reply[2])}; nothing was written"
        )
    return [int(r) if isinstance(op, Put) else bool(r) for op, r in zip(ops, reply[1], strict=True)]


def as_bytes(reply: object) -> bytes:
    """A reply that must be a byte string (the client never decodes replies)."""
    if not isinstance(reply, bytes):
        raise StorageError(f"Redis replied {type(reply).__name__} where bytes were expected")
    return reply


def parse_time(raw: Any) -> datetime | None:
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(bytes(raw).decode())
    except ValueError:
        return None
