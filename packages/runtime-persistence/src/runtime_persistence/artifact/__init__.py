"""Versioned, content-addressed artifacts (reports, images, diffs a run produced) and the
JSON Schemas of typed artifacts. Sits directly above ``storage``.

The repository is written once, as async code (``_async/artifacts.py``, :class:`AsyncArtifacts`);
scripts/gen_sync.py generates :class:`Artifacts` into ``_sync/``. Key and scope rules, record
shapes and other I/O-free parts live in ``_records.py``, schema checks in ``schemas.py``;
``artifacts.py`` re-exports both twins and registers their blob roots for gc."""

# Made lazy by scripts/gen_facade.py: add a re-export to the imports under TYPE_CHECKING,
# then run the script, which rewrites __all__, _SOURCES and __getattr__ from them.

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Where each name is imported from, on first use.
_SOURCES: dict[str, str] = {
    "ARTIFACT_HWM_NS": "runtime_persistence.artifact.artifacts",
    "ARTIFACT_NS": "runtime_persistence.artifact.artifacts",
    "BUILTIN_SCHEMAS": "runtime_persistence.artifact.schemas",
    "MAX_ARTIFACT_KEY_BYTES": "runtime_persistence.artifact.artifacts",
    "MAX_ARTIFACT_KEY_CHARS": "runtime_persistence.artifact.artifacts",
    "MAX_SCOPE_BYTES": "runtime_persistence.artifact.artifacts",
    "TYPED_MEDIA_TYPE": "runtime_persistence.artifact.artifacts",
    "ArtifactSchemas": "runtime_persistence.artifact.schemas",
    "Artifacts": "runtime_persistence.artifact.artifacts",
    "AsyncArtifacts": "runtime_persistence.artifact.artifacts",
    "artifact_blob_roots": "runtime_persistence.artifact.artifacts",
    "artifact_blob_roots_async": "runtime_persistence.artifact.artifacts",
    "check_type_name": "runtime_persistence.artifact.schemas",
    "fold_artifact_key": "runtime_persistence.artifact.artifacts",
    "validate_artifact_key": "runtime_persistence.artifact.artifacts",
    "validate_scope": "runtime_persistence.artifact.artifacts",
}

# Submodules reachable as attributes, as they were when this module imported them.
_SUBMODULES = frozenset({"_async", "_records", "_sync", "artifacts", "schemas"})


if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        source = _SOURCES.get(name)
        if source is not None:
            value = getattr(importlib.import_module(source), name)
            globals()[name] = value  # later lookups skip this function
            return value
        if name in _SUBMODULES:
            return importlib.import_module(f"{__name__}.{name}")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
