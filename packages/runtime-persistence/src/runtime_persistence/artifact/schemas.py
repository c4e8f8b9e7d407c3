"""JSON Schemas for typed artifacts, registered per ``type@version``.

A typed artifact (:class:`runtime_core.TypedArtifact`) names its type and schema version, like
``report@1``; the registry validates its body with the schema registered under that exact name
(JSON Schema 2020-12, through the ``jsonschema`` library). A registered schema never changes:
registering a different schema under a name already taken raises ValidationError, so bodies
validated yesterday mean the same thing today. A new shape gets a new version (``report@2``).

Built-in types: ``report@1``, ``diff@1``, ``test_report@1`` and ``image@1`` (metadata and a
reference to the image bytes in the blob area).
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

from runtime_core import NotFoundError, ValidationError

__all__ = ["BUILTIN_SCHEMAS", "ArtifactSchemas", "check_type_name"]

_TYPE_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}@[0-9]{1,6}$")
_DIGEST = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_MAX_ERRORS = 5

BUILTIN_SCHEMAS: dict[str, dict[str, Any]] = {
    "report@1": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "A report a run produced (markdown, plain text or HTML)",
        "type": "object",
        "required": ["title", "body"],
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": 500},
            "body": {"type": "string"},
            "format": {"enum": ["markdown", "text", "html"]},
            "summary": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    },
    "diff@1": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "A set of file changes, each with an optional unified diff",
        "type": "object",
        "required": ["files"],
        "properties": {
            "base": {"type": "string"},
            "target": {"type": "string"},
            "files": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["path", "status"],
                    "properties": {
                        "path": {"type": "string", "minLength": 1},
                        "status": {"enum": ["added", "modified", "deleted", "renamed", "type_changed"]},
                        "old_path": {"type": ["string", "null"]},
                        "patch": {"type": ["string", "null"]},
                    },
                },
            },
        },
    },
    "test_report@1": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "The outcome of a test run",
        "type": "object",
        "required": ["summary"],
        "properties": {
            "framework": {"type": "string"},
            "command": {"type": "string"},
            "duration_s": {"type": "number", "minimum": 0},
            "summary": {
                "type": "object",
                "required": ["total", "passed", "failed"],
                "properties": {
                    name: {"type": "integer", "minimum": 0}
                    for name in ("total", "passed", "failed", "skipped", "errors")
                },
            },
            "cases": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "status"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "status": {"enum": ["passed", "failed", "skipped", "error"]},
                        "duration_s": {"type": "number", "minimum": 0},
                        "message": {"type": "string"},
                    },
                },
            },
        },
    },
    "image@1": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "An image: its metadata and the digest of its bytes in the blob area",
        "type": "object",
        "required": ["blob", "media_type"],
        "properties": {
            "blob": _DIGEST,
            "media_type": {"type": "string", "pattern": "^image/[A-Za-z0-9.+-]+$"},
            "size": {"type": "integer", "minimum": 0},
            "width": {"type": "integer", "minimum": 1},
            "height": {"type": "integer", "minimum": 1},
            "alt": {"type": "string"},
            "source": {"type": "string"},
        },
    },
}
"""The schemas every :class:`ArtifactSchemas` starts with (unless ``builtins=False``)."""

BLOB_REF_FIELDS: dict[str, tuple[str, ...]] = {"image@1": ("blob",)}
"""For each type, the body fields that hold digests of blobs the artifact needs (kept by gc)."""


def check_type_name(type_name: object) -> str:
    """Return ``type_name`` if it looks like ``name@version`` (lowercase name, decimal version);
    raise ValidationError otherwise."""
    if not isinstance(type_name, str) or not _TYPE_RE.match(type_name):
        raise ValidationError(
            "an artifact type is 'name@version' (name: a-z 0-9 _ . - starting with a letter; "
            f"version: digits), got {type_name!r:.80}"
        )
    return type_name


def _canonical(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


class ArtifactSchemas:
    """A registry of JSON Schemas by ``type@version``. Thread-safe."""

    def __init__(self, *, builtins: bool = True) -> None:
        self._lock = threading.Lock()
        self._schemas: dict[str, dict[str, Any]] = {}
        self._validators: dict[str, Validator] = {}
        if builtins:
            # Known valid (a test checks each one with jsonschema): stored without importing
            # jsonschema, which costs a tenth of a second; validators are built on first use.
            self._schemas.update(copy.deepcopy(BUILTIN_SCHEMAS))

    def register(self, type_name: str, schema: Mapping[str, Any]) -> None:
        """Register ``schema`` for ``type_name``. Registering the same schema again does nothing;
        a different schema under a taken name, or an invalid schema, raises ValidationError."""
        check_type_name(type_name)
        if not isinstance(schema, Mapping):
            raise ValidationError(f"a schema is a JSON object (a mapping), got {type(schema).__name__}")
        try:
            text = _canonical(schema)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"schema for {type_name} is not plain JSON: {exc}") from None
        # imported here: jsonschema costs a tenth of a second, and most processes never register
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise ValidationError(
                f"schema for {type_name} is not a valid JSON Schema: {exc.message}"
            ) from None
        with self._lock:
            existing = self._schemas.get(type_name)
            if existing is not None:
                if _canonical(existing) != text:
                    raise ValidationError(
                        f"{type_name} already has a different schema; a registered schema never changes, "
                        "register the new shape as a new version"
                    )
                return
            self._schemas[type_name] = copy.deepcopy(dict(schema))

    def _validator(self, type_name: str) -> Validator | None:
        with self._lock:
            validator = self._validators.get(type_name)
            schema = self._schemas.get(type_name)
            if validator is not None or schema is None:
                return validator
            from jsonschema import Draft202012Validator, FormatChecker

            validator = Draft202012Validator(schema, format_checker=FormatChecker())
            self._validators[type_name] = validator
            return validator

    def types(self) -> list[str]:
        """Every registered type name, sorted."""
        with self._lock:
            return sorted(self._schemas)

    def schema(self, type_name: str) -> dict[str, Any]:
        """A copy of the schema registered for ``type_name``; NotFoundError if there is none."""
        with self._lock:
            found = self._schemas.get(type_name)
        if found is None:
            raise NotFoundError(f"no schema is registered for artifact type {type_name!r:.80}")
        return copy.deepcopy(found)

    def __contains__(self, type_name: object) -> bool:
        with self._lock:
            return type_name in self._schemas

    def errors(self, type_name: str, body: Any) -> list[str]:
        """Why ``body`` is not a valid ``type_name`` (at most a few reasons, each naming the JSON
        path); an empty list when it is valid. An unregistered type is one reason."""
        validator = self._validator(type_name)
        if validator is None:
            return [f"no schema is registered for artifact type {type_name!r:.80}"]
        found = sorted(validator.iter_errors(body), key=lambda e: [str(p) for p in e.absolute_path])
        reasons = []
        for error in found[:_MAX_ERRORS]:
            where = "/" + "/".join(str(p) for p in error.absolute_path)
            reasons.append(f"at {where}: {error.message[:300]}")
        if len(found) > _MAX_ERRORS:
            reasons.append(f"and {len(found) - _MAX_ERRORS} more")
        return reasons
