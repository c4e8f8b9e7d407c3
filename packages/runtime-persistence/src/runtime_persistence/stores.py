"""Opening a store by URL. Each scheme maps to a driver module that is imported only when that
scheme is opened, so a missing optional library breaks only the driver that needs it.

A third-party package adds a scheme with an entry point in the ``keepup.drivers`` group, whose
name is the scheme and whose value is ``module:Class``; the class has a ``from_url`` classmethod
like the built-in drivers."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, cast
from urllib.parse import urlsplit

from runtime_core import Driver, DriverUnavailableError, Durability, ValidationError

__all__ = ["BUILTIN_SCHEMES", "DriverSpec", "open_store", "redact_url"]

ENTRY_POINT_GROUP = "keepup.drivers"


@dataclass(frozen=True, slots=True)
class DriverSpec:
    """Where a scheme's driver lives and which extra installs its library."""

    target: str  # "module:Class"
    extra: str | None = None  # the extra of runtime-persistence that installs the driver library
    library: str | None = None  # the top-level module the driver needs


BUILTIN_SCHEMES: dict[str, DriverSpec] = {
    "memory": DriverSpec("runtime_persistence.drivers.memory:MemoryDriver"),
    "file": DriverSpec("runtime_persistence.drivers.file:FileDriver"),
    "sqlite": DriverSpec("runtime_persistence.drivers.sqlite:SqliteDriver"),
    "postgresql": DriverSpec("runtime_persistence.drivers.postgres:PostgresDriver", "postgres", "psycopg"),
    "postgres": DriverSpec("runtime_persistence.drivers.postgres:PostgresDriver", "postgres", "psycopg"),
    "mysql": DriverSpec("runtime_persistence.drivers.mysql:MysqlDriver", "mysql", "pymysql"),
    "mariadb": DriverSpec("runtime_persistence.drivers.mysql:MysqlDriver", "mysql", "pymysql"),
    "redis": DriverSpec("runtime_persistence.drivers.redis:RedisDriver", "redis", "redis"),
    "mongodb": DriverSpec("runtime_persistence.drivers.mongodb:MongoDriver", "mongodb", "pymongo"),
}


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe for logs and error messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _spec_for(scheme: str) -> DriverSpec:
    spec = BUILTIN_SCHEMES.get(scheme)
    if spec is not None:
        return spec
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == scheme:
            return DriverSpec(ep.value)
    known = ", ".join(sorted(BUILTIN_SCHEMES))
    raise DriverUnavailableError(
        f"no storage driver for the URL scheme {scheme!r}; known schemes: {known} "
        f"(third-party drivers register in the {ENTRY_POINT_GROUP!r} entry-point group)"
    )


def open_store(url: str, *, durability: Durability | str = Durability.DURABLE, **options: Any) -> Driver:
    """Open the store at ``url`` (``sqlite:///path``, ``memory://``, ``file:///dir``,
    ``postgresql://…``, ``mysql://…``, ``redis://…``, ``mongodb://…``).

    Raises ValidationError for a malformed URL and DriverUnavailableError when the scheme is
    unknown, its library is not installed (the message names the extra to install), or its server
    does not answer."""
    if not isinstance(url, str) or "://" not in url:
        raise ValidationError(
            f"a store URL looks like 'sqlite:///path/to/keepup.db' or 'postgresql://host/db'; got {url!r:.200}"
        )
    scheme = url.split("://", 1)[0].lower()
    if "+" in scheme:  # e.g. postgresql+psycopg://
        scheme = scheme.split("+", 1)[0]
    spec = _spec_for(scheme)
    module_name, _, class_name = spec.target.partition(":")
    if spec.library is not None:
        try:
            importlib.import_module(spec.library)
        except ImportError as exc:
            raise DriverUnavailableError(
                f"the {scheme}:// driver needs the {spec.library!r} library, which is not installed: "
                f"install it with `pip install 'runtime-persistence[{spec.extra}]'`",
                extra=spec.extra,
            ) from exc
    module = importlib.import_module(module_name)
    driver_class = getattr(module, class_name)
    return cast(Driver, driver_class.from_url(url, durability=Durability(durability), **options))
