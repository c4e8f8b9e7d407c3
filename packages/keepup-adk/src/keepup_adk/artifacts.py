"""Google ADK's ``BaseArtifactService`` over Keepup's versioned artifacts.

Each ADK scope (an app, a user, and a session unless the filename starts with ``user:``) is one
Keepup artifact scope, and each filename one Keepup key, with ADK's own rules switched on: keys
are case-sensitive (``Report.md`` next to ``report.md``) and a file saved again after
``delete_artifact`` is numbered from 0, as in ADK's ``InMemoryArtifactService``. Versions are
written create-only, so concurrent savers in any number of processes each get their own number.

A part's payload is the Keepup content (inline bytes as they are, text as UTF-8, anything else as
the part's JSON), so identical payloads are stored once; the rest of the part, the custom
metadata and the MIME type are kept beside it as JSON text.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, cast

from google.adk.artifacts import artifact_util
from google.adk.artifacts.base_artifact_service import ArtifactVersion, BaseArtifactService, ensure_part
from google.adk.errors.input_validation_error import InputValidationError
from google.genai import types
from runtime_core import AsyncDriver, NotFoundError, Serializer, ValidationError
from runtime_persistence import AsyncArtifacts

from keepup_adk._store import StoreHandle

__all__ = ["KeepupArtifactService"]

_META = "adk"
_PART_MEDIA_TYPE = "application/vnd.google.adk.part+json"


def _scope(app_name: str, user_id: str, session_id: str | None) -> str:
    """The Keepup scope of an ADK scope: a digest, because ADK's ids may hold '/' and be long."""
    raw = json.dumps([app_name, user_id, session_id], ensure_ascii=False)
    return "adk-" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:48]


def _user_file(filename: str) -> bool:
    return filename.startswith("user:")


