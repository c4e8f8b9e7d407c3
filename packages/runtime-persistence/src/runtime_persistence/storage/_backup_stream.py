"""The portable backup file (``.kbak``): every namespace, entry and blob of a store of any kind,
in one checksummed stream that any other store can be restored from.

Layout: ``MAGIC``, then frames. A frame is ``kind`` (1 byte), the payload's length (4 bytes,
big-endian), the payload (MessagePack), and a 16-byte BLAKE2b checksum over kind, length and
payload. The frames come in this order::

    H {format, created_at, source, driver, snapshot}     one header
    N namespace                                          then, per namespace in byte order,
    E [[key, version, value], ...]                       its entries in key order (a few per frame)
    B [digest, size]                                     then, per blob,
    C bytes                                              its bytes in pieces of at most 1 MiB
    T {namespaces, entries, blobs, blob_bytes, sha256}   one trailer: counts and the SHA-256 of
                                                         every byte before it

So a flipped bit fails a frame checksum, a blob fails its digest, a truncated file lacks its
trailer, and frames removed, repeated or reordered fail the grammar or the trailer's digest: each
raises CorruptionError, never a partial or different reading. Memory is bounded by one frame
(at most :data:`MAX_FRAME` bytes): entries are read and written a frame at a time and blobs a
piece at a time. Versions are recorded as they were; a restore writes each entry anew (the
driver contract gives every new key version 1), which is all repositories rely on."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import msgspec
from runtime_core import CorruptionError, validate_digest, validate_key, validate_namespace

__all__ = [
    "BACKUP_MAGIC",
    "FORMAT",
    "MAX_FRAME",
    "BackupDamagedError",
    "Frame",
    "FrameWriter",
    "read_frames",
]

BACKUP_MAGIC = b"KEEPUP-BACKUP\x00\r\n"  # CRLF: a text-mode transfer that mangles it is caught at once
FORMAT = 1
MAX_FRAME = 96 << 20  # a frame holds at most one value of up to 64 MiB, with room to spare
PIECE = 1 << 20  # blob bytes per C frame
ENTRIES_BYTES = 1 << 20  # value bytes gathered into one E frame (one larger value goes alone)
ENTRIES_COUNT = 512
_HEAD = struct.Struct(">cI")
_SUM = 16
_KINDS = frozenset(b"HNEBCT")
_encode = msgspec.msgpack.Encoder().encode
# Each kind decodes to its own fixed shape: nothing nested deeper than that is ever built, so a
# crafted frame cannot exhaust the stack (an untyped decoder raises RecursionError on one).
_DECODERS: dict[str, msgspec.msgpack.Decoder[Any]] = {
    "H": msgspec.msgpack.Decoder(dict[str, str | int | bool]),
    "N": msgspec.msgpack.Decoder(str),
    "E": msgspec.msgpack.Decoder(list[tuple[str, int, bytes]]),
    "B": msgspec.msgpack.Decoder(tuple[str, int]),
    "C": msgspec.msgpack.Decoder(bytes),
    "T": msgspec.msgpack.Decoder(dict[str, str | int]),
}


class BackupDamagedError(CorruptionError):
    """A backup file (portable or a SQLite copy) failed verification: damaged, truncated or
    tampered with. Nothing was restored from it. A CorruptionError, so it maps where that does
    (exit 6); its own type lets a caller tell a bad backup from a damaged store."""


def _checksum(head: bytes, payload: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=_SUM)
    h.update(head)
    h.update(payload)
    return h.digest()


class FrameWriter:
    """Writes frames to ``out`` and keeps the SHA-256 of everything written (for the trailer)."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._sha = hashlib.sha256()
        self.bytes = 0
        self._write(BACKUP_MAGIC)

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._sha.update(data)
        self.bytes += len(data)

    def frame(self, kind: bytes, value: Any) -> None:
        payload = _encode(value)
        if len(payload) > MAX_FRAME:  # pragma: no cover - values are capped far below this
            raise CorruptionError(f"a backup frame of {len(payload)} bytes is over the {MAX_FRAME} limit")
        head = _HEAD.pack(kind, len(payload))
        self._write(head + payload + _checksum(head, payload))

    def trailer(self, counts: dict[str, int]) -> None:
        self.frame(b"T", {**counts, "sha256": self._sha.hexdigest()})


@dataclass(frozen=True, slots=True)
class Frame:
    """One checked frame: its kind (``H N E B C T``) and decoded payload."""

    kind: str
    value: Any


def _read_exactly(src: IO[bytes], n: int, where: str) -> bytes:
    data = src.read(n)
    if len(data) != n:
        raise BackupDamagedError(
            f"the backup {where} is truncated: it ends inside a frame, before its trailer"
        )
    return data


