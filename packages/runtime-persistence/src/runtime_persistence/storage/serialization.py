"""Serialization in one place: msgspec over an allowlist of plain types, in a checksummed,
versioned envelope, optionally compressed (zstd) and encrypted (AES-256-GCM with key ids).

Envelope layout (all integers big-endian)::

    magic  b"KU"        2 bytes
    format version      1 byte   (3 = bound to its place, 4 = unbound: written now; 2 and 1,
                                  their older twins with a BLAKE2b checksum, are still read)
    codec               1 byte   (1 = MessagePack, 2 = JSON)
    compression         1 byte   (0 = none, 1 = zstd)
    encryption          1 byte   (0 = none, 1 = AES-256-GCM)
    key id length       1 byte   followed by the key id (UTF-8), empty when not encrypted
    payload length      4 bytes
    payload             (encrypted: 12-byte nonce, ciphertext, 16-byte tag; the header, and
                        for a bound record its place, is the associated data, so a record
                        cannot be moved under another key id, namespace or key)
    checksum            8 bytes  XXH3-64 of (for a bound record) its place, then everything
                        before the checksum (formats 2 and 1: BLAKE2b-64 of the same bytes)

The checksum detects accidents (a flipped bit, a truncated or misdirected write, a record copied
under another key), not attacks: it is unkeyed, so anyone who can write the store can recompute
it whatever the hash, and authenticity comes only from encrypting with a keyring (AES-GCM, whose
associated data is the header and the place). So it is a fast non-cryptographic hash: XXH3-64,
which for inputs over 240 bytes is the low half of XXH3-128, about 40 times faster than BLAKE2b
over a 10 KB value. 64 bits suffice: each record is compared only with its own stored sum, never
with other records' sums, so the chance that a damaged or misplaced record passes is 2^-64, and
no birthday bound applies. Formats 2 and 1 (BLAKE2b-64, written before) keep verifying with their
own hash; a record is rewritten in the current format the next time it is written.

| version | place | checksum | written |
|---|---|---|---|
| 1 | unbound | BLAKE2b-64 | before records were bound |
| 2 | bound | BLAKE2b-64 | before the XXH3 checksum |
| 3 | bound | XXH3-64 | now, ``dumps(value, at=...)`` |
| 4 | unbound | XXH3-64 | now, ``dumps(value)`` (blobs, export frames) |

Any other version is refused (CorruptionError naming it: written by a newer Keepup, or damaged).

A record is *bound to its place*: ``dumps(value, at=(namespace, key))`` makes a bound (format-3)
envelope whose checksum, and when encrypting whose AES-GCM associated data, also covers the
namespace and key it is stored under (they are not stored in the envelope: the reader supplies
them, ``loads(data, at=(namespace, key))``). A record copied or swapped under another key, or
read as the wrong one, fails its checksum (or its authentication) and raises CorruptionError.
The format version is in the header, which both cover, so a bound record cannot be passed off
as an unbound one without recomputing the checksum (which needs no secret on a plaintext store:
there binding catches misplaced records, not forgery) or re-encrypting (which needs the key).

``at=None`` makes an unbound (format-4) envelope, for data that is bound otherwise: blobs, whose
name is the digest of their bytes (checked on read), and export frames, under the file's hash.
Format-1 records written at a place by Keepup before binding existed are still read: without a
keyring as they are (plaintext stores never protected against writers of the store), with a
keyring only through the migration switch (below), since an unbound encrypted record could be
moved under another key.

With a keyring, plaintext is refused (CorruptionError): anyone who can write the store could
otherwise inject records without the key. The one exception is the explicit migration switch
``EnvelopeSerializer(keyring=..., accept_plaintext=True)``, used by ``keepup store encrypt``
(:func:`runtime_persistence.storage.encrypt.encrypt_store`) to read plaintext and unbound records
in order to rewrite them bound and encrypted. Blob envelopes read with ``content_addressed=True``
(their bytes already matched the digest an authenticated record names) may be plaintext: they
were written before the store was encrypted.

Order of work: encode → compress → encrypt → checksum; decoding reverses it and checks the
checksum and every length before touching the payload, so a flipped bit or a truncated record
raises CorruptionError and is never decoded into a different value.

What decoding accepts, and what it refuses (CorruptionError, without calling, importing or
evaluating anything):

* plain types only: None, bool, int, float, str, bytes, list, dict with str keys, datetime, UUID,
  or the msgspec-typed records the caller asks for; never pickle, never import-by-name. A key
  of any other type (int, float, bool, None, bytes, tuple, UUID ...) is refused: MessagePack
  would keep it and JSON would turn it into a different string key;
* no MessagePack extension types (other than msgspec's own timestamp, which is a datetime);
* keys of any shape are plain data: a ``__dunder__`` key, jsonpickle's ``py/…`` tags or
  LangChain's ``{"lc": …, "type": "constructor", "id": […]}`` shape are stored and returned as
  the strings and mappings they are, because nothing here ever interprets them (LangGraph's own
  channels are called ``__start__``, ``__interrupt__``...). A serializer built with
  ``strict_keys=True`` refuses them instead (an opt-in for stores whose readers might hand
  records to a framework deserializer that does interpret them);
* no nesting deeper than :data:`MAX_DEPTH` (512) containers;
* no declared length beyond the bytes actually present (a str, bin, array or map of 2^32 - 1
  items in a short record), no payload of :data:`MAX_PAYLOAD` bytes or more;
* no decompressed payload over the serializer's ``max_record_size`` (default
  :data:`DEFAULT_MAX_RECORD_SIZE`, 64 MiB). A zstd payload is decompressed as a stream that
  stops one byte past the cap whatever its frame header declares (python-zstandard's one-shot
  ``decompress`` trusts a declared content size over ``max_output_size``), so a small forged
  record can never make a reader allocate more than about twice the cap plus the zstd window
  (at most 2^27 bytes). Every frame in the payload counts, and a truncated frame is refused;
* no invalid UTF-8 and no lone surrogates in strings;
* no NaN or infinity, unless the serializer was built with ``allow_nan=True`` (MessagePack only:
  JSON cannot carry them). Non-finite floats are refused by default because NaN is not equal to
  itself, so a restored state would never compare equal to what was stored.

Encoding refuses the same things with ValidationError, so nothing is ever stored that cannot be
read back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import struct
import threading
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar, cast
from uuid import UUID

import msgspec
from runtime_core import CorruptionError, DriverUnavailableError, KeepupError, ValidationError
from xxhash import xxh3_64 as _xxh3_64
from xxhash import xxh3_64_digest as _xxh3_64_digest

__all__ = [
    "DEFAULT_MAX_RECORD_SIZE",
    "MAX_DEPTH",
    "MAX_PAYLOAD",
    "EnvelopeSerializer",
    "Keyring",
    "dumps",
    "loads",
]

T = TypeVar("T")

MAGIC = b"KU"
FORMAT_VERSION = 3  # bound to (namespace, key), XXH3-64 checksum
FORMAT_UNBOUND = 4  # unbound, XXH3-64 checksum
FORMAT_BOUND_BLAKE2B = 2  # bound, BLAKE2b-64 checksum: written before format 3, still read
FORMAT_UNBOUND_BLAKE2B = 1  # unbound, BLAKE2b-64 checksum: written before format 2, still read
_BOUND = frozenset({FORMAT_VERSION, FORMAT_BOUND_BLAKE2B})
_UNBOUND = frozenset({FORMAT_UNBOUND, FORMAT_UNBOUND_BLAKE2B})
_BLAKE2B = frozenset({FORMAT_BOUND_BLAKE2B, FORMAT_UNBOUND_BLAKE2B})
_PLACE_TAG = b"keepup-place\x00"
CODEC_MSGPACK = 1
CODEC_JSON = 2
COMPRESSION_NONE = 0
COMPRESSION_ZSTD = 1
ENCRYPTION_NONE = 0
ENCRYPTION_AES_GCM = 1
_HEADER = struct.Struct(">2sBBBBB")  # magic, version, codec, compression, encryption, key id len
_LEN = struct.Struct(">I")
_CHECKSUM_SIZE = 8
_NONCE = 12
_TAG = 16
MAX_PAYLOAD = 1 << 31
DEFAULT_MAX_RECORD_SIZE = 64 << 20
"""The default cap on a record's encoded (decompressed) payload, both ways: dumps refuses a
larger value with ValidationError, loads refuses a payload that decompresses past it with
CorruptionError. Configurable per serializer (``max_record_size``)."""
_ZSTD_MAX_WINDOW = 1 << 27  # zstd's own default limit for a frame's window (decoder memory)
_ZSTD_READ = 1 << 20  # decompress in pieces of this size
MAX_DEPTH = 512
_COMPRESS_FROM = 256  # payloads shorter than this are not worth compressing

# Byte patterns whose absence proves a payload needs no walk (see _needs_walk).
_MSGPACK_CONTAINERS = bytes([*range(0x80, 0xA0), 0xDC, 0xDD, 0xDE, 0xDF])
_MSGPACK_NONFINITE = (b"\xcb\x7f", b"\xcb\xff", b"\xca\x7f", b"\xca\xff")
_MARKERS = (b"__", b"py/", b"lc")
_JPICKLE_TAGS = frozenset(
    {
        "py/object",
        "py/type",
        "py/function",
        "py/reduce",
        "py/newobj",
        "py/newargs",
        "py/newargsex",
        "py/initargs",
        "py/repr",
        "py/mod",
        "py/state",
        "py/iterator",
    }
)


class _Refused(Exception):
    """A value holds something the allowlist refuses (raised inside the walk)."""


_SPLIT = 4096  # envelopes larger than this are hashed in place rather than copied after the place


def _checksum(data: bytes | memoryview, place: bytes = b"") -> bytes:
    """The checksum of formats 3 and 4 (the current ones): XXH3-64 of ``place`` then ``data``."""
    if not place:
        return _xxh3_64_digest(data)
    if len(data) > _SPLIT:
        hasher = _xxh3_64(place)
        hasher.update(data)
        return hasher.digest()
    return _xxh3_64_digest(place + data)


def _blake2b_checksum(data: bytes | memoryview, place: bytes = b"") -> bytes:
    """The checksum of formats 1 and 2 (written before format 3): BLAKE2b-64 of ``place`` then
    ``data``."""
    hasher = hashlib.blake2b(place, digest_size=_CHECKSUM_SIZE)
    hasher.update(data)
    return hasher.digest()


def place_bytes(at: tuple[str, str]) -> bytes:
    """The bytes a bound record's checksum and associated data cover for ``at`` (namespace,
    key): a tag, then each as a length-prefixed UTF-8 string, so no two places share bytes."""
    if not (isinstance(at, tuple) and len(at) == 2 and isinstance(at[0], str) and isinstance(at[1], str)):
        raise ValidationError(f"a record's place is a (namespace, key) pair of str, got {at!r:.80}")
    namespace = at[0].encode("utf-8", "surrogatepass")
    key = at[1].encode("utf-8", "surrogatepass")
    return b"".join((_PLACE_TAG, _LEN.pack(len(namespace)), namespace, _LEN.pack(len(key)), key))


def _refuse_ext(code: int, data: memoryview) -> Any:
    raise _Refused(f"MessagePack extension type {code} is not allowed in stored data")


def _not_str_key(key: object) -> _Refused:
    return _Refused(
        f"mapping keys must be str, got a {type(key).__name__} key ({key!r:.60}); "
        "MessagePack would store it as is and JSON would silently turn it into a string"
    )


def _check_key(key: object, strict: bool) -> None:
    if not isinstance(key, str):
        raise _not_str_key(key)
    if not strict:
        return
    if len(key) > 4 and key.startswith("__") and key.endswith("__"):
        raise _Refused(f"the mapping key {key!r:.60} is reserved: it names something to import or call")
    if key in _JPICKLE_TAGS:
        raise _Refused(f"the mapping key {key!r} is a jsonpickle tag that names something to import")


def _walk(value: Any, *, allow_nan: bool, check_strings: bool, strict_keys: bool = False) -> None:
    """Check every nested value: depth, key types (and with ``strict_keys`` reserved keys),
    non-finite floats, lone surrogates."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if check_strings:
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    raise _Refused("a string holds a lone surrogate") from None
            continue
        if isinstance(item, float):
            if not allow_nan and not math.isfinite(item):
                raise _Refused(f"non-finite float {item!r} is not allowed (NaN never equals itself)")
            continue
        if isinstance(item, dict):
            children: Any = item.values()
            for key in item:
                _check_key(key, strict_keys)
                if check_strings:
                    stack.append((key, depth))
            if (
                strict_keys
                and "lc" in item
                and item.get("type") in ("constructor", "secret", "not_implemented")
                and isinstance(item.get("id"), list)
            ):
                raise _Refused("a mapping has the LangChain constructor shape (names a class to import)")
        elif isinstance(item, (list, tuple)):
            children = item
        elif isinstance(item, msgspec.Struct):
            children = [getattr(item, f) for f in item.__struct_fields__]
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            children = [getattr(item, f.name) for f in dataclasses.fields(item)]
        else:
            continue
        if depth >= MAX_DEPTH:
            raise _Refused(f"value is nested more than {MAX_DEPTH} containers deep")
        stack.extend((child, depth + 1) for child in children)


