"""The serializer interface. The one implementation lives in runtime_persistence (msgspec over an
allowlist of plain types, in a checksummed, versioned envelope)."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["Serializer"]

T = TypeVar("T")


@runtime_checkable
class Serializer(Protocol):
    """Turns allowed values into self-describing, checksummed bytes and back.

    ``loads`` treats its input as untrusted: it never imports, calls or evaluates anything, and a
    damaged or tampered input raises CorruptionError instead of decoding into another value.

    ``at`` is the (namespace, key) a record is stored under: a record is bound to it, and reading
    it from anywhere else raises CorruptionError. ``content_addressed`` marks bytes already
    verified against a digest (a blob), which need no place."""

    def dumps(self, value: Any, *, at: tuple[str, str] | None = None) -> bytes: ...

    def loads(
        self,
        data: bytes,
        type: type[T] | Any = Any,
        *,
        at: tuple[str, str] | None = None,
        content_addressed: bool = False,
    ) -> T: ...
