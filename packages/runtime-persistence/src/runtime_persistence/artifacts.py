"""The old import path ``runtime_persistence.artifacts``, kept working: the code lives in :mod:`runtime_persistence.artifact.artifacts`."""

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

__all__ = [
    "ARTIFACT_HWM_NS",
    "ARTIFACT_NS",
    "MAX_ARTIFACT_KEY_BYTES",
    "MAX_ARTIFACT_KEY_CHARS",
    "MAX_SCOPE_BYTES",
    "TYPED_MEDIA_TYPE",
    "Artifacts",
    "AsyncArtifacts",
    "artifact_blob_roots",
    "artifact_blob_roots_async",
    "fold_artifact_key",
    "validate_artifact_key",
    "validate_scope",
]
