"""Versioned, content-addressed artifacts over any storage driver.

Layout (namespaces all start with ``artifact``):

* ``artifact``: one immutable record per version, key ``<scope>\\x1f<folded key>\\x1f<version>``
  (version zero-padded to 10 digits, so versions sort numerically). Written create-only: two
  writers that pick the same number collide, and the loser takes the next one. The content lives
  in the driver's blob area under its SHA-256, so the same bytes are stored once however many
  versions, keys or scopes hold them.
* ``artifact.hwm``: per key, the lowest version number not yet used by a deleted version (a
  high-water mark, moved up by compare-and-set before any delete), so that a version number is
  never given to two different contents, even after deletes.

Keys are relative paths: NFC-normalised Unicode, ``/``-separated, no ``.``/``..`` segment, no
absolute path, backslash, NUL or control character. Records of one key are filed under its
case-folded form, so ``Report.md`` and ``report.md`` can never both exist in a scope: the second
is refused with ValidationError.

Write order is bottom-up (blob, then record); garbage collection
(:mod:`runtime_persistence.checkpoint.gc`) keeps every blob an artifact record names, through the root
provider this module registers when imported.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import msgspec
from runtime_core import (
    ArtifactRef,
    ArtifactVersion,
    Clock,
    ConflictError,
    CorruptionError,
    Driver,
    NotFoundError,
    NullTelemetry,
    Serializer,
    SystemClock,
    Telemetry,
    TypedArtifact,
    ValidationError,
    validate_digest,
)

from runtime_persistence.artifact.schemas import BLOB_REF_FIELDS, ArtifactSchemas
from runtime_persistence.storage.blob_roots import register_blob_roots
from runtime_persistence.storage.serialization import EnvelopeSerializer

__all__ = [
    "ARTIFACT_HWM_NS",
    "ARTIFACT_NS",
    "MAX_ARTIFACT_KEY_BYTES",
    "MAX_ARTIFACT_KEY_CHARS",
    "MAX_SCOPE_BYTES",
    "TYPED_MEDIA_TYPE",
    "Artifacts",
    "artifact_blob_roots",
    "fold_artifact_key",
    "validate_artifact_key",
    "validate_scope",
]

ARTIFACT_NS = "artifact"
ARTIFACT_HWM_NS = "artifact.hwm"
TYPED_MEDIA_TYPE = "application/vnd.keepup.artifact+json"
MAX_ARTIFACT_KEY_CHARS = 200
MAX_ARTIFACT_KEY_BYTES = 320
MAX_SEGMENT_BYTES = 255
MAX_SCOPE_BYTES = 128
RECORD_FORMAT = 1
_SEP = "\x1f"
_DIGITS = 10
_MAX_VERSION = 10**_DIGITS - 1
_PAGE = 500
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_MAX_ATTEMPTS = 1000


class _Record(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
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


class _Hwm(msgspec.Struct, frozen=True):
    next: int


def _bad_char(ch: str) -> bool:
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
    if any(_bad_char(ch) for ch in key):
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
    if any(_bad_char(ch) for ch in scope):
        raise ValidationError("an artifact scope must not contain control characters or lone surrogates")
    scope = unicodedata.normalize("NFC", scope)
    if not scope:
        raise ValidationError("an artifact scope must not be empty")
    if len(scope.encode("utf-8")) > MAX_SCOPE_BYTES:
        raise ValidationError(f"an artifact scope is at most {MAX_SCOPE_BYTES} UTF-8 bytes")
    return scope


def _series(scope: str, key: str) -> str:
    series = f"{scope}{_SEP}{fold_artifact_key(key)}"
    if len(series.encode("utf-8")) + 1 + _DIGITS > 512:
        raise ValidationError("artifact scope and key are too long together (512 bytes once case-folded)")
    return series


def _record_key(series: str, version: int) -> str:
    return f"{series}{_SEP}{version:0{_DIGITS}d}"


def _check_version(version: object) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValidationError(f"an artifact version is a non-negative integer, got {version!r}")


def _scan_all(driver: Driver, prefix: str = "") -> Iterator[bytes]:
    """The value of every artifact record under ``prefix``, in key order, a page at a time."""
    after: str | None = None
    while True:
        page = list(driver.scan(ARTIFACT_NS, prefix=prefix, after=after, limit=_PAGE))
        for entry in page:
            yield entry.value
        if len(page) < _PAGE:
            return
        after = page[-1].key


def _check_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise ValidationError(f"an artifact stream yields bytes, got {type(chunk).__name__}")
        yield bytes(chunk)


class Artifacts:
    """Versioned artifacts per scope and key over any driver (implements
    :class:`runtime_core.ArtifactStore`).

    ``schemas`` validates typed artifacts (default: the built-in ``report@1``, ``diff@1``,
    ``test_report@1`` and ``image@1``). Safe to share between threads; any number of processes
    may write the same store."""

    def __init__(
        self,
        driver: Driver,
        *,
        clock: Clock | None = None,
        telemetry: Telemetry | None = None,
        schemas: ArtifactSchemas | None = None,
        serializer: Serializer | None = None,
    ) -> None:
        self._driver = driver
        self._clock: Clock = clock or SystemClock()
        self._telemetry: Telemetry = telemetry or NullTelemetry()
        self._schemas = schemas if schemas is not None else ArtifactSchemas()
        self._ser: Serializer = serializer or EnvelopeSerializer()

    @property
    def driver(self) -> Driver:
        return self._driver

    @property
    def schemas(self) -> ArtifactSchemas:
        return self._schemas

    # ------------------------------------------------------------------------------------ writes
    def put(
        self,
        scope: str,
        key: str,
        data: bytes | Iterable[bytes],
        *,
        media_type: str = "application/octet-stream",
        metadata: dict[str, Any] | None = None,
    ) -> ArtifactVersion:
        """Store ``data`` (bytes, or an iterable of bytes streamed in bounded memory) as the next
        version of ``key`` in ``scope`` and return it. Versions count from 0 and are never reused,
        even after deletes; the record is written create-only after the content, so a crash leaves
        at most an unreferenced blob for gc. Raises ValidationError (before anything is written)
        for a bad scope, key, media type or metadata, or when a key differing only by case exists."""
        return self._put(scope, key, data, media_type, metadata, None, None, ())

    def put_typed(
        self, scope: str, key: str, artifact: TypedArtifact, *, metadata: dict[str, Any] | None = None
    ) -> ArtifactVersion:
        """Store a typed artifact as JSON (``{"type": ..., "body": ...}``, media type
        :data:`TYPED_MEDIA_TYPE`) after validating its body against the schema registered for its
        type. An invalid one (no schema, a schema violation, a referenced blob that is missing) is
        stored anyway with ``quarantined`` set and the reason, listed by :meth:`quarantined`:
        never dropped."""
        if not isinstance(artifact, TypedArtifact):
            raise ValidationError(f"put_typed stores a TypedArtifact, got {type(artifact).__name__}")
        reasons = self._schemas.errors(artifact.type, artifact.body)
        refs: list[str] = []
        for name in BLOB_REF_FIELDS.get(artifact.type, ()):
            value = artifact.body.get(name)
            if isinstance(value, str):
                try:
                    digest = validate_digest(value)
                except ValidationError:
                    continue  # the schema check has already said why
                refs.append(digest)
                if not self._driver.has_blob(digest):
                    reasons.append(f"at /{name}: blob {digest} is not in the store")
        content = msgspec.json.encode({"type": artifact.type, "body": artifact.body}, order="sorted")
        reason = "; ".join(reasons)[:2000] if reasons else None
        return self._put(scope, key, content, TYPED_MEDIA_TYPE, metadata, artifact.type, reason, tuple(refs))

    def put_image(
        self,
        scope: str,
        key: str,
        data: bytes | Iterable[bytes],
        *,
        media_type: str,
        width: int | None = None,
        height: int | None = None,
        alt: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> ArtifactVersion:
        """Store image bytes in the blob area and an ``image@1`` typed artifact naming them."""
        blob = (
            self._driver.put_blob(bytes(data))
            if isinstance(data, (bytes, bytearray, memoryview))
            else self._driver.put_blob_stream(_check_chunks(data))
        )
        body: dict[str, Any] = {"blob": blob.digest, "media_type": media_type, "size": blob.size}
        if width is not None:
            body["width"] = width
        if height is not None:
            body["height"] = height
        if alt is not None:
            body["alt"] = alt
        return self.put_typed(scope, key, TypedArtifact("image@1", body), metadata=metadata)

    def _put(
        self,
        scope: str,
        key: str,
        data: bytes | Iterable[bytes],
        media_type: str,
        metadata: dict[str, Any] | None,
        artifact_type: str | None,
        reason: str | None,
        refs: tuple[str, ...],
    ) -> ArtifactVersion:
        scope = validate_scope(scope)
        key = validate_artifact_key(key)
        series = _series(scope, key)
        meta = {} if metadata is None else metadata
        now = self._clock.now()
        # every check that can refuse the input runs before the first byte is written
        ArtifactVersion(
            scope, key, 0, "0" * 64, 0, media_type, now, meta, artifact_type, reason is not None, reason
        )
        raw: object = data
        if isinstance(raw, str):
            raise ValidationError("artifact data is bytes or an iterable of bytes, not str: encode it first")
        latest = self._latest(series)
        self._check_same_key(latest, key, scope)
        with self._telemetry.span("artifact.put", scope=scope, key=key) as fields:
            if isinstance(data, (bytes, bytearray, memoryview)):
                blob = self._driver.put_blob(bytes(data))
            else:
                blob = self._driver.put_blob_stream(_check_chunks(data))
            version = max(latest.version + 1 if latest else 0, self._hwm(series))
            for _ in range(_MAX_ATTEMPTS):
                if version > _MAX_VERSION:
                    raise ValidationError(
                        f"artifact {key!r} has used every version number up to {_MAX_VERSION}"
                    )
                rec = _Record(
                    RECORD_FORMAT,
                    scope,
                    key,
                    version,
                    blob.digest,
                    blob.size,
                    media_type,
                    now,
                    dict(meta),
                    artifact_type,
                    reason is not None,
                    reason,
                    refs,
                )
                try:
                    self._driver.put(
                        ARTIFACT_NS, _record_key(series, version), self._ser.dumps(rec), if_absent=True
                    )
                except ConflictError:
                    latest = self._latest(series)
                    self._check_same_key(latest, key, scope)
                    version = max(version + 1, latest.version + 1 if latest else 0)
                    continue
                self._check_neighbours(series, rec)
                result = self._version(rec)
                fields.update(
                    version=version, size=blob.size, digest=blob.digest, quarantined=rec.quarantined
                )
                return result
            raise ConflictError(f"could not find a free version of {key!r} after {_MAX_ATTEMPTS} attempts")

    def _check_same_key(self, latest: _Record | None, key: str, scope: str) -> None:
        if latest is not None and latest.key != key:
            raise ValidationError(
                f"artifact key {key!r} differs only by case from the existing {latest.key!r} in scope "
                f"{scope!r}; keys must stay distinct on case-insensitive file systems"
            )

    def _check_neighbours(self, series: str, rec: _Record) -> None:
        """A writer that read the series before another writer's delete-and-recreate could have
        slipped a differently-cased key next to it; if so, take our record back and refuse."""
        own = _record_key(series, rec.version)
        prefix = series + _SEP
        around = [
            *self._driver.scan(ARTIFACT_NS, prefix=prefix, before=own, reverse=True, limit=1),
            *self._driver.scan(ARTIFACT_NS, prefix=prefix, after=own, limit=1),
        ]
        for entry in around:
            other = self._decode(entry.value)
            if other.key != rec.key:
                self._driver.delete(ARTIFACT_NS, own)
                self._check_same_key(other, rec.key, rec.scope)

    # ------------------------------------------------------------------------------------- reads
    def get(self, scope: str, key: str, version: int | None = None) -> tuple[ArtifactVersion, bytes]:
        """The latest (or a given) version and its bytes, verified against the digest
        (CorruptionError if damaged). NotFoundError if there is no such version."""
        rec = self._find(scope, key, version)
        return self._version(rec), self._driver.get_blob(rec.digest)

    def open(
        self, scope: str, key: str, version: int | None = None
    ) -> tuple[ArtifactVersion, Iterator[bytes]]:
        """The latest (or a given) version and a stream of its bytes in bounded memory; the stream
        raises CorruptionError at its end if the bytes fail their digest."""
        rec = self._find(scope, key, version)
        return self._version(rec), self._driver.open_blob(rec.digest)

    def info(self, scope: str, key: str, version: int | None = None) -> ArtifactVersion:
        """The latest (or a given) version's record, without its bytes."""
        return self._version(self._find(scope, key, version))

    def get_typed(
        self, scope: str, key: str, version: int | None = None
    ) -> tuple[ArtifactVersion, TypedArtifact]:
        """A typed artifact and its decoded envelope (quarantined ones too: check ``quarantined``).
        ValidationError if the version is not a typed artifact."""
        rec = self._find(scope, key, version)
        if rec.artifact_type is None:
            raise ValidationError(f"artifact {rec.key!r} version {rec.version} is not a typed artifact")
        raw = self._driver.get_blob(rec.digest)
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
            return self._version(rec), TypedArtifact(doc["type"], doc["body"])
        except ValidationError as exc:
            raise CorruptionError(f"typed artifact {rec.key!r} v{rec.version} is damaged: {exc}") from None

    def resolve(self, ref: ArtifactRef) -> ArtifactVersion:
        """The version an :class:`ArtifactRef` (as a checkpoint records it) points to."""
        return self.info(ref.scope, ref.key, ref.version)

    def keys(self, scope: str, prefix: str = "") -> list[str]:
        """The keys with at least one version in ``scope`` that start with ``prefix``, sorted.
        Costs one short scan per key, however many versions each has."""
        scope = validate_scope(scope)
        if not isinstance(prefix, str) or any(_bad_char(ch) for ch in prefix):
            raise ValidationError("a key prefix must be a str without control characters")
        prefix = unicodedata.normalize("NFC", prefix)
        start = f"{scope}{_SEP}{fold_artifact_key(prefix)}"
        found: list[str] = []
        after: str | None = None
        while True:
            page = list(self._driver.scan(ARTIFACT_NS, prefix=start, after=after, limit=1))
            if not page:
                break
            series = page[0].key.rsplit(_SEP, 1)[0]
            latest = self._latest(series)
            if latest is not None and latest.key.startswith(prefix):
                found.append(latest.key)
            after = series + _SEP + ":"  # ':' sorts after every digit: skip the rest of this key
        return sorted(found)

    def versions(self, scope: str, key: str) -> list[ArtifactVersion]:
        """Every live version of ``key``, oldest first (empty when there is none)."""
        scope = validate_scope(scope)
        key = validate_artifact_key(key)
        return [self._version(rec) for rec in self._series_records(_series(scope, key)) if rec.key == key]

    def quarantined(self, scope: str) -> list[ArtifactVersion]:
        """Every quarantined typed artifact in ``scope`` with its reason, in key order."""
        scope = validate_scope(scope)
        return [self._version(rec) for rec in self._records(f"{scope}{_SEP}") if rec.quarantined]

    # ----------------------------------------------------------------------------------- deletes
    def delete(self, scope: str, key: str, version: int | None = None) -> int:
        """Delete one version, or every version when ``version`` is None; return how many went.
        Version numbers are never reused afterwards. The content's blob is freed by gc once no
        other version, key or scope names the same bytes."""
        scope = validate_scope(scope)
        key = validate_artifact_key(key)
        series = _series(scope, key)
        if version is not None:
            _check_version(version)
            entry = self._driver.get(ARTIFACT_NS, _record_key(series, version))
            if entry is None or self._decode(entry.value).key != key:
                return 0
            self._raise_hwm(series, version + 1)
            return 1 if self._driver.delete(ARTIFACT_NS, _record_key(series, version)) else 0
        records = [rec for rec in self._series_records(series) if rec.key == key]
        if not records:
            return 0
        self._raise_hwm(series, records[-1].version + 1)
        return sum(1 for rec in records if self._driver.delete(ARTIFACT_NS, _record_key(series, rec.version)))

    # --------------------------------------------------------------------------------- internals
    def _decode(self, data: bytes) -> _Record:
        rec: _Record = self._ser.loads(data, _Record)
        if rec.format != RECORD_FORMAT:
            raise CorruptionError(f"artifact record format {rec.format} is not supported")
        return rec

    def _version(self, rec: _Record) -> ArtifactVersion:
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

    def _latest(self, series: str) -> _Record | None:
        for entry in self._driver.scan(ARTIFACT_NS, prefix=series + _SEP, reverse=True, limit=1):
            return self._decode(entry.value)
        return None

    def _find(self, scope: str, key: str, version: int | None) -> _Record:
        scope = validate_scope(scope)
        key = validate_artifact_key(key)
        series = _series(scope, key)
        if version is None:
            rec = self._latest(series)
        else:
            _check_version(version)
            entry = self._driver.get(ARTIFACT_NS, _record_key(series, version))
            rec = self._decode(entry.value) if entry is not None else None
        if rec is None or rec.key != key:
            which = "any version" if version is None else f"version {version}"
            raise NotFoundError(f"artifact {key!r} has no {which} in scope {scope!r}")
        return rec

    def _records(self, prefix: str) -> Iterator[_Record]:
        for value in _scan_all(self._driver, prefix):
            yield self._decode(value)

    def _series_records(self, series: str) -> list[_Record]:
        return list(self._records(series + _SEP))

    def _hwm(self, series: str) -> int:
        entry = self._driver.get(ARTIFACT_HWM_NS, series)
        return 0 if entry is None else self._ser.loads(entry.value, _Hwm).next

    def _raise_hwm(self, series: str, at_least: int) -> None:
        """Move the high-water mark up to ``at_least`` (compare-and-set; never down)."""
        for _ in range(_MAX_ATTEMPTS):
            entry = self._driver.get(ARTIFACT_HWM_NS, series)
            current = 0 if entry is None else self._ser.loads(entry.value, _Hwm).next
            if current >= at_least:
                return
            value = self._ser.dumps(_Hwm(at_least))
            try:
                if entry is None:
                    self._driver.put(ARTIFACT_HWM_NS, series, value, if_absent=True)
                else:
                    self._driver.put(ARTIFACT_HWM_NS, series, value, if_version=entry.version)
                return
            except ConflictError:
                continue
        raise ConflictError("the artifact version mark kept moving; try again")


def artifact_blob_roots(driver: Driver) -> Iterator[str]:
    """Every blob digest an artifact record in ``driver`` needs (its content and the blobs a typed
    artifact names): the root provider garbage collection uses. A damaged record raises
    CorruptionError, which stops the collection rather than deleting what it might need."""
    ser = EnvelopeSerializer()
    for value in _scan_all(driver):
        rec: _Record = ser.loads(value, _Record)
        yield rec.digest
        yield from rec.refs


register_blob_roots("artifacts", artifact_blob_roots)
