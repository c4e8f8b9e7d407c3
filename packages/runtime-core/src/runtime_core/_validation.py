"""Checks shared by the records' constructors. Private: other packages use the public validators."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

from runtime_core.errors import ValidationError

MAX_NAME_CHARS = 200
MAX_KEY_CHARS = 1024  # framework-chosen ids and paths: external keys, namespaces, task paths
MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 16

E = TypeVar("E", bound=Enum)


def check_enum(value: object, enum: type[E], what: str) -> E:
    """``value`` as a member of ``enum`` (members and their values are accepted)."""
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in enum)
        raise ValidationError(f"{what} must be one of {allowed}; got {value!r:.40}") from None


def check_name(value: object, what: str, *, allow_empty: bool = True, max_chars: int = MAX_NAME_CHARS) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, got {type(value).__name__}")
    if not value and not allow_empty:
        raise ValidationError(f"{what} must not be empty")
    if len(value) > max_chars:
        raise ValidationError(f"{what} is {len(value)} characters; the limit is {max_chars}")
    # printable ASCII holds no control character (Cc) and no surrogate (Cs): skip the scan
    if not (value.isascii() and value.isprintable()) and any(
        unicodedata.category(ch) in ("Cc", "Cs") for ch in value
    ):
        raise ValidationError(f"{what} must not contain control characters or lone surrogates")
    return value


def check_aware(value: object, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(f"{what} must be a timezone-aware datetime, got {value!r:.60}")
    return value


def check_non_negative(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{what} must be a non-negative integer, got {value!r:.40}")
    return value


_SIZE_OF_EXACT: dict[type, int] = {type(None): 4, bool: 4, int: 8}


def _check_str(value: str, what: str) -> int:
    if not value.isascii():
        try:  # strict UTF-8 refuses exactly the surrogates, at C speed
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(f"{what} must not contain lone surrogates") from None
    return len(value) + 2


def check_plain(value: Any, what: str, depth: int = 0, *, json_only: bool = False) -> int:
    """Check that ``value`` is plain data and return an estimate of its encoded size.

    Plain data is the serializer's allowlist: None, bool, int, float, str, bytes, datetime, UUID,
    list (or tuple) and dict with str keys. With ``json_only`` (metadata, which stores filter on),
    bytes, datetime and UUID are refused too.

    One loop over the containers of exactly those types (every checkpoint save runs this over
    the whole state); anything else (a subclass, another mapping) is checked by the general
    recursive check, with the same rules."""
    total = 0
    stack: list[tuple[Any, int]] = [(value, depth)]
    while stack:
        item, level = stack.pop()
        kind = type(item)
        if kind is dict or kind is list or kind is tuple:
            if level > MAX_METADATA_DEPTH or (level == MAX_METADATA_DEPTH and item):
                raise ValidationError(f"{what} is nested deeper than {MAX_METADATA_DEPTH} levels")
            total += 2
            children: Any = item
            if kind is dict:
                for k in item:
                    if type(k) is not str and not isinstance(k, str):
                        raise ValidationError(f"{what} keys must be strings, got {type(k).__name__}")
                    total += len(k) + 2
                children = item.values()
            for child in children:
                ckind = type(child)
                if ckind is str:
                    total += _check_str(child, what)
                elif ckind in _SIZE_OF_EXACT:
                    total += _SIZE_OF_EXACT[ckind]
                else:
                    stack.append((child, level + 1))
        elif kind is str:
            if level > MAX_METADATA_DEPTH:
                raise ValidationError(f"{what} is nested deeper than {MAX_METADATA_DEPTH} levels")
            total += _check_str(item, what)
        else:
            total += _check_plain_any(item, what, level, json_only=json_only)
    return total


def _check_plain_any(value: Any, what: str, depth: int = 0, *, json_only: bool = False) -> int:
    """:func:`check_plain` for any value, one recursive call per value."""
    if depth > MAX_METADATA_DEPTH:
        raise ValidationError(f"{what} is nested deeper than {MAX_METADATA_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return 4
    if isinstance(value, int):
        return 8
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{what} must not contain NaN or infinity")
        return 8
    if isinstance(value, str):
        return _check_str(value, what)
    if not json_only and isinstance(value, (bytes, datetime, UUID)):
        return len(value) + 2 if isinstance(value, bytes) else 16
    if isinstance(value, (list, tuple)):
        return 2 + sum(_check_plain_any(v, what, depth + 1, json_only=json_only) for v in value)
    if isinstance(value, Mapping):
        total = 2
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValidationError(f"{what} keys must be strings, got {type(k).__name__}")
            total += len(k) + 2 + _check_plain_any(v, what, depth + 1, json_only=json_only)
        return total
    allowed = (
        "None, bool, int, float, str, list, dict"
        if json_only
        else ("None, bool, int, float, str, bytes, datetime, UUID, list, dict")
    )
    raise ValidationError(f"{what} must hold plain data ({allowed}); got {type(value).__name__}")


def check_metadata(value: object, what: str = "metadata") -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(f"{what} must be a mapping with string keys")
    size = check_plain(value, what, json_only=True)
    if size > MAX_METADATA_BYTES:
        raise ValidationError(f"{what} is about {size} bytes; the limit is {MAX_METADATA_BYTES}")
    return dict(value)