def read_frames(src: IO[bytes], where: str) -> Iterator[Frame]:
    """The frames of a backup stream, each checked (checksum, grammar, names, blob digests, the
    trailer's counts and digest) before it is yielded; the last is the trailer. Raises
    CorruptionError at the first damage: a reader never sees a frame past it."""
    magic = src.read(len(BACKUP_MAGIC))
    if magic != BACKUP_MAGIC:
        raise BackupDamagedError(
            f"{where} is not a Keepup backup file (its first bytes are not {BACKUP_MAGIC!r})"
        )
    sha = hashlib.sha256(magic)
    state = "start"
    namespace: str | None = None
    last_key: str | None = None
    blob: tuple[str, int] | None = None
    blob_hash = hashlib.sha256()
    blob_got = 0
    counts = {"namespaces": 0, "entries": 0, "blobs": 0, "blob_bytes": 0}

    def fail(what: str) -> BackupDamagedError:
        return BackupDamagedError(f"the backup {where} is damaged: {what}")

    def end_blob() -> None:
        nonlocal blob
        if blob is not None:
            digest, size = blob
            if blob_got != size or blob_hash.hexdigest() != digest:
                raise fail(f"blob {digest} does not match its digest or size")
            blob = None

    while True:
        head = src.read(_HEAD.size)
        if not head:
            raise BackupDamagedError(f"the backup {where} is truncated: it ends before its trailer")
        if len(head) != _HEAD.size:
            raise BackupDamagedError(
                f"the backup {where} is truncated: it ends inside a frame, before its trailer"
            )
        kind_byte, size = _HEAD.unpack(head)
        if kind_byte[0] not in _KINDS:
            raise fail(f"an unknown frame kind {kind_byte!r}")
        if size > MAX_FRAME:
            raise fail(f"a frame claims {size} bytes, over the {MAX_FRAME} limit")
        payload = _read_exactly(src, size, where)
        if _read_exactly(src, _SUM, where) != _checksum(head, payload):
            raise fail("a frame failed its checksum")
        kind = kind_byte.decode()
        if kind != "T":
            sha.update(head + payload + _checksum(head, payload))
        try:
            value = _DECODERS[kind].decode(payload)
        except msgspec.DecodeError as exc:  # ValidationError too: a payload of the wrong shape
            raise fail(f"a {kind} frame does not decode ({exc})") from None
        try:
            if kind == "H":
                if state != "start" or value.get("format") != FORMAT:
                    raise fail(f"the header is missing, repeated or of an unknown format ({value!r:.80})")
                state = "records"
            elif kind == "N":
                if state != "records":
                    raise fail("a namespace frame is out of place")
                validate_namespace(value)
                if namespace is not None and value.encode() <= namespace.encode():
                    raise fail(f"namespace {value!r} is out of order or repeated")
                namespace, last_key = value, None
                counts["namespaces"] += 1
            elif kind == "E":
                if state != "records" or namespace is None:
                    raise fail("an entries frame is out of place")
                for item in value:
                    validate_key(item[0])
                    if last_key is not None and item[0].encode() <= last_key.encode():
                        raise fail(f"key {item[0]!r:.80} of {namespace!r} is out of order or repeated")
                    last_key = item[0]
                    counts["entries"] += 1
            elif kind == "B":
                if state not in ("records", "blobs"):
                    raise fail("a blob frame is out of place")
                end_blob()
                digest, bsize = value
                validate_digest(digest)
                if bsize < 0:
                    raise fail(f"blob {digest} has a bad size")
                state, blob = "blobs", (digest, bsize)
                blob_hash, blob_got = hashlib.sha256(), 0
                counts["blobs"] += 1
            elif kind == "C":
                if blob is None:
                    raise fail("a blob piece is out of place")
                blob_hash.update(value)
                blob_got += len(value)
                counts["blob_bytes"] += len(value)
                if blob_got > blob[1]:
                    raise fail(f"blob {blob[0]} is longer than its size")
            else:  # T
                if state == "start":
                    raise fail("the trailer is out of place")
                end_blob()
                for name, count in counts.items():
                    if value.get(name) != count:
                        raise fail(f"the trailer counts {value.get(name)!r} {name}, the file holds {count}")
                if value.get("sha256") != sha.hexdigest():
                    raise fail(
                        "the trailer's digest does not match the frames (some were changed or removed)"
                    )
                if src.read(1):
                    raise fail("there are bytes after the trailer")
        except BackupDamagedError:
            raise
        except Exception as exc:  # ValidationError of a name, a key or a digest: untrusted input
            raise fail(str(exc)) from None
        yield Frame(kind, value)
        if kind == "T":
            return