_LEAVES = frozenset({str, int, float, bool, bytes, type(None), datetime, UUID})


_CLOSED = frozenset({str, int, float, bool, bytes, type(None), datetime, UUID})
_OPEN_FIELDS: dict[type[Any], tuple[str, ...]] = {}


def _is_closed(annotation: Any) -> bool:
    """Whether a field typed ``annotation`` can only hold leaves (no mapping, no list)."""
    if annotation in _CLOSED:
        return True
    origin = typing.get_origin(annotation)
    # a list of leaves holds no mapping and cannot nest (a mapping's keys would need the check)
    if origin in (typing.Union, types.UnionType, tuple, list):
        return all(arg is not Ellipsis and _is_closed(arg) for arg in typing.get_args(annotation))
    return False


def _open_fields(cls: type[Any]) -> tuple[str, ...]:
    """The fields of struct type ``cls`` that may hold containers (the others need no check once
    msgspec has decoded them against their declared types)."""
    found = _OPEN_FIELDS.get(cls)
    if found is None:
        found = _OPEN_FIELDS[cls] = tuple(
            f.name for f in msgspec.structs.fields(cls) if not _is_closed(f.type)
        )
    return found


def _check_tree(value: Any, strict_keys: bool, *, decoded: bool = False) -> None:
    """The checks the payload bytes cannot decide, over the containers of ``value`` only (leaves
    are skipped without a call): every mapping key is a str (and, with ``strict_keys``, not a
    reserved one, and no mapping has the LangChain constructor shape), and no nesting deeper than
    MAX_DEPTH. Its cost follows the number of containers and keys, not the bytes of the strings,
    so a state of a few long messages is checked in microseconds."""
    if type(value) in _LEAVES:
        return
    leaves = _LEAVES
    stack: list[tuple[Any, int]] = [(value, 0)]
    pop = stack.pop
    push = stack.append
    while stack:  # plain loops, no generator per container: this runs on every record read
        item, depth = pop()
        kind = type(item)
        if kind in leaves:
            continue
        if depth >= MAX_DEPTH:
            raise _Refused(f"value is nested more than {MAX_DEPTH} containers deep")
        depth += 1
        if kind is list or kind is tuple:
            for v in item:
                if type(v) not in leaves:
                    push((v, depth))
        elif isinstance(item, dict):
            for key, v in item.items():
                if type(key) is not str:
                    raise _not_str_key(key)
                if type(v) not in leaves:
                    push((v, depth))
            if strict_keys:
                for key in item:
                    _check_key(key, True)
                if (
                    "lc" in item
                    and item.get("type") in ("constructor", "secret", "not_implemented")
                    and isinstance(item.get("id"), list)
                ):
                    raise _Refused("a mapping has the LangChain constructor shape (names a class to import)")
        elif isinstance(item, (list, tuple)):
            for v in item:
                push((v, depth))
        elif isinstance(item, msgspec.Struct):
            # ``decoded``: msgspec built this struct against its declared field types
            for f in _open_fields(kind) if decoded else item.__struct_fields__:
                push((getattr(item, f), depth))
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            for field in dataclasses.fields(item):
                push((getattr(item, field.name), depth))


