"""The I/O-free half of the artifact repository: the stored record shapes, key and scope rules,
the key layout and the checks on what was read. Shared by :class:`AsyncArtifacts` and the
generated :class:`Artifacts` (``_async/artifacts.py`` -> ``_sync/artifacts.py``), so neither
repeats it."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Any

import msgspec
from runtime_core import (
    ArtifactVersion,
    CorruptionError,
    NotFoundError,
    Serializer,
    TypedArtifact,
    ValidationError,
)

ARTIFACT_NS = "artifact"
ARTIFACT_HWM_NS = "artifact.hwm"
TYPED_MEDIA_TYPE = "application/vnd.keepup.artifact+json"
MAX_ARTIFACT_KEY_CHARS = 200
MAX_ARTIFACT_KEY_BYTES = 320
MAX_SEGMENT_BYTES = 255
MAX_SCOPE_BYTES = 128
RECORD_FORMAT = 1
SEP = "\x1f"
_DIGITS = 10
MAX_VERSION = 10**_DIGITS - 1
PAGE = 500
MAX_ATTEMPTS = 1000
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class Record(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """One stored artifact version (namespace ``artifact``), written once, never rewritten."""

    format: int
    scope: str
    key: str
    version: int
    digest: str
    size: int
    media_type: str
    created_at: datetime
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    artifact_type: str | None = None
    quarantined: bool = False
    quarantine_reason: str | None = None
    refs: tuple[str, ...] = ()


class Hwm(msgspec.Struct, frozen=True):
    """A key's high-water mark (namespace ``artifact.hwm``): the lowest never-used version."""

    next: int


def bad_char(ch: str) -> bool:
    return ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs")


def validate_artifact_key(key: object) -> str:
    """Return the canonical (NFC) form of an artifact key, or raise ValidationError.

    A key is a relative path of 1 to 200 characters (at most 320 UTF-8 bytes), segments separated
    by ``/``, each segment 1 to 255 bytes and not ``.`` or ``..`` (also after compatibility
    normalisation, so full-width dots are no way round it). Refused: absolute paths (``/x``,
    ``C:x``), backslashes (and their look-alikes), NUL and other control characters, lone
    surrogates and bidirectional-text controls."""
    if not isinstance(key, str):
        raise ValidationError(f"an artifact key must be a str, got {type(key).__name__}")
    if any(bad_char(ch) for ch in key):
        raise ValidationError(
            "an artifact key must not contain NUL, control characters, lone surrogates or bidi controls"
        )
    key = unicodedata.normalize("NFC", key)
    if not key:
        raise ValidationError("an artifact key must not be empty")
    if len(key) > MAX_ARTIFACT_KEY_CHARS or len(key.encode("utf-8")) > MAX_ARTIFACT_KEY_BYTES:
        raise ValidationError(
            f"an artifact key is at most {MAX_ARTIFACT_KEY_CHARS} characters and "
            f"{MAX_ARTIFACT_KEY_BYTES} UTF-8 bytes; this one is {len(key)} characters"
        )
    compat = unicodedata.normalize("NFKC", key)
    if "\\" in key or "\\" in compat or "\u2216" in key or "\ufe68" in key:
        raise ValidationError(f"an artifact key must not contain backslashes: {key!r:.80}")
    if (
        key.startswith("/")
        or compat.startswith("/")
        or (len(key) >= 2 and key[1] == ":" and key[0].isalpha())
    ):
        raise ValidationError(f"an artifact key must be a relative path, got {key!r:.80}")
    for segment, compat_segment in zip(key.split("/"), compat.split("/"), strict=False):
        if not segment:
            raise ValidationError(
                f"an artifact key must not have empty segments ('//' or a trailing '/'): {key!r:.80}"
            )
        if segment in (".", "..") or compat_segment in (".", ".."):
            raise ValidationError(f"an artifact key must not contain '.' or '..' segments: {key!r:.80}")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise ValidationError(f"an artifact key segment is at most {MAX_SEGMENT_BYTES} UTF-8 bytes")
    if len(compat.split("/")) != len(key.split("/")):
        raise ValidationError(f"an artifact key must not contain slash look-alikes: {key!r:.80}")
    return key


def fold_artifact_key(key: str) -> str:
    """The case-folded form two keys share when they differ only by case (``Report.md`` and
    ``report.md``)."""
    return key.casefold()


def validate_scope(scope: object) -> str:
    """Return the canonical (NFC) form of an artifact scope (a thread id, a session, a user), or
    raise ValidationError: 1 to 128 UTF-8 bytes without control characters."""
    if not isinstance(scope, str):
        raise ValidationError(f"an artifact scope must be a str, got {type(scope).__name__}")
    if any(bad_char(ch) for ch in scope):
        raise ValidationError("an artifact scope must not contain control characters or lone surrogates")
    scope = unicodedata.normalize("NFC", scope)
    if not scope:
        raise ValidationError("an artifact scope must not be empty")
    if len(scope.encode("utf-8")) > MAX_SCOPE_BYTES:
        raise ValidationError(f"an artifact scope is at most {MAX_SCOPE_BYTES} UTF-8 bytes")
    return scope


