"""The registry of blob roots: every repository that keeps blobs in a driver's blob area names
them here, so garbage collection (:mod:`runtime_persistence.checkpoint.gc`) never frees a blob
something still needs.

It sits in ``storage`` because every layer above registers into it (artifacts when imported,
third-party packages through the ``keepup.blob_roots`` entry-point group, ``name =
"module:function"``), and the collector, which lives with the checkpoints, reads it."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points

from runtime_core import Driver, ValidationError

__all__ = [
    "ENTRY_POINT_GROUP",
    "BlobRootProvider",
    "blob_root_providers",
    "register_blob_roots",
    "unregister_blob_roots",
]

ENTRY_POINT_GROUP = "keepup.blob_roots"

BlobRootProvider = Callable[[Driver], Iterable[str]]
"""Returns the hex SHA-256 digests of every blob a repository still needs in ``driver``."""

_PROVIDERS: dict[str, BlobRootProvider] = {}
# imported by name before every collection: the built-in repositories that register roots
_BUILTIN_MODULES = ("runtime_persistence.artifact.artifacts",)


def register_blob_roots(name: str, fn: BlobRootProvider) -> None:
    """Register (or replace) the root provider ``name``; gc keeps every blob it names."""
    if not isinstance(name, str) or not name:
        raise ValidationError("a blob root provider needs a non-empty name")
    if not callable(fn):
        raise ValidationError("a blob root provider must be callable: fn(driver) -> iterable of digests")
    _PROVIDERS[name] = fn


def unregister_blob_roots(name: str) -> None:
    """Remove the root provider ``name`` (no-op if absent)."""
    _PROVIDERS.pop(name, None)


def blob_root_providers() -> dict[str, BlobRootProvider]:
    """Every registered provider, after loading the built-in repositories and the entry points.

    A built-in repository that is absent is skipped; one that fails to import raises, because
    collecting without its roots would delete its blobs."""
    for module in _BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _PROVIDERS:
            register_blob_roots(ep.name, ep.load())
    return dict(_PROVIDERS)
