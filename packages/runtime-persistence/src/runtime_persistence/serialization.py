"""Serialization in one place: msgspec over an allowlist of plain types, in a checksummed,
versioned envelope.

Envelope layout (all integers big-endian)::

    magic  b"KU"        2 bytes
    format version      1 byte   (1)
    codec               1 byte   (1 = MessagePack, 2 = JSON)
    compression         1 byte   (0 = none, 1 = zstd)
    encryption          1 byte   (0 = none, 1 = AES-256-GCM)
    key id length       1 byte   followed by the key id (UTF-8), empty when not encrypted
    payload length      4 bytes
    payload
    checksum            8 bytes  BLAKE2b-64 of everything before it

Decoding checks the checksum and every length before touching the payload, so a flipped bit or a
truncated record raises CorruptionError and is never decoded into a different value. The payload
decoder accepts only plain types (None, bool, int, float, str, bytes, list, dict with str keys,
datetime) or the msgspec-typed records it is asked for: no pickle, no extension types, no
import-by-name.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any, TypeVar, cast

import msgspec
from runtime_core import CorruptionError, ValidationError

__all__ = ["EnvelopeSerializer", "dumps", "loads"]

T = TypeVar("T")

MAGIC = b"KU"
FORMAT_VERSION = 1
CODEC_MSGPACK = 1
CODEC_JSON = 2
_HEADER = struct.Struct(">2sBBBBB")  # magic, version, codec, compression, encryption, key id len
_LEN = struct.Struct(">I")
_CHECKSUM_SIZE = 8
MAX_PAYLOAD = 1 << 31


def _checksum(data: bytes | memoryview) -> bytes:
    return hashlib.blake2b(data, digest_size=_CHECKSUM_SIZE).digest()


def _refuse_ext(code: int, data: memoryview) -> Any:
    raise CorruptionError(f"MessagePack extension type {code} is not allowed in stored data")


class EnvelopeSerializer:
    """The one serializer (implements :class:`runtime_core.Serializer`).

    ``codec`` is ``"msgpack"`` (default) or ``"json"``."""

    def __init__(self, codec: str = "msgpack") -> None:
        if codec not in ("msgpack", "json"):
            raise ValidationError(f"codec must be 'msgpack' or 'json', got {codec!r}")
        self._codec_id = CODEC_MSGPACK if codec == "msgpack" else CODEC_JSON
        self._msgpack = msgspec.msgpack.Encoder()
        self._json = msgspec.json.Encoder()
        self._decoders: dict[tuple[int, Any], Any] = {}

    def dumps(self, value: Any) -> bytes:
        try:
            payload = (
                self._msgpack.encode(value) if self._codec_id == CODEC_MSGPACK else self._json.encode(value)
            )
        except (TypeError, msgspec.EncodeError, OverflowError) as exc:
            raise ValidationError(f"value cannot be stored: {exc}") from exc
        if len(payload) >= MAX_PAYLOAD:
            raise ValidationError(f"value is {len(payload)} bytes encoded; the limit is {MAX_PAYLOAD}")
        body = b"".join(
            (_HEADER.pack(MAGIC, FORMAT_VERSION, self._codec_id, 0, 0, 0), _LEN.pack(len(payload)), payload)
        )
        return body + _checksum(body)

    def loads(self, data: bytes, type: type[T] | Any = Any) -> T:
        view = memoryview(data)
        if len(view) < _HEADER.size + _LEN.size + _CHECKSUM_SIZE:
            raise CorruptionError(f"record is {len(view)} bytes, shorter than an envelope")
        body, checksum = view[:-_CHECKSUM_SIZE], view[-_CHECKSUM_SIZE:]
        if _checksum(body) != checksum:
            raise CorruptionError("record checksum mismatch: the stored bytes were damaged")
        magic, version, codec, compression, encryption, kid_len = _HEADER.unpack_from(view, 0)
        if magic != MAGIC:
            raise CorruptionError("record does not start with the Keepup envelope magic")
        if version != FORMAT_VERSION:
            raise CorruptionError(f"record envelope version {version} is not supported")
        if compression != 0 or encryption != 0:
            raise CorruptionError("record uses compression or encryption this serializer does not have")
        offset = _HEADER.size + kid_len
        (length,) = _LEN.unpack_from(view, offset)
        offset += _LEN.size
        if offset + length != len(body):
            raise CorruptionError("record payload length does not match the envelope")
        payload = body[offset:]
        return cast(T, self._decode(codec, payload, type))

    def _decode(self, codec: int, payload: memoryview, type: Any) -> Any:
        decoder = self._decoders.get((codec, type))
        if decoder is None:
            if codec == CODEC_MSGPACK:
                decoder = msgspec.msgpack.Decoder(type=type, ext_hook=_refuse_ext)
            elif codec == CODEC_JSON:
                decoder = msgspec.json.Decoder(type=type)
            else:
                raise CorruptionError(f"record codec {codec} is unknown")
            self._decoders[(codec, type)] = decoder
        try:
            return decoder.decode(payload)
        except msgspec.ValidationError as exc:
            raise CorruptionError(f"record does not match its expected type: {exc}") from exc
        except msgspec.DecodeError as exc:
            raise CorruptionError(f"record payload cannot be decoded: {exc}") from exc
        except ValidationError as exc:  # a record's own __post_init__ refused the data
            raise CorruptionError(f"record failed validation: {exc}") from exc


_default = EnvelopeSerializer()


def dumps(value: Any) -> bytes:
    """Encode ``value`` into an envelope with the default serializer."""
    return _default.dumps(value)


def loads(data: bytes, type: type[T] | Any = Any) -> T:
    """Decode an envelope made by :func:`dumps`; CorruptionError on any damage."""
    return cast(T, _default.loads(data, type))
