"""The parts of garbage collection that do no driver I/O, shared by the async collector
(``_async/gc.py``) and its generated sync twin; plus how the async collector reaches the roots of a
provider registered with only a sync form. See :mod:`runtime_persistence.checkpoint.gc`."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from runtime_core import AsyncDriver, Serializer, ValidationError

from runtime_persistence.storage.blob_roots import BlobRoots, provider_roots, provider_roots_async
from runtime_persistence.storage.threaded import AsyncThreadDriver

__all__ = [
    "DEFAULT_GRACE",
    "RECENT_MARGIN",
    "async_roots",
    "check_async_providers",
    "check_grace",
    "id_floor",
    "provider_roots",
]

DEFAULT_GRACE = timedelta(hours=1)
RECENT_MARGIN = timedelta(minutes=10)


def check_grace(grace: timedelta | None) -> timedelta:
    grace = DEFAULT_GRACE if grace is None else grace
    if not isinstance(grace, timedelta) or grace < timedelta(0):
        raise ValidationError(f"grace must be a non-negative timedelta, got {grace!r:.40}")
    return grace


def id_floor(since: datetime) -> str:
    """The smallest checkpoint id key created at ``since`` (ids start with their time in ms)."""
    key = f"{int(since.timestamp() * 1000):012x}"
    return f"{key[:8]}-{key[8:]}"


def check_async_providers(providers: dict[str, BlobRoots], driver: AsyncDriver) -> None:
    """Refuse (ValidationError, before anything is read or deleted) when a provider has no async
    form and ``driver`` does not run a sync driver on worker threads: its roots are unknown."""
    if isinstance(driver, AsyncThreadDriver):
        return
    missing = sorted(name for name, p in providers.items() if p.async_ is None)
    if missing:
        raise ValidationError(
            f"cannot collect garbage on {type(driver).__name__}: the blob root providers "
            f"{', '.join(missing)} have no async form (register_blob_roots(name, fn, async_fn)); "
            "nothing was deleted"
        )


async def async_roots(
    provider: BlobRoots, driver: AsyncDriver, serializer: Serializer | None = None
) -> list[str]:
    """The digests ``provider`` names in ``driver``: through its async form when it has one,
    else through its sync form on the sync driver behind an :class:`AsyncThreadDriver`, in a
    worker thread (callers check :func:`check_async_providers` first)."""
    if provider.async_ is not None:
        return [digest async for digest in provider_roots_async(provider, driver, serializer)]
    if not isinstance(driver, AsyncThreadDriver):  # pragma: no cover - refused up front
        raise ValidationError("a blob root provider without an async form needs a sync driver")
    sync_driver = driver.sync_driver
    return await asyncio.to_thread(lambda: list(provider_roots(provider, sync_driver, serializer)))