def _may_hold_nonfinite(payload: bytes | memoryview) -> bool:
    """False when the MessagePack bytes prove there is no NaN or infinity (no float32 or float64
    whose exponent is all ones); a first pass looks for the float markers alone, which most
    states (strings, ints) do not contain at all."""
    raw = bytes(payload) if isinstance(payload, memoryview) else payload
    if b"\xcb" not in raw and b"\xca" not in raw:
        return False
    return any(p in raw for p in _MSGPACK_NONFINITE)


def _needs_walk(payload: bytes | memoryview, codec: int) -> bool:
    """For JSON payloads: False when the bytes prove the value has no reserved key, surrogate
    escape or deep nesting; True when the full walk must decide. (MessagePack payloads are
    checked by :func:`_check_tree` and :func:`_may_hold_nonfinite` instead.)"""
    raw = bytes(payload) if isinstance(payload, memoryview) else payload
    if any(m in raw for m in _MARKERS):
        return True
    if codec == CODEC_MSGPACK:
        if any(p in raw for p in _MSGPACK_NONFINITE):
            return True
        containers = len(raw) - len(raw.translate(None, _MSGPACK_CONTAINERS))
    else:
        if b"\\u" in raw:  # an escape can spell a reserved key or a lone surrogate: walk
            return True
        containers = raw.count(b"[") + raw.count(b"{")
    return containers > MAX_DEPTH


