"""Versioned, content-addressed artifacts over any storage driver: :class:`Artifacts` and its
async twin :class:`AsyncArtifacts` keep the same promises. The async class is the source
(``_async/artifacts.py``); the sync one is generated from it (``_sync/artifacts.py``,
scripts/gen_sync.py); the I/O-free rules (keys, scopes, record shapes) live in ``_records.py``.

Importing this module registers the artifacts' blob roots (sync and async forms), so garbage
collection (:mod:`runtime_persistence.checkpoint.gc`) keeps every blob an artifact record names.
"""

from runtime_persistence.artifact._async.artifacts import AsyncArtifacts
from runtime_persistence.artifact._async.artifacts import artifact_roots as artifact_blob_roots_async
from runtime_persistence.artifact._records import (
    ARTIFACT_HWM_NS,
    ARTIFACT_NS,
    MAX_ARTIFACT_KEY_BYTES,
    MAX_ARTIFACT_KEY_CHARS,
    MAX_SCOPE_BYTES,
    TYPED_MEDIA_TYPE,
    fold_artifact_key,
    validate_artifact_key,
    validate_scope,
)
from runtime_persistence.artifact._sync.artifacts import Artifacts
from runtime_persistence.artifact._sync.artifacts import artifact_roots as artifact_blob_roots
from runtime_persistence.storage.blob_roots import register_blob_roots

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

register_blob_roots("artifacts", artifact_blob_roots, artifact_blob_roots_async)
