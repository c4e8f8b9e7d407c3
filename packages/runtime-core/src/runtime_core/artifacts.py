"""Versioned, content-addressed artifacts: records and the store interface."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from runtime_core._validation import check_aware, check_metadata, check_name, check_non_negative
from runtime_core.errors import ValidationError
from runtime_core.storage import validate_digest

__all__ = ["ArtifactRef", "ArtifactStore", "ArtifactVersion", "TypedArtifact"]


def _check_artifact_type(value: object) -> None:
    name, sep, version = value.partition("@") if isinstance(value, str) else ("", "", "")
    if not sep or not name or not version or "@" in version:
        raise ValidationError(f"artifact type must look like 'name@version', got {value!r:.80}")
    check_name(value, "artifact type")


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """A pointer to one version of one artifact, as a checkpoint records it."""

    scope: str
    key: str
    version: int

    def __post_init__(self) -> None:
        check_name(self.scope, "artifact scope", allow_empty=False)
        check_name(self.key, "artifact key", allow_empty=False)
        check_non_negative(self.version, "artifact version")


@dataclass(frozen=True, slots=True)
class ArtifactVersion:
    """One immutable version of an artifact. ``version`` counts from 0 per (scope, key).

    ``artifact_type`` is ``name@schema_version`` for typed artifacts; an invalid typed artifact is
    kept with ``quarantined`` set and the reason, never dropped."""

    scope: str
    key: str
    version: int
    digest: str
    size: int
    media_type: str
    created_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)
    artifact_type: str | None = None
    quarantined: bool = False
    quarantine_reason: str | None = None

    def __post_init__(self) -> None:
        check_name(self.scope, "artifact scope", allow_empty=False)
        check_name(self.key, "artifact key", allow_empty=False)
        check_non_negative(self.version, "artifact version")
        validate_digest(self.digest)
        check_non_negative(self.size, "artifact size")
        check_name(self.media_type, "media type", allow_empty=False)
        check_aware(self.created_at, "created_at")
        object.__setattr__(self, "metadata", check_metadata(self.metadata, "artifact metadata"))
        if self.artifact_type is not None:
            _check_artifact_type(self.artifact_type)
        if self.quarantine_reason is not None and not self.quarantined:
            raise ValidationError("only a quarantined artifact version carries a quarantine reason")

    @property
    def ref(self) -> ArtifactRef:
        return ArtifactRef(self.scope, self.key, self.version)


@dataclass(frozen=True, slots=True)
class TypedArtifact:
    """A typed artifact envelope: ``type`` is ``name@schema_version`` and ``body`` plain data that
    the schema registered for that type validates."""

    type: str
    body: dict[str, Any]

    def __post_init__(self) -> None:
        _check_artifact_type(self.type)
        object.__setattr__(self, "body", check_metadata(self.body, "typed artifact body"))


@runtime_checkable
class ArtifactStore(Protocol):
    """Versioned artifacts per scope (a thread, a session, a user) and key (a relative path)."""

    def put(
        self,
        scope: str,
        key: str,
        data: bytes | Iterable[bytes],
        *,
        media_type: str = "application/octet-stream",
        metadata: dict[str, Any] | None = None,
    ) -> ArtifactVersion:
        """Store a new version (create-only: two writers never share a version number)."""
        ...

    def put_typed(
        self, scope: str, key: str, artifact: TypedArtifact, *, metadata: dict[str, Any] | None = None
    ) -> ArtifactVersion:
        """Store a typed artifact; an invalid one is stored quarantined, never dropped."""
        ...

    def get(self, scope: str, key: str, version: int | None = None) -> tuple[ArtifactVersion, bytes]:
        """The latest (or a given) version and its bytes."""
        ...

    def open(
        self, scope: str, key: str, version: int | None = None
    ) -> tuple[ArtifactVersion, Iterator[bytes]]:
        """The latest (or a given) version and a stream of its bytes, in bounded memory."""
        ...

    def info(self, scope: str, key: str, version: int | None = None) -> ArtifactVersion: ...

    def keys(self, scope: str, prefix: str = "") -> list[str]: ...

    def versions(self, scope: str, key: str) -> list[ArtifactVersion]: ...

    def quarantined(self, scope: str) -> list[ArtifactVersion]: ...

    def delete(self, scope: str, key: str, version: int | None = None) -> int:
        """Delete one version, or every version when ``version`` is None; return how many went."""
        ...