class KeepupArtifactService(BaseArtifactService):
    """ADK artifacts in a Keepup store. ``store`` is a store URL (opened on first use, on the
    running event loop; :meth:`close` closes it) or an async driver you opened and close.

    Behaves like ADK's ``InMemoryArtifactService``, and also survives restarts and is shared by
    every process on the store. A filename Keepup cannot key (a backslash, ``..`` segments, a
    drive letter, over 200 characters) raises ``InputValidationError``. ``serializer``: on an
    encrypted store, the runtime's (the one with its keyring)."""

    def __init__(self, store: str | AsyncDriver, *, serializer: Serializer | None = None) -> None:
        self._store = StoreHandle(store)
        self._ser = serializer

    async def close(self) -> None:
        await self._store.close()

    async def _artifacts(self) -> AsyncArtifacts:
        return AsyncArtifacts(
            await self._store.driver(),
            case_sensitive_keys=True,
            restart_versions_after_delete=True,
            serializer=self._ser,
        )

    def _place(self, app_name: str, user_id: str, filename: str, session_id: str | None) -> str:
        artifact_util.validate_path_segment(app_name, "app_name")
        artifact_util.validate_path_segment(user_id, "user_id")
        if _user_file(filename):
            return _scope(app_name, user_id, None)
        if session_id is None:
            raise InputValidationError("Session ID must be provided for session-scoped artifacts.")
        artifact_util.validate_path_segment(session_id, "session_id")
        return _scope(app_name, user_id, session_id)

    def _uri(self, app_name: str, user_id: str, filename: str, session_id: str | None, version: int) -> str:
        if _user_file(filename):
            return f"keepup://apps/{app_name}/users/{user_id}/artifacts/{filename}/versions/{version}"
        return (
            f"keepup://apps/{app_name}/users/{user_id}/sessions/{session_id}/artifacts/{filename}"
            f"/versions/{version}"
        )

    async def save_artifact(
        self,
        *,
        app_name: str,
        user_id: str,
        filename: str,
        artifact: types.Part | dict[str, Any],
        session_id: str | None = None,
        custom_metadata: dict[str, Any] | None = None,
    ) -> int:
        if not _user_file(filename):
            if session_id is None:
                raise InputValidationError("Session ID must be provided for session-scoped artifacts.")
            artifact_util._validate_session_id_for_flat_storage(session_id)
        part = ensure_part(artifact).model_copy(deep=True)
        scope = self._place(app_name, user_id, filename, session_id)
        mime_type = self._mime_type(part, app_name, user_id, session_id)
        shell = part.model_copy(deep=True)
        if part.inline_data is not None:
            kind, content, media_type = "inline", part.inline_data.data or b"", mime_type
            assert shell.inline_data is not None
            shell.inline_data.data = None
        elif part.text is not None:
            kind, content, media_type = "text", part.text.encode("utf-8"), "text/plain; charset=utf-8"
            shell.text = None
        else:
            kind, content, media_type = (
                "part",
                part.model_dump_json(exclude_none=True).encode(),
                _PART_MEDIA_TYPE,
            )
        extra = {
            "kind": kind,
            "part": shell.model_dump(mode="json", exclude_none=True),
            "mime_type": mime_type,
            "custom_metadata": copy.deepcopy(custom_metadata) if custom_metadata else {},
        }
        arts = await self._artifacts()
        try:
            saved = await arts.put(
                scope,
                filename,
                content,
                media_type=media_type or "application/octet-stream",
                metadata={_META: json.dumps(extra, ensure_ascii=False)},
            )
        except ValidationError as exc:
            raise InputValidationError(f"artifact {filename!r} cannot be stored: {exc}") from exc
        return saved.version

    def _mime_type(self, part: types.Part, app_name: str, user_id: str, session_id: str | None) -> str | None:
        if part.inline_data is not None:
            return part.inline_data.mime_type
        if part.text is not None:
            return "text/plain"
        file_data = part.file_data
        if file_data is not None:
            if artifact_util.is_artifact_ref(part):
                parsed = artifact_util.parse_artifact_uri(cast(str, file_data.file_uri))
                if not parsed:
                    raise InputValidationError(f"Invalid artifact reference URI: {file_data.file_uri}")
                artifact_util.validate_artifact_reference_scope(
                    app_name=app_name, user_id=user_id, session_id=session_id, parsed_uri=parsed
                )
                return None
            return file_data.mime_type
        raise InputValidationError("Not supported artifact type.")

    async def load_artifact(
        self,
        *,
        app_name: str,
        user_id: str,
        filename: str,
        session_id: str | None = None,
        version: int | None = None,
    ) -> types.Part | None:
        return await self._load(
            app_name, user_id, filename, session_id, version, artifact_util._MAX_ARTIFACT_REFERENCE_DEPTH
        )

    async def _load(
        self,
        app_name: str,
        user_id: str,
        filename: str,
        session_id: str | None,
        version: int | None,
        remaining_depth: int,
    ) -> types.Part | None:
        scope = self._place(app_name, user_id, filename, session_id)
        if version is not None and version < 0:
            return None
        arts = await self._artifacts()
        try:
            info, content = await arts.get(scope, filename, version)
        except (NotFoundError, ValidationError):
            return None
        extra = json.loads(info.metadata[_META])
        part = self._part(extra, content)
        if artifact_util.is_artifact_ref(part):
            assert part.file_data is not None
            target = artifact_util.resolve_artifact_reference(
                file_uri=cast(str, part.file_data.file_uri),
                app_name=app_name,
                user_id=user_id,
                session_id=session_id,
                remaining_depth=remaining_depth,
            )
            return await self._load(
                target.app_name,
                target.user_id,
                target.filename,
                target.session_id,
                target.version,
                remaining_depth - 1,
            )
        if part == types.Part() or artifact_util._is_rewind_tombstone(part):
            return None
        return part

    @staticmethod
    def _part(extra: dict[str, Any], content: bytes) -> types.Part:
        kind = extra["kind"]
        if kind == "part":
            return types.Part.model_validate_json(content)
        part = types.Part.model_validate(extra["part"])
        if kind == "inline":
            blob = part.inline_data or types.Blob()
            blob.data = content
            part.inline_data = blob
        else:
            part.text = content.decode("utf-8")
        return part

    async def list_artifact_keys(
        self, *, app_name: str, user_id: str, session_id: str | None = None
    ) -> list[str]:
        artifact_util.validate_path_segment(app_name, "app_name")
        artifact_util.validate_path_segment(user_id, "user_id")
        arts = await self._artifacts()
        names = list(await arts.keys(_scope(app_name, user_id, None), "user:"))
        if session_id:
            artifact_util.validate_path_segment(session_id, "session_id")
            names += await arts.keys(_scope(app_name, user_id, session_id))
        return sorted(names)

    async def delete_artifact(
        self, *, app_name: str, user_id: str, filename: str, session_id: str | None = None
    ) -> None:
        scope = self._place(app_name, user_id, filename, session_id)
        arts = await self._artifacts()
        try:
            await arts.delete(scope, filename)
        except ValidationError as exc:
            raise InputValidationError(f"artifact {filename!r}: {exc}") from exc

    async def list_versions(
        self, *, app_name: str, user_id: str, filename: str, session_id: str | None = None
    ) -> list[int]:
        return [v.version for v in await self._versions(app_name, user_id, filename, session_id)]

    async def _versions(
        self, app_name: str, user_id: str, filename: str, session_id: str | None
    ) -> list[ArtifactVersion]:
        scope = self._place(app_name, user_id, filename, session_id)
        arts = await self._artifacts()
        try:
            found = await arts.versions(scope, filename)
        except ValidationError:
            return []
        out: list[ArtifactVersion] = []
        for info in found:
            extra = json.loads(info.metadata[_META])
            out.append(
                ArtifactVersion(
                    version=info.version,
                    canonical_uri=self._uri(app_name, user_id, filename, session_id, info.version),
                    custom_metadata=extra["custom_metadata"],
                    create_time=info.created_at.timestamp(),
                    mime_type=extra["mime_type"],
                )
            )
        return out

    async def list_artifact_versions(
        self, *, app_name: str, user_id: str, filename: str, session_id: str | None = None
    ) -> list[ArtifactVersion]:
        return await self._versions(app_name, user_id, filename, session_id)

    async def get_artifact_version(
        self,
        *,
        app_name: str,
        user_id: str,
        filename: str,
        session_id: str | None = None,
        version: int | None = None,
    ) -> ArtifactVersion | None:
        versions = await self._versions(app_name, user_id, filename, session_id)
        if not versions:
            return None
        if version is None:
            return versions[-1]
        return next((v for v in versions if v.version == version), None)
