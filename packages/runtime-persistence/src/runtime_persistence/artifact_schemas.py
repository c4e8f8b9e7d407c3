"""The old import path ``runtime_persistence.artifact_schemas``, kept working: the code lives in :mod:`runtime_persistence.artifact.schemas`."""

from runtime_persistence.artifact.schemas import (
    BUILTIN_SCHEMAS,
    ArtifactSchemas,
    check_type_name,
)

__all__ = [
    "BUILTIN_SCHEMAS",
    "ArtifactSchemas",
    "check_type_name",
]
