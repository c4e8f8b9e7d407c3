# Generated from packages/runtime-persistence/src/runtime_persistence/artifact/_async/artifacts.py by scripts/gen_sync.py: edit that file and rerun the script.
"""Versioned, content-addressed artifacts over any storage driver (:class:`Artifacts`).
Written once as async code in ``artifact/_async/``; the sync twin in ``artifact/_sync/`` is
generated from it (scripts/gen_sync.py).

Layout (namespaces all start with ``artifact``):

* ``artifact``: one immutable record per version, key ``<scope>\\x1f<folded key>\\x1f<version>``
  (version zero-padded to 10 digits, so versions sort numerically). Written create-only: two
  writers that pick the same number collide, and the loser takes the next one. The content lives
  in the driver's blob area under its SHA-256, so the same bytes are stored once however many
  versions, keys or scopes hold them.
* ``artifact.hwm``: per key, the lowest version number not yet used by a deleted version (a
  high-water mark, moved up by compare-and-set before any delete), so that a version number is
  never given to two different contents, even after deletes.

Keys are relative paths (rules in :func:`~runtime_persistence.artifact.validate_artifact_key`).
Records of one key are filed under its case-folded form, so ``Report.md`` and ``report.md`` can
never both exist in a scope: the second is refused with ValidationError.

Two options serve frameworks with other rules (Google ADK's artifact services), and every writer
of a scope must use the same ones:

* ``case_sensitive_keys=True`` files each key under itself, so ``Report.md`` and ``report.md``
  are two artifacts. A key stored by a case-insensitive writer and one differing from it only by
  case still refuse each other (ValidationError), never mix.
* ``restart_versions_after_delete=True`` numbers the versions of a key from its newest live
  version, so a key saved again after every version was deleted starts at 0 again (the
  high-water mark is still kept, and ignored). Version numbers may then name different contents
  over time; a reference to a deleted version can resolve to a newer one.

Write order is bottom-up (blob, then record); garbage collection keeps every blob an artifact
record names, through the root provider :mod:`runtime_persistence.artifact.artifacts` registers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from runtime_core import (
    ArtifactRef,
    ArtifactVersion,
    BlobInfo,
    Clock,
    ConflictError,
    Driver,
    Entry,
    NullTelemetry,
    Serializer,
    SystemClock,
    Telemetry,
    TypedArtifact,
    ValidationError,
    validate_digest,
)

from runtime_persistence.artifact._records import (
    ARTIFACT_HWM_NS,
    ARTIFACT_NS,
    MAX_ATTEMPTS,
    MAX_VERSION,
    PAGE,
    RECORD_FORMAT,
    SEP,
    TYPED_MEDIA_TYPE,
    Hwm,
    Record,
    check_chunk,
    check_data,
    check_same_key,
    check_version,
    decode_record,
    fold_artifact_key,
    image_body,
    not_found,
    record_key,
    series_of,
    typed_content,
    typed_of,
    validate_artifact_key,
    validate_prefix,
    validate_scope,
    version_of,
)
from runtime_persistence.artifact.schemas import BLOB_REF_FIELDS, ArtifactSchemas
from runtime_persistence.storage.serialization import EnvelopeSerializer

__all__ = ["Artifacts", "artifact_roots"]


def _scan_all(driver: Driver, prefix: str = "") -> Iterator[Entry]:
    """Every artifact record under ``prefix``, in key order, a page at a time (each page is read
    whole, so no driver cursor stays open while the caller works)."""
    after: str | None = None
    while True:
        page = [entry for entry in driver.scan(ARTIFACT_NS, prefix=prefix, after=after, limit=PAGE)]
        for entry in page:  # noqa: RUF100, UP028 (async generators have no `yield from`)
            yield entry
        if len(page) < PAGE:
            return
        after = page[-1].key


def _checked(chunks: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        yield check_chunk(chunk)


def _store_blob(driver: Driver, data: bytes | Iterable[bytes]) -> BlobInfo:
    raw = check_data(data)
    if raw is not None:
        return driver.put_blob(raw)
    assert not isinstance(data, bytes)
    return driver.put_blob_stream(_checked(data))


class Artifacts:
    """Versioned artifacts per scope and key over any driver. The sync class implements
    :class:`runtime_core.ArtifactStore`; the async one has the same methods, guarantees and errors.

    ``schemas`` validates typed artifacts (default: the built-in ``report@1``, ``diff@1``,
    ``test_report@1`` and ``image@1``). Safe to share between tasks (and, for the sync class,
    threads); any number of processes may write the same store."""

    def __init__(
        self,
        driver: Driver,
        *,
        clock: Clock | None = None,
        telemetry: Telemetry | None = None,
        schemas: ArtifactSchemas | None = None,
        serializer: Serializer | None = None,
        case_sensitive_keys: bool = False,
        restart_versions_after_delete: bool = False,
    ) -> None:
        self._driver = driver
        self._case_sensitive = bool(case_sensitive_keys)
        self._restart_versions = bool(restart_versions_after_delete)
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
        version of ``key`` in ``scope`` and return it. Versions count from 0 and are never reused (unless restart_versions_after_delete),
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
        reason = "; ".join(reasons)[:2000] if reasons else None
        content = typed_content(artifact)
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
        blob = _store_blob(self._driver, data)
        body = image_body(blob.digest, blob.size, media_type, width, height, alt)
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
        series = self._series(scope, key)
        meta = {} if metadata is None else metadata
        now = self._clock.now()
        # every check that can refuse the input runs before the first byte is written
        ArtifactVersion(
            scope, key, 0, "0" * 64, 0, media_type, now, meta, artifact_type, reason is not None, reason
        )
        check_data(data)
        latest = self._latest(series)
        check_same_key(latest, key, scope)
        with self._telemetry.span("artifact.put", scope=scope, key=key) as fields:
            blob = _store_blob(self._driver, data)
            version = latest.version + 1 if latest else 0
            if not self._restart_versions:
                version = max(version, self._hwm(series))
            for _ in range(MAX_ATTEMPTS):
                if version > MAX_VERSION:
                    raise ValidationError(
                        f"artifact {key!r} has used every version number up to {MAX_VERSION}"
                    )
                rec = Record(
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
                        ARTIFACT_NS,
                        record_key(series, version),
                        self._ser.dumps(rec, at=(ARTIFACT_NS, record_key(series, version))),
                        if_absent=True,
                    )
                except ConflictError:
                    latest = self._latest(series)
                    check_same_key(latest, key, scope)
                    version = max(version + 1, latest.version + 1 if latest else 0)
                    continue
                self._check_neighbours(series, rec)
                result = version_of(rec)
                fields.update(
                    version=version, size=blob.size, digest=blob.digest, quarantined=rec.quarantined
                )
                return result
            raise ConflictError(f"could not find a free version of {key!r} after {MAX_ATTEMPTS} attempts")

    def _check_neighbours(self, series: str, rec: Record) -> None:
        """A writer that read the series before another writer's delete-and-recreate could have
        slipped a differently-cased key next to it; if so, take our record back and refuse."""
        own = record_key(series, rec.version)
        prefix = series + SEP
        around = [
            *[e for e in self._driver.scan(ARTIFACT_NS, prefix=prefix, before=own, reverse=True, limit=1)],
            *[e for e in self._driver.scan(ARTIFACT_NS, prefix=prefix, after=own, limit=1)],
        ]
        for entry in around:
            other = decode_record(self._ser, entry.value, entry.key)
            if other.key != rec.key:
                self._driver.delete(ARTIFACT_NS, own)
                check_same_key(other, rec.key, rec.scope)

    # ------------------------------------------------------------------------------------- reads
    def get(self, scope: str, key: str, version: int | None = None) -> tuple[ArtifactVersion, bytes]:
        """The latest (or a given) version and its bytes, verified against the digest
        (CorruptionError if damaged). NotFoundError if there is no such version."""
        rec = self._find(scope, key, version)
        return version_of(rec), self._driver.get_blob(rec.digest)

    def open(
        self, scope: str, key: str, version: int | None = None
    ) -> tuple[ArtifactVersion, Iterator[bytes]]:
        """The latest (or a given) version and a stream of its bytes in bounded memory; the stream
        raises CorruptionError at its end if the bytes fail their digest."""
        rec = self._find(scope, key, version)
        return version_of(rec), self._driver.open_blob(rec.digest)

    def info(self, scope: str, key: str, version: int | None = None) -> ArtifactVersion:
        """The latest (or a given) version's record, without its bytes."""
        return version_of(self._find(scope, key, version))

    def get_typed(
        self, scope: str, key: str, version: int | None = None
    ) -> tuple[ArtifactVersion, TypedArtifact]:
        """A typed artifact and its decoded envelope (quarantined ones too: check ``quarantined``).
        ValidationError if the version is not a typed artifact."""
        rec = self._find(scope, key, version)
        if rec.artifact_type is None:
            raise ValidationError(f"artifact {rec.key!r} version {rec.version} is not a typed artifact")
        typed = typed_of(rec, self._driver.get_blob(rec.digest))
        return version_of(rec), typed

    def resolve(self, ref: ArtifactRef) -> ArtifactVersion:
        """The version an :class:`ArtifactRef` (as a checkpoint records it) points to."""
        return self.info(ref.scope, ref.key, ref.version)

    def keys(self, scope: str, prefix: str = "") -> list[str]:
        """The keys with at least one version in ``scope`` that start with ``prefix``, sorted.
        Costs one short scan per key, however many versions each has."""
        scope = validate_scope(scope)
        prefix = validate_prefix(prefix)
        start = f"{scope}{SEP}{prefix if self._case_sensitive else fold_artifact_key(prefix)}"
        found: list[str] = []
        after: str | None = None
        while True:
            page = [e for e in self._driver.scan(ARTIFACT_NS, prefix=start, after=after, limit=1)]
            if not page:
                break
            series = page[0].key.rsplit(SEP, 1)[0]
            latest = self._latest(series)
            if latest is not None and latest.key.startswith(prefix):
                found.append(latest.key)
            after = series + SEP + ":"  # ':' sorts after every digit: skip the rest of this key
        return sorted(found)

    def versions(self, scope: str, key: str) -> list[ArtifactVersion]:
        """Every live version of ``key``, oldest first (empty when there is none)."""
        scope = validate_scope(scope)
        key = validate_artifact_key(key)
        return [version_of(rec) for rec in self._records(self._series(scope, key) + SEP) if rec.key == key]

    def quarantined(self, scope: str) -> list[ArtifactVersion]:
        """Every quarantined typed artifact in ``scope`` with its reason, in key order."""
        scope = validate_scope(scope)
        return [version_of(rec) for rec in self._records(f"{scope}{SEP}") if rec.quarantined]

    # ----------------------------------------------------------------------------------- deletes
    def delete(self, scope: str, key: str, version: int | None = None) -> int:
        """Delete one version, or every version when ``version`` is None; return how many went.
        Version numbers are never reused afterwards. The content's blob is freed by gc once no
        other version, key or scope names the same bytes."""
        scope = validate_scope(scope)
        key = validate_artifact_key(key)
        series = self._series(scope, key)
        if version is not None:
            check_version(version)
            entry = self._driver.get(ARTIFACT_NS, record_key(series, version))
            if entry is None or decode_record(self._ser, entry.value, entry.key).key != key:
                return 0
            self._raise_hwm(series, version + 1)
            return 1 if self._driver.delete(ARTIFACT_NS, record_key(series, version)) else 0
        records = [rec for rec in self._records(series + SEP) if rec.key == key]
        if not records:
            return 0
        self._raise_hwm(series, records[-1].version + 1)
        deleted = 0
        for rec in records:
            deleted += bool(self._driver.delete(ARTIFACT_NS, record_key(series, rec.version)))
        return deleted

    # --------------------------------------------------------------------------------- internals
    def _series(self, scope: str, key: str) -> str:
        return series_of(scope, key, case_sensitive=self._case_sensitive)

    def _latest(self, series: str) -> Record | None:
        entries = [e for e in self._driver.scan(ARTIFACT_NS, prefix=series + SEP, reverse=True, limit=1)]
        return decode_record(self._ser, entries[0].value, entries[0].key) if entries else None

    def _find(self, scope: str, key: str, version: int | None) -> Record:
        scope = validate_scope(scope)
        key = validate_artifact_key(key)
        series = self._series(scope, key)
        if version is None:
            rec = self._latest(series)
        else:
            check_version(version)
            entry = self._driver.get(ARTIFACT_NS, record_key(series, version))
            rec = decode_record(self._ser, entry.value, entry.key) if entry is not None else None
        if rec is None or rec.key != key:
            raise not_found(scope, key, version)
        return rec

    def _records(self, prefix: str) -> Iterator[Record]:
        for entry in _scan_all(self._driver, prefix):
            yield decode_record(self._ser, entry.value, entry.key)

    def _hwm(self, series: str) -> int:
        entry = self._driver.get(ARTIFACT_HWM_NS, series)
        return 0 if entry is None else self._ser.loads(entry.value, Hwm, at=(ARTIFACT_HWM_NS, series)).next

    def _raise_hwm(self, series: str, at_least: int) -> None:
        """Move the high-water mark up to ``at_least`` (compare-and-set; never down)."""
        for _ in range(MAX_ATTEMPTS):
            entry = self._driver.get(ARTIFACT_HWM_NS, series)
            current = (
                0 if entry is None else self._ser.loads(entry.value, Hwm, at=(ARTIFACT_HWM_NS, series)).next
            )
            if current >= at_least:
                return
            value = self._ser.dumps(Hwm(at_least), at=(ARTIFACT_HWM_NS, series))
            try:
                if entry is None:
                    self._driver.put(ARTIFACT_HWM_NS, series, value, if_absent=True)
                else:
                    self._driver.put(ARTIFACT_HWM_NS, series, value, if_version=entry.version)
                return
            except ConflictError:
                continue
        raise ConflictError("the artifact version mark kept moving; try again")


def artifact_roots(driver: Driver, *, serializer: Serializer | None = None) -> Iterator[str]:
    """Every blob digest an artifact record in ``driver`` needs (its content and the blobs a typed
    artifact names): the root provider garbage collection uses (with the collector's
    ``serializer``, so an encrypted store is read with its keyring). A damaged record raises
    CorruptionError, which stops the collection rather than deleting what it might need."""
    ser: Serializer = serializer or EnvelopeSerializer()
    for entry in _scan_all(driver):
        rec: Record = ser.loads(entry.value, Record, at=(ARTIFACT_NS, entry.key))
        yield rec.digest
        for ref in rec.refs:  # noqa: RUF100, UP028 (async generators have no `yield from`)
            yield ref
