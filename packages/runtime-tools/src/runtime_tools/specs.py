"""Tool specifications: a name, a description and a JSON Schema of the parameters, derived from a
Python function's type hints or given explicitly."""

from __future__ import annotations

import enum
import inspect
import math
import re
import time
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

from runtime_core import ToolDescription, ValidationError

__all__ = ["ToolContext", "ToolError", "ToolSpec", "schema_from_function"]

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a tool may learn about the call it is serving.

    A tool function asks for it by declaring a parameter annotated ``ToolContext``; that parameter
    is filled in by the registry and left out of the JSON Schema. ``call_id`` is stable across a
    crash and resume of the same call, so a tool can make its effect idempotent by call id."""

    call_id: str
    tool: str
    deadline: float | None = None  # time.monotonic() value after which the call has timed out

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or None when there is no deadline."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())


class ToolError(Exception):
    """Raised by a tool to fail the call with a message while still returning ``output`` (for
    example a command's captured output when it timed out)."""

    def __init__(self, message: str, *, output: Any = None) -> None:
        super().__init__(message)
        self.output = output


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool: its name, description, JSON Schema of parameters, and the function that runs it.

    ``context_param`` names the function parameter that receives a :class:`ToolContext`, if any.
    ``timeout`` is this tool's default time budget in seconds (None: the registry's default)."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]
    context_param: str | None = None
    timeout: float | None = None
    changes_workspace: bool = False
    _validator: Validator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ValidationError(
                "a tool name is 1-64 characters of letters, digits, '_', '.', '-' starting with a "
                f"letter or '_'; got {self.name!r:.80}"
            )
        if not callable(self.function):
            raise ValidationError(f"tool {self.name!r}: function must be callable")
        if self.timeout is not None and not (self.timeout > 0):
            raise ValidationError(f"tool {self.name!r}: timeout must be positive, got {self.timeout!r}")
        if not isinstance(self.parameters, Mapping) or self.parameters.get("type", "object") != "object":
            raise ValidationError(f"tool {self.name!r}: the parameters schema must be a JSON object schema")
        # imported here: jsonschema costs a tenth of a second at start-up of every command
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(self.parameters)
        except SchemaError as exc:
            raise ValidationError(f"tool {self.name!r}: invalid parameters schema: {exc.message}") from None
        object.__setattr__(self, "_validator", Draft202012Validator(self.parameters))

    @classmethod
    def from_function(
        cls,
        function: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        changes_workspace: bool = False,
    ) -> ToolSpec:
        """A spec for ``function``: the name defaults to the function's name, the description to the
        first paragraph of its docstring, the parameters to a schema derived from its type hints.

        Raises ValidationError when a parameter's type has no JSON Schema equivalent (pass
        ``parameters`` explicitly then) or the function takes ``*args``/``**kwargs``."""
        derived, context_param = _derive(function)
        return cls(
            name=name or function.__name__,
            description=description if description is not None else _summary(function),
            parameters=dict(parameters) if parameters is not None else derived,
            function=function,
            context_param=context_param,
            timeout=timeout,
            changes_workspace=changes_workspace,
        )

    def describe(self) -> ToolDescription:
        """The description an agent is given (no function)."""
        return ToolDescription(name=self.name, description=self.description, parameters=self.parameters)

    def validation_errors(self, arguments: Mapping[str, Any]) -> list[str]:
        """Every way ``arguments`` breaks the schema, as short messages (empty when valid)."""
        errors = sorted(self._validator.iter_errors(dict(arguments)), key=lambda e: list(e.absolute_path))
        out = []
        for e in errors:
            where = "/".join(str(p) for p in e.absolute_path)
            out.append(f"{where}: {e.message}" if where else e.message)
        return out


def schema_from_function(function: Callable[..., Any]) -> dict[str, Any]:
    """The JSON Schema (an object schema) of ``function``'s parameters, from its type hints.

    Supported: str, int, float, bool, None, Any, list/Sequence/tuple, dict/Mapping with str keys,
    Literal, Enum, unions (``X | None``) and ``Annotated[T, "description"]``. Parameters without
    a default are required; ``additionalProperties`` is false. A ToolContext parameter is left out.
    Raises ValidationError for anything else."""
    return _derive(function)[0]