# Decoders by (codec, type), shared by every serializer: building one for a record type costs
# tens of microseconds, and a fresh store object must not pay that again on its first reads.
# A decoder holds no state between calls.
_DECODERS: dict[tuple[int, Any], Any] = {}


class Keyring:
    """AES-256-GCM keys by id. New records are encrypted with the active key; a record names its
    key id, so after rotating to a new key (``add(new_id, key)``) old records stay readable as
    long as their key is still in the ring. Needs the ``crypto`` extra."""

    def __init__(self, keys: Mapping[str, bytes] | None = None, *, active: str | None = None) -> None:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as exc:
            raise DriverUnavailableError(
                "encryption needs the 'cryptography' library: install `runtime-persistence[crypto]`",
                extra="crypto",
            ) from exc
        self._aesgcm = AESGCM
        self._keys: dict[str, Any] = {}
        self._active: str | None = None
        for key_id, key in (keys or {}).items():
            self.add(key_id, key, activate=False)
        if active is not None:
            self.activate(active)
        elif self._keys:
            self._active = next(reversed(self._keys))

    @staticmethod
    def generate_key() -> bytes:
        """A fresh random 256-bit key."""
        return os.urandom(32)

    def add(self, key_id: str, key: bytes, *, activate: bool = True) -> None:
        """Add a 32-byte key under ``key_id`` (1-255 UTF-8 bytes); by default it becomes the
        key new records are encrypted with."""
        if not isinstance(key_id, str) or not 1 <= len(key_id.encode("utf-8", "replace")) <= 255:
            raise ValidationError(f"a key id is 1-255 UTF-8 bytes, got {key_id!r:.80}")
        try:
            key_id.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("a key id must not hold lone surrogates") from None
        if not isinstance(key, bytes) or len(key) != 32:
            raise ValidationError("an AES-256-GCM key is exactly 32 bytes")
        if key_id in self._keys:
            raise ValidationError(f"key id {key_id!r} is already in the keyring; key ids are never reused")
        self._keys[key_id] = self._aesgcm(key)
        if activate:
            self._active = key_id

    def activate(self, key_id: str) -> None:
        if key_id not in self._keys:
            raise ValidationError(f"key id {key_id!r} is not in the keyring")
        self._active = key_id

    @property
    def active_id(self) -> str:
        if self._active is None:
            raise ValidationError("the keyring is empty: add a key before encrypting")
        return self._active

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def _encrypt(self, key_id: str, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + cast(bytes, self._keys[key_id].encrypt(nonce, plaintext, aad))

    def _decrypt(self, key_id: str, payload: bytes, aad: bytes) -> bytes:
        cipher = self._keys.get(key_id)
        if cipher is None:
            raise ValidationError(
                f"the record is encrypted with key id {key_id!r}, which is not in the keyring: add "
                "that key to read it (rotated-out keys must stay in the ring while records use them)"
            )
        if len(payload) < _NONCE + _TAG:
            raise CorruptionError("encrypted payload is shorter than a nonce and a tag")
        try:
            return cast(bytes, cipher.decrypt(payload[:_NONCE], payload[_NONCE:], aad))
        except Exception as exc:  # cryptography's InvalidTag
            raise CorruptionError(
                "encrypted record failed authentication: it was damaged or altered"
            ) from exc


def _zstd() -> Any:
    try:
        import zstandard
    except ImportError as exc:
        raise DriverUnavailableError(
            "zstd compression needs the 'zstandard' library: install `runtime-persistence[zstd]`",
            extra="zstd",
        ) from exc
    return zstandard


class EnvelopeSerializer:
    """The one serializer (implements :class:`runtime_core.Serializer`).

    ``codec`` is ``"msgpack"`` (default) or ``"json"``; ``compression`` is None or ``"zstd"``
    (extra ``zstd``; payloads under 256 bytes or that do not shrink are stored uncompressed);
    ``keyring`` encrypts every record with its active key (extra ``crypto``); ``allow_nan``
    permits NaN and infinities (MessagePack only). ``strict_keys`` refuses ``__dunder__`` keys,
    jsonpickle tags and LangChain's constructor shape (by default they are plain data, returned
    as stored and never interpreted). ``max_record_size`` (default
    :data:`DEFAULT_MAX_RECORD_SIZE`, 64 MiB) caps a record's encoded payload before compression:
    larger values are refused by dumps, and a compressed payload that expands past it is
    refused by loads (CorruptionError) after decompressing at most that much plus one byte, so a
    reader's memory stays bounded whatever a stored record claims.

    Any serializer reads any record it has the means for: compressed records need only the
    ``zstandard`` library, encrypted ones the key named in the record. With a ``keyring`` it
    refuses plaintext and unbound records (CorruptionError) unless built with
    ``accept_plaintext=True``: the migration switch, meant only for rewriting a store under a key
    (``keepup store encrypt``), never for serving data."""

    def __init__(
        self,
        codec: str = "msgpack",
        *,
        compression: str | None = None,
        level: int = 3,
        keyring: Keyring | None = None,
        allow_nan: bool = False,
        max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
        accept_plaintext: bool = False,
        strict_keys: bool = False,
    ) -> None:
        if (
            isinstance(max_record_size, bool)
            or not isinstance(max_record_size, int)
            or not 0 < max_record_size < MAX_PAYLOAD - _NONCE - _TAG
        ):
            raise ValidationError(
                f"max_record_size must be a positive int below {MAX_PAYLOAD - _NONCE - _TAG}, "
                f"got {max_record_size!r}"
            )
        self.max_record_size = max_record_size
        if codec not in ("msgpack", "json"):
            raise ValidationError(f"codec must be 'msgpack' or 'json', got {codec!r}")
        if compression not in (None, "zstd"):
            raise ValidationError(f"compression must be None or 'zstd', got {compression!r}")
        if allow_nan and codec == "json":
            raise ValidationError("JSON cannot carry NaN or infinities: use the msgpack codec with allow_nan")
        self._codec_id = CODEC_MSGPACK if codec == "msgpack" else CODEC_JSON
        self._zstd_level: int | None = None
        if compression == "zstd":
            _zstd()  # a missing library is reported now, naming the extra
            self._zstd_level = level
        # zstd (de)compressors must not be used by two threads at once: one of each per thread
        self._zstd_local = threading.local()
        self._keyring = keyring
        self._accept_plaintext = bool(accept_plaintext)
        self._allow_nan = allow_nan
        self._strict_keys = strict_keys
        self._msgpack = msgspec.msgpack.Encoder()
        self._json = msgspec.json.Encoder()
        self._decoders = _DECODERS

    # encoding ------------------------------------------------------------------------------------
    @property
    def keyring(self) -> Keyring | None:
        """The keyring records are encrypted with (None: records are stored in plaintext)."""
        return self._keyring

    @property
    def accepts_plaintext(self) -> bool:
        """Whether the migration switch is on (see the module docstring)."""
        return self._accept_plaintext

    def dumps(self, value: Any, *, at: tuple[str, str] | None = None) -> bytes:
        """Encode ``value`` into an envelope, bound to ``at`` (namespace, key) when given (see
        the module docstring). ValidationError for anything outside the allowlist or a payload
        of MAX_PAYLOAD bytes or more."""
        return self._finish(value, self._encode(value), at, checked=False)

    def _encode(self, value: Any) -> bytes:
        """``value`` in this serializer's codec, before the envelope; ValidationError for what
        the codec cannot encode."""
        try:
            if self._codec_id == CODEC_MSGPACK:
                return self._msgpack.encode(value)
            return self._json.encode(value)
        except RecursionError:
            raise ValidationError(f"value is nested more than {MAX_DEPTH} containers deep") from None
        except (TypeError, msgspec.EncodeError, OverflowError, UnicodeEncodeError, ValueError) as exc:
            raise ValidationError(f"value cannot be stored: {exc}") from exc

    def dumps_checked(
        self, value: Any, *, at: tuple[str, str] | None = None, payload: bytes | None = None
    ) -> bytes:
        """:meth:`dumps` of a value already checked as plain data (``runtime_core``'s
        ``check_plain``: str keys, at most 16 levels deep, no NaN or infinity; or a record built
        only of such values and leaves), so the container walk is left out unless the reserved
        keys must be refused (``strict_keys``). ``payload``, when given, is ``value`` already
        encoded by a default ``msgspec.msgpack.Encoder`` (used as is with the msgpack codec). The
        same bytes as :meth:`dumps`."""
        if payload is None or self._codec_id != CODEC_MSGPACK:
            payload = self._encode(value)
        return self._finish(value, payload, at, checked=not self._strict_keys)

    def _finish(self, value: Any, payload: bytes, at: tuple[str, str] | None, *, checked: bool) -> bytes:
        """The checks the encoder cannot make (all of them unless ``checked``), compression and
        the envelope."""
        if len(payload) > self.max_record_size:
            raise ValidationError(
                f"value is {len(payload)} bytes encoded; the limit is {self.max_record_size} "
                "(max_record_size)"
            )
        try:
            if checked:
                pass
            elif self._codec_id == CODEC_JSON:
                _walk(value, allow_nan=self._allow_nan, check_strings=False, strict_keys=self._strict_keys)
            else:
                _check_tree(value, self._strict_keys)
                if not self._allow_nan and _may_hold_nonfinite(payload):
                    _walk(value, allow_nan=False, check_strings=False)
        except _Refused as exc:
            raise ValidationError(f"value cannot be stored: {exc}") from None
        compression = COMPRESSION_NONE
        if self._zstd_level is not None and len(payload) >= _COMPRESS_FROM:
            compressor = getattr(self._zstd_local, "compressor", None)
            if compressor is None:
                compressor = _zstd().ZstdCompressor(level=self._zstd_level, write_content_size=True)
                self._zstd_local.compressor = compressor
            packed = compressor.compress(payload)
            if len(packed) < len(payload):
                payload, compression = packed, COMPRESSION_ZSTD
        return self._seal(self._codec_id, compression, payload, at)

    def _seal(self, codec: int, compression: int, payload: bytes, at: tuple[str, str] | None) -> bytes:
        """The envelope around an encoded (and maybe compressed) payload: encrypted with the
        active key when there is a keyring, bound to ``at`` when given."""
        place = b"" if at is None else place_bytes(at)
        key_id = b""
        encryption = ENCRYPTION_NONE
        if self._keyring is not None:
            key_id = self._keyring.active_id.encode("utf-8")
            encryption = ENCRYPTION_AES_GCM
        if len(payload) + _NONCE + _TAG >= MAX_PAYLOAD:
            raise ValidationError(f"value is {len(payload)} bytes encoded; the limit is {MAX_PAYLOAD}")
        version = FORMAT_UNBOUND if at is None else FORMAT_VERSION
        header = _HEADER.pack(MAGIC, version, codec, compression, encryption, len(key_id)) + key_id
        if self._keyring is not None:
            payload = self._keyring._encrypt(key_id.decode("utf-8"), payload, header + place)
        body = b"".join((header, _LEN.pack(len(payload)), payload))
        return body + _checksum(body, place)

    # decoding ------------------------------------------------------------------------------------
    def loads(
        self,
        data: bytes,
        type: type[T] | Any = Any,
        *,
        at: tuple[str, str] | None = None,
        content_addressed: bool = False,
    ) -> T:
        """Decode an envelope read from ``at`` (namespace, key). CorruptionError for damage,
        anything outside the allowlist, a bound record read from another place (or without
        one), and, with a keyring, a plaintext or unbound record (see the module docstring;
        ``content_addressed=True`` says the bytes already matched the digest an authenticated
        record names, so a plaintext blob is accepted). ValidationError when the record is
        encrypted with a key this serializer lacks; DriverUnavailableError when it is compressed
        and zstandard is not installed. Never imports, calls or evaluates anything named by the
        data."""
        codec, compression, payload = self._open(data, at, content_addressed=content_addressed)
        if compression == COMPRESSION_ZSTD:
            payload = self._decompress(payload)
        return cast(T, self._decode(codec, payload, type))

    def loads_plain(
        self, data: bytes | memoryview, *, content_addressed: bool = False
    ) -> tuple[Any, bytes | None]:
        """:meth:`loads` of an unbound envelope (a blob), with the plain MessagePack bytes of the
        value when its codec is MessagePack: the payload that was just checked and decoded
        (decrypted and decompressed), so a caller that keeps values as plain MessagePack does
        not encode them again. None instead of bytes for a JSON payload."""
        # _open takes any bytes-like envelope (it checks and views it through a memoryview)
        codec, compression, payload = self._open(cast(bytes, data), None, content_addressed=content_addressed)
        if compression == COMPRESSION_ZSTD:
            payload = self._decompress(payload)
        value = self._decode(codec, payload, Any)
        return value, (bytes(payload) if codec == CODEC_MSGPACK else None)

    def reseal(self, data: bytes, *, at: tuple[str, str] | None) -> bytes | None:
        """``data`` (an envelope read from ``at``) rewritten bound to ``at`` and encrypted with
        the active key, keeping its codec and encoded payload as they are; None when it already
        is. For rewriting a store under a key (``keepup store encrypt``): needs a keyring, and
        ``accept_plaintext=True`` to read plaintext or unbound records. CorruptionError when
        ``data`` fails any check :meth:`loads` makes."""
        if self._keyring is None:
            raise ValidationError("resealing a record needs a serializer with a keyring")
        view = memoryview(data)
        if len(view) >= _HEADER.size:
            _, version, _, _, encryption, kid_len = _HEADER.unpack_from(view, 0)
            # a record of either checksum format is as safe under AES-GCM: not rewritten
            wanted = _UNBOUND if at is None else _BOUND
            active = self._keyring.active_id.encode("utf-8")
            if (
                version in wanted
                and encryption == ENCRYPTION_AES_GCM
                and bytes(view[_HEADER.size : _HEADER.size + kid_len]) == active
            ):
                self._open(data, at, content_addressed=False)  # verified, not rewritten
                return None
        codec, compression, payload = self._open(data, at, content_addressed=False)
        return self._seal(codec, compression, bytes(payload), at)

    def _open(
        self, data: bytes, at: tuple[str, str] | None, *, content_addressed: bool
    ) -> tuple[int, int, bytes | memoryview]:
        """Check an envelope (checksum, place, lengths, plaintext rule) and decrypt its payload:
        (codec, compression, encoded payload)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValidationError(f"loads takes bytes, got {_builtin_type(data).__name__}")
        view = memoryview(data)
        if len(view) < _HEADER.size + _LEN.size + _CHECKSUM_SIZE:
            raise CorruptionError(f"record is {len(view)} bytes, shorter than an envelope")
        body, checksum = view[:-_CHECKSUM_SIZE], view[-_CHECKSUM_SIZE:]
        magic, version, codec, compression, encryption, kid_len = _HEADER.unpack_from(view, 0)
        if magic != MAGIC:
            if _checksum(body) != checksum and _blake2b_checksum(body) != checksum:
                raise CorruptionError("record checksum mismatch: the stored bytes were damaged")
            raise CorruptionError("record does not start with the Keepup envelope magic")
        if version in _BOUND:
            if at is None:
                raise CorruptionError(
                    "record is bound to the namespace and key it was stored under, and was read "
                    "without them (a blob or frame position holds a record copied from elsewhere)"
                )
            place = place_bytes(at)
        elif version in _UNBOUND:
            place = b""
        else:
            raise CorruptionError(
                f"record envelope version {version} is not supported: this Keepup reads versions "
                f"1 to {max(_BOUND | _UNBOUND)}. The record was written by a newer Keepup (upgrade "
                "to read it), or its stored bytes were damaged"
            )
        # content_addressed: the whole envelope already hashed to the digest an authenticated
        # record names, which proves it is the envelope that was written (checksum included)
        summed = _blake2b_checksum if version in _BLAKE2B else _checksum
        if not content_addressed and summed(body, place) != checksum:
            if at is not None and version in _BOUND:
                raise CorruptionError(
                    f"record checksum mismatch at {at[0]!r}/{at[1]!r:.200}: the stored bytes were "
                    "damaged, or the record was copied or moved here from another key"
                )
            raise CorruptionError("record checksum mismatch: the stored bytes were damaged")
        if self._keyring is not None and not self._accept_plaintext:
            if encryption == ENCRYPTION_NONE and not (content_addressed and at is None):
                raise CorruptionError(
                    "record is not encrypted, and this serializer has a keyring: plaintext records "
                    "are refused (anyone who can write the store could inject them). To encrypt an "
                    "existing store, run `keepup store encrypt`"
                )
            if version in _UNBOUND and at is not None:
                raise CorruptionError(
                    f"record is not bound to its key (envelope format {version}; format 1 "
                    "predates binding records to their key), and this "
                    "serializer has a keyring: such a record could have been moved here from "
                    "another key. Rewrite the store with `keepup store encrypt`"
                )
        if codec not in (CODEC_MSGPACK, CODEC_JSON):
            raise CorruptionError(f"record codec {codec} is unknown")
        if compression not in (COMPRESSION_NONE, COMPRESSION_ZSTD):
            raise CorruptionError(f"record compression {compression} is unknown")
        if encryption not in (ENCRYPTION_NONE, ENCRYPTION_AES_GCM):
            raise CorruptionError(f"record encryption {encryption} is unknown")
        if (encryption == ENCRYPTION_NONE) != (kid_len == 0):
            raise CorruptionError("record key id does not match its encryption flag")
        offset = _HEADER.size + kid_len
        if offset + _LEN.size > len(body):
            raise CorruptionError("record key id runs past the end of the envelope")
        (length,) = _LEN.unpack_from(view, offset)
        header = bytes(view[:offset])
        offset += _LEN.size
        if length >= MAX_PAYLOAD or offset + length != len(body):
            raise CorruptionError("record payload length does not match the envelope")
        payload: bytes | memoryview = body[offset:]
        if encryption == ENCRYPTION_AES_GCM:
            try:
                key_id = header[_HEADER.size :].decode("utf-8")
            except UnicodeDecodeError:
                raise CorruptionError("record key id is not UTF-8") from None
            if self._keyring is None:
                raise ValidationError(
                    f"the record is encrypted (key id {key_id!r}); read it with a serializer that has a "
                    "keyring (the keepup command: --keyring FILE, $KEEPUP_KEYRING, or keyring.toml in the "
                    "Keepup home)"
                )
            payload = self._keyring._decrypt(key_id, bytes(payload), header + place)
        return codec, compression, payload

    def _decompress(self, payload: bytes | memoryview) -> bytes:
        """Decompress every frame of ``payload`` as a stream, refusing (CorruptionError) as soon
        as the output passes ``max_record_size``, whatever the frame headers declare."""
        zstd = _zstd()
        decompressor = getattr(self._zstd_local, "decompressor", None)
        if decompressor is None:
            decompressor = zstd.ZstdDecompressor(max_window_size=_ZSTD_MAX_WINDOW)
            self._zstd_local.decompressor = decompressor
        cap = self.max_record_size
        raw = bytes(payload)
        try:
            declared = zstd.frame_content_size(raw)
        except Exception as exc:  # zstandard.ZstdError: not a frame header
            raise CorruptionError(f"record payload cannot be decompressed: {exc}") from exc
        if declared > cap:  # -1 when the frame does not say: the stream below decides
            raise CorruptionError(
                f"record payload declares {declared} bytes decompressed, larger than the "
                f"{cap}-byte limit (max_record_size)"
            )
        chunks: list[bytes] = []
        total = 0
        try:
            with decompressor.stream_reader(raw, read_across_frames=True) as reader:
                while True:
                    chunk = reader.read(min(_ZSTD_READ, cap + 1 - total))
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > cap:
                        raise CorruptionError(
                            f"record payload decompresses to more than {cap} bytes, larger than "
                            "the limit (max_record_size)"
                        )
                    chunks.append(chunk)
        except KeepupError:
            raise
        except Exception as exc:  # zstandard.ZstdError: damaged or truncated frame
            raise CorruptionError(f"record payload cannot be decompressed: {exc}") from exc
        return b"".join(chunks)

    def _decode(self, codec: int, payload: bytes | memoryview, type: Any) -> Any:
        decoder = self._decoders.get((codec, type))
        if decoder is None:
            if codec == CODEC_MSGPACK:
                decoder = msgspec.msgpack.Decoder(type=type, ext_hook=_refuse_ext)
            else:
                decoder = msgspec.json.Decoder(type=type)
            self._decoders[(codec, type)] = decoder
        try:
            value = decoder.decode(payload)
        except _Refused as exc:
            raise CorruptionError(f"record refused: {exc}") from None
        except RecursionError:
            raise CorruptionError(f"record is nested more than {MAX_DEPTH} containers deep") from None
        except msgspec.ValidationError as exc:
            raise CorruptionError(f"record does not match its expected type: {exc}") from exc
        except msgspec.DecodeError as exc:
            raise CorruptionError(f"record payload cannot be decoded: {exc}") from exc
        except UnicodeDecodeError:
            raise CorruptionError("record holds a string that is not valid UTF-8") from None
        except ValidationError as exc:  # a record's own __post_init__ refused the data
            raise CorruptionError(f"record failed validation: {exc}") from exc
        try:
            if codec == CODEC_MSGPACK:
                _check_tree(value, self._strict_keys, decoded=True)
                if not self._allow_nan and _may_hold_nonfinite(payload):
                    _walk(value, allow_nan=False, check_strings=False)
            elif _needs_walk(payload, codec):  # JSON keys are always strings
                _walk(value, allow_nan=self._allow_nan, check_strings=True, strict_keys=self._strict_keys)
        except _Refused as exc:
            raise CorruptionError(f"record refused: {exc}") from None
        return value


_builtin_type = type

_default = EnvelopeSerializer()


def dumps(value: Any, *, at: tuple[str, str] | None = None) -> bytes:
    """Encode ``value`` into an envelope with the default serializer (MessagePack, no
    compression, no encryption), bound to ``at`` (namespace, key) when given."""
    return _default.dumps(value, at=at)


def loads(data: bytes, type: type[T] | Any = Any, *, at: tuple[str, str] | None = None) -> T:
    """Decode an envelope made by :func:`dumps` (or a compressing serializer), read from ``at``;
    CorruptionError on any damage or refused content."""
    return cast(T, _default.loads(data, type, at=at))
