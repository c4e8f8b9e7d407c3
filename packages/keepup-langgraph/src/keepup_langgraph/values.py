"""Rendering stored LangGraph values for people (``keepup checkpoint show/diff``), without
turning them back into objects.

This module is registered as the ``langgraph`` entry point of the ``keepup.value_decoders``
group: the ``keepup`` command line calls :func:`decode_value` on every stored value and shows
what it returns instead of the opaque ``[type, bytes]`` pair that LangGraph's serializer made.
Nothing is imported, called or instantiated by name: a LangGraph extension type (a message, a
pydantic model, a dataclass) is shown as ``{"type": "module.Class", "value": ...}`` with its
fields as plain data. Stored data is untrusted input, so a display path must never
deserialize objects (LangGraph's serializer CVEs are what happens otherwise)."""

from __future__ import annotations

import json
from typing import Any

import msgspec

__all__ = ["decode_value"]

_KINDS = frozenset({"msgpack", "json", "null", "bytes", "bytearray"})
_MAX_DEPTH = 64


def _ext(code: int, data: memoryview, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        return {"type": "(nested too deep)"}
    inner = msgspec.msgpack.decode(data, ext_hook=lambda c, d: _ext(c, d, depth + 1))
    if isinstance(inner, list) and len(inner) >= 3 and all(isinstance(p, str) for p in inner[:2]):
        return {"type": f"{inner[0]}.{inner[1]}", "value": inner[2]}
    return {"type": f"(extension {code})", "value": inner}


def decode_value(value: Any) -> Any:
    """A JSON-ready rendering of a value KeepupSaver stored (``[type, bytes]``), or
    ``NotImplemented`` when ``value`` is not one."""
    if not (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and value[0] in _KINDS
        and isinstance(value[1], bytes)
    ):
        return NotImplemented
    kind, data = value
    try:
        if kind == "null":
            return None
        if kind in ("bytes", "bytearray"):
            return {"type": kind, "hex": data.hex()}
        if kind == "json":
            return json.loads(data)
        return msgspec.msgpack.decode(data, ext_hook=_ext)
    except (ValueError, msgspec.DecodeError):
        return NotImplemented
