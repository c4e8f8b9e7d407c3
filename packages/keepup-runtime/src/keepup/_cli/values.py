"""Pluggable rendering of stored values for ``keepup checkpoint show`` and ``diff``.

A framework adapter stores its values as plain data that only it understands (LangGraph's are
``[type, bytes]`` pairs). An installed adapter may register a decoder in the
``keepup.value_decoders`` entry-point group: a function that takes one stored value and returns
a JSON-ready rendering of it, or ``NotImplemented`` when the value is not one of its own. The
command line tries every decoder on every value (depth first, outermost first) and shows what
they return. A decoder that raises is skipped for that value: rendering never fails a command."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

__all__ = ["ENTRY_POINT_GROUP", "decoders", "render_values"]

ENTRY_POINT_GROUP = "keepup.value_decoders"
Decoder = Callable[[Any], Any]


@cache
def decoders() -> tuple[Decoder, ...]:
    """The installed value decoders (loaded once; one that cannot be loaded is left out)."""
    from importlib.metadata import entry_points  # ~15 ms: only when a value is rendered

    found: list[Decoder] = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            found.append(ep.load())
        except Exception:  # noqa: S112 (a broken plugin must not break the command line)
            continue
    return tuple(found)


def render_values(value: Any, using: tuple[Decoder, ...] | None = None) -> Any:
    """``value`` with every part that an installed decoder recognises replaced by its
    rendering."""
    active = decoders() if using is None else using
    if not active:
        return value
    for decoder in active:
        try:
            out = decoder(value)
        except Exception:  # noqa: S112
            continue
        if out is not NotImplemented:
            return out
    if isinstance(value, dict):
        return {k: render_values(v, active) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render_values(v, active) for v in value]
    return value
