"""The registry of blob roots: every repository that keeps blobs in a driver's blob area names
them here, so garbage collection (:mod:`runtime_persistence.checkpoint.gc`) never frees a blob
something still needs.

It sits in ``storage`` because every layer above registers into it (artifacts when imported,
third-party packages through the ``keepup.blob_roots`` entry-point group, ``name =
"module:function"``), and the collector, which lives with the checkpoints, reads it.

A provider has a sync form (``fn(driver) -> iterable of digests``, for :class:`Driver`) and may
have an async form (``afn(async_driver) -> async iterable of digests``) for the async collector.
A provider whose records are envelopes takes a ``serializer`` keyword too (``fn(driver, *,
serializer)``): the collector passes its own, so an encrypted store's records are read with the
keyring (:func:`provider_roots`, :func:`provider_roots_async`).
A provider without an async form is still honoured by the async collector on a driver that runs
on worker threads (it is called with the wrapped sync driver); on a natively async driver the
async collector refuses to run rather than free blobs it was not told about."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from runtime_core import AsyncDriver, Driver, Serializer, ValidationError

__all__ = [
    "ENTRY_POINT_GROUP",
    "AsyncBlobRootProvider",
    "BlobRootProvider",
    "BlobRoots",
    "blob_root_providers",
    "provider_roots",
    "provider_roots_async",
    "register_blob_roots",
    "unregister_blob_roots",
]

ENTRY_POINT_GROUP = "keepup.blob_roots"

BlobRootProvider = Callable[[Driver], Iterable[str]]
"""Returns the hex SHA-256 digests of every blob a repository still needs in ``driver``."""

AsyncBlobRootProvider = Callable[[AsyncDriver], AsyncIterable[str]]
"""The async form of a provider: the same digests, from an async driver."""


@dataclass(frozen=True, slots=True)
class BlobRoots:
    """A registered provider: its sync form and, if it has one, its async form."""

    sync: BlobRootProvider
    async_: AsyncBlobRootProvider | None = None
    takes_serializer: bool = False
    async_takes_serializer: bool = False


def _takes_serializer(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin or an odd callable: called with the driver only
        return False
    return "serializer" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def provider_roots(provider: BlobRoots, driver: Driver, serializer: Serializer | None) -> Iterable[str]:
    """The digests the sync form of ``provider`` names, reading with ``serializer`` when it
    takes one (so a provider reads an encrypted store's records with the collector's keyring)."""
    if provider.takes_serializer and serializer is not None:
        return provider.sync(driver, serializer=serializer)  # type: ignore[call-arg]
    return provider.sync(driver)


def provider_roots_async(
    provider: BlobRoots, driver: AsyncDriver, serializer: Serializer | None
) -> AsyncIterable[str]:
    """The digests the async form of ``provider`` names (it must have one), as
    :func:`provider_roots`."""
    assert provider.async_ is not None
    if provider.async_takes_serializer and serializer is not None:
        return provider.async_(driver, serializer=serializer)  # type: ignore[call-arg]
    return provider.async_(driver)


_PROVIDERS: dict[str, BlobRoots] = {}
# imported by name before every collection: the built-in repositories that register roots
_BUILTIN_MODULES = ("runtime_persistence.artifact.artifacts", "runtime_persistence.shadow_git.packs")


def register_blob_roots(
    name: str, fn: BlobRootProvider, async_fn: AsyncBlobRootProvider | None = None
) -> None:
    """Register (or replace) the root provider ``name``; gc keeps every blob it names.
    ``async_fn`` is its async form, used by the async collector."""
    if not isinstance(name, str) or not name:
        raise ValidationError("a blob root provider needs a non-empty name")
    if not callable(fn):
        raise ValidationError("a blob root provider must be callable: fn(driver) -> iterable of digests")
    if async_fn is not None and not callable(async_fn):
        raise ValidationError("an async blob root provider must be callable: afn(driver) -> async iterable")
    _PROVIDERS[name] = BlobRoots(
        fn, async_fn, _takes_serializer(fn), async_fn is not None and _takes_serializer(async_fn)
    )


def unregister_blob_roots(name: str) -> None:
    """Remove the root provider ``name`` (no-op if absent)."""
    _PROVIDERS.pop(name, None)


def blob_root_providers() -> dict[str, BlobRoots]:
    """Every registered provider, after loading the built-in repositories and the entry points.

    A built-in repository that is absent is skipped; one that fails to import raises, because
    collecting without its roots would delete its blobs."""
    for module in _BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    from importlib.metadata import entry_points  # 15+ ms at import: only when gc asks

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _PROVIDERS:
            register_blob_roots(ep.name, ep.load())
    return dict(_PROVIDERS)