def _derive(function: Callable[..., Any]) -> tuple[dict[str, Any], str | None]:
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception as exc:
        raise ValidationError(f"cannot read the type hints of {function!r:.80}: {exc}") from None
    sig = inspect.signature(function)
    docs = _param_docs(function)
    properties: dict[str, Any] = {}
    required: list[str] = []
    context_param: str | None = None
    for pname, param in sig.parameters.items():
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise ValidationError(f"tool function {function.__name__}: *args and **kwargs are not supported")
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise ValidationError(
                f"tool function {function.__name__}: positional-only parameter {pname!r} cannot be "
                "passed by name"
            )
        hint = hints.get(pname, Any)
        if hint is ToolContext or ToolContext in typing.get_args(hint):
            context_param = pname
            continue
        schema = _schema_for(hint, f"{function.__name__}({pname})")
        if pname in docs and "description" not in schema:
            schema["description"] = docs[pname]
        if param.default is inspect.Parameter.empty:
            required.append(pname)
        elif _is_json(param.default):
            schema["default"] = _jsonable(param.default)
        properties[pname] = schema
    out: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        out["required"] = required
    return out, context_param


def _schema_for(hint: Any, where: str) -> dict[str, Any]:
    if hint is Any or hint is inspect.Parameter.empty:
        return {}
    if hint is None or hint is type(None):
        return {"type": "null"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    if hint is str:
        return {"type": "string"}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        values = [m.value for m in hint]
        if not all(_is_json(v) for v in values):
            raise ValidationError(f"{where}: enum {hint.__name__} has values that are not JSON")
        return {"enum": values}
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        schema = _schema_for(args[0], where)
        text = [a for a in args[1:] if isinstance(a, str)]
        if text:
            schema["description"] = " ".join(text)
        return schema
    if origin is typing.Literal:
        if not all(_is_json(v) for v in args):
            raise ValidationError(f"{where}: Literal values must be JSON values")
        return {"enum": list(args)}
    if origin is typing.Union or origin is types.UnionType:
        return {"anyOf": [_schema_for(a, where) for a in args]}
    if origin in (list, Sequence, typing.Sequence) or hint in (list, Sequence):
        return {"type": "array", "items": _schema_for(args[0], where)} if args else {"type": "array"}
    if origin is tuple or hint is tuple:
        if not args:
            return {"type": "array"}
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _schema_for(args[0], where)}
        return {
            "type": "array",
            "prefixItems": [_schema_for(a, where) for a in args],
            "minItems": len(args),
            "maxItems": len(args),
        }
    if origin in (dict, Mapping, typing.Mapping) or hint in (dict, Mapping):
        if args and args[0] is not str:
            raise ValidationError(f"{where}: only dicts with str keys have a JSON Schema")
        return (
            {"type": "object", "additionalProperties": _schema_for(args[1], where)}
            if args
            else {"type": "object"}
        )
    raise ValidationError(
        f"{where}: no JSON Schema for the type {hint!r:.80}; give the tool's parameters schema explicitly"
    )


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, enum.Enum):
        return _is_json(value.value)
    if isinstance(value, (list, tuple)):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _summary(function: Callable[..., Any]) -> str:
    doc = inspect.getdoc(function) or ""
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip()


_SECTION_RE = re.compile(r"^(Args|Arguments|Parameters):\s*$")
_ITEM_RE = re.compile(r"^\s+(\w+)(?:\s*\([^)]*\))?\s*:\s*(.+)$")


def _param_docs(function: Callable[..., Any]) -> dict[str, str]:
    """Parameter descriptions from a Google-style ``Args:`` section of the docstring."""
    doc = inspect.getdoc(function) or ""
    out: dict[str, str] = {}
    in_section = False
    last: str | None = None
    for line in doc.splitlines():
        if _SECTION_RE.match(line):
            in_section = True
            continue
        if not in_section:
            continue
        if line and not line[0].isspace():
            break
        m = _ITEM_RE.match(line)
        if m:
            last = m.group(1)
            out[last] = m.group(2).strip()
        elif last is not None and line.strip():
            out[last] += " " + line.strip()
    return out
