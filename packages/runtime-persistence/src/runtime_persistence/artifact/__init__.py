"""Versioned, content-addressed artifacts (reports, images, diffs a run produced) and the
JSON Schemas of typed artifacts. Sits directly above ``storage``.

The repository is written once, as async code (``_async/artifacts.py``, :class:`AsyncArtifacts`);
scripts/gen_sync.py generates :class:`Artifacts` into ``_sync/``. Key and scope rules, record
shapes and other I/O-free parts live in ``_records.py``, schema checks in ``schemas.py``;
``artifacts.py`` re-exports both twins and registers their blob roots for gc."""

from runtime_persistence.artifact.artifacts import (
    ARTIFACT_HWM_NS,
    ARTIFACT_NS,
    MAX_ARTIFACT_KEY_BYTES,
    MAX_ARTIFACT_KEY_CHARS,
    MAX_SCOPE_BYTES,
    TYPED_MEDIA_TYPE,
    Artifacts,
    AsyncArtifacts,
    artifact_blob_roots,
    artifact_blob_roots_async,
    fold_artifact_key,
    validate_artifact_key,
    validate_scope,
)
from runtime_persistence.artifact.schemas import (
    BUILTIN_SCHEMAS,
    ArtifactSchemas,
    check_type_name,
)

__all__ = [
    "ARTIFACT_HWM_NS",
    "ARTIFACT_NS",
    "BUILTIN_SCHEMAS",
    "MAX_ARTIFACT_KEY_BYTES",
    "MAX_ARTIFACT_KEY_CHARS",
    "MAX_SCOPE_BYTES",
    "TYPED_MEDIA_TYPE",
    "ArtifactSchemas",
    "Artifacts",
    "AsyncArtifacts",
    "artifact_blob_roots",
    "artifact_blob_roots_async",
    "check_type_name",
    "fold_artifact_key",
    "validate_artifact_key",
    "validate_scope",
]