def validate_prefix(prefix: object) -> str:
    """The NFC form of a key prefix (``keys(scope, prefix)``), or ValidationError."""
    if not isinstance(prefix, str) or any(bad_char(ch) for ch in prefix):
        raise ValidationError("a key prefix must be a str without control characters")
    return unicodedata.normalize("NFC", prefix)


def series_of(scope: str, key: str, *, case_sensitive: bool = False) -> str:
    """The key prefix every version of ``key`` in ``scope`` is filed under (case-folded, unless
    ``case_sensitive``)."""
    series = f"{scope}{SEP}{key if case_sensitive else fold_artifact_key(key)}"
    if len(series.encode("utf-8")) + 1 + _DIGITS > 512:
        raise ValidationError("artifact scope and key are too long together (512 bytes once case-folded)")
    return series


def record_key(series: str, version: int) -> str:
    return f"{series}{SEP}{version:0{_DIGITS}d}"


def check_version(version: object) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValidationError(f"an artifact version is a non-negative integer, got {version!r}")


def check_data(data: object) -> bytes | None:
    """``data`` as bytes when it is a bytes-like value, None when it is a stream; str is refused."""
    if isinstance(data, str):
        raise ValidationError("artifact data is bytes or an iterable of bytes, not str: encode it first")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    return None


def check_chunk(chunk: object) -> bytes:
    """One chunk of a streamed artifact, as bytes (ValidationError for anything else)."""
    if not isinstance(chunk, (bytes, bytearray, memoryview)):
        raise ValidationError(f"an artifact stream yields bytes, got {type(chunk).__name__}")
    return bytes(chunk)


def decode_record(ser: Serializer, data: bytes, key: str) -> Record:
    """The artifact record stored under ``key``: bound to it, and naming it by its own scope, key
    and version, filed case-folded or (``case_sensitive_keys``) as it is; CorruptionError for a
    record copied or moved there from another key."""
    rec: Record = ser.loads(data, Record, at=(ARTIFACT_NS, key))
    if rec.format != RECORD_FORMAT:
        raise CorruptionError(f"artifact record format {rec.format} is not supported")
    try:
        own = record_key(series_of(rec.scope, rec.key), rec.version)
        exact = record_key(series_of(rec.scope, rec.key, case_sensitive=True), rec.version)
    except (ValidationError, TypeError, ValueError) as exc:
        raise CorruptionError(f"the artifact record at {key!r:.200} names no valid place: {exc}") from exc
    if key not in (own, exact):
        raise CorruptionError(
            f"the artifact record at {key!r:.200} belongs at {own!r:.200}: it was copied or moved "
            "from another key"
        )
    return rec


def version_of(rec: Record) -> ArtifactVersion:
    """The public view of a stored record (CorruptionError if the record breaks its rules)."""
    try:
        return ArtifactVersion(
            rec.scope,
            rec.key,
            rec.version,
            rec.digest,
            rec.size,
            rec.media_type,
            rec.created_at,
            rec.metadata,
            rec.artifact_type,
            rec.quarantined,
            rec.quarantine_reason,
        )
    except ValidationError as exc:
        raise CorruptionError(f"artifact record {rec.key!r} v{rec.version} is invalid: {exc}") from None


def check_same_key(latest: Record | None, key: str, scope: str) -> None:
    """Refuse ``key`` when the series already holds a key differing from it only by case."""
    if latest is not None and latest.key != key:
        raise ValidationError(
            f"artifact key {key!r} differs only by case from the existing {latest.key!r} in scope "
            f"{scope!r}; keys must stay distinct on case-insensitive file systems"
        )


def not_found(scope: str, key: str, version: int | None) -> NotFoundError:
    which = "any version" if version is None else f"version {version}"
    return NotFoundError(f"artifact {key!r} has no {which} in scope {scope!r}")


def typed_content(artifact: TypedArtifact) -> bytes:
    """The stored form of a typed artifact: ``{"type": ..., "body": ...}`` as sorted JSON."""
    return msgspec.json.encode({"type": artifact.type, "body": artifact.body}, order="sorted")


def typed_of(rec: Record, raw: bytes) -> TypedArtifact:
    """Decode the stored envelope of a typed artifact (CorruptionError if it is damaged)."""
    try:
        doc = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise CorruptionError(f"typed artifact {rec.key!r} v{rec.version} is not JSON: {exc}") from None
    if (
        not isinstance(doc, dict)
        or doc.get("type") != rec.artifact_type
        or not isinstance(doc.get("body"), dict)
    ):
        raise CorruptionError(f"typed artifact {rec.key!r} v{rec.version} does not hold its envelope")
    try:
        return TypedArtifact(doc["type"], doc["body"])
    except ValidationError as exc:
        raise CorruptionError(f"typed artifact {rec.key!r} v{rec.version} is damaged: {exc}") from None


def image_body(
    digest: str, size: int, media_type: str, width: int | None, height: int | None, alt: str | None
) -> dict[str, Any]:
    """The body of an ``image@1`` typed artifact naming the blob ``digest``."""
    body: dict[str, Any] = {"blob": digest, "media_type": media_type, "size": size}
    if width is not None:
        body["width"] = width
    if height is not None:
        body["height"] = height
    if alt is not None:
        body["alt"] = alt
    return body
