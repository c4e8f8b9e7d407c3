"""Opening a store by URL. Each scheme maps to a driver module that is imported only when that
scheme is opened, so a missing optional library breaks only the driver that needs it.

A third-party package adds a scheme with an entry point in the ``keepup.drivers`` group, whose
name is the scheme and whose value is ``module:Class``; the class has a ``from_url`` classmethod
like the built-in drivers. Its async twin, if it has one, goes in the ``keepup.async_drivers``
group (an ``async`` classmethod ``from_url``); without one, :func:`open_store_async` runs the sync
driver on worker threads.

:func:`open_store_async` gives the native async driver where the backend has an async client
(PostgreSQL, MySQL/MariaDB, Redis, MongoDB) and the sync driver on worker threads for the
embedded ones (SQLite, files, memory), whose I/O the operating system cannot do asynchronously."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, unquote_plus, urlencode, urlsplit, urlunsplit

from runtime_core import AsyncDriver, Driver, DriverUnavailableError, Durability, ValidationError

__all__ = ["BUILTIN_SCHEMES", "DriverSpec", "open_store", "open_store_async", "redact_url"]

ENTRY_POINT_GROUP = "keepup.drivers"
ASYNC_ENTRY_POINT_GROUP = "keepup.async_drivers"


@dataclass(frozen=True, slots=True)
class DriverSpec:
    """Where a scheme's driver lives and which extra installs its library."""

    target: str  # "module:Class"
    extra: str | None = None  # the extra of runtime-persistence that installs the driver library
    library: str | None = None  # the top-level module the driver needs
    async_target: str | None = None  # "module:Class" of the native async twin, if any


# ``?blobs=s3://bucket/prefix`` on any store URL: the blob area on object storage (extra [s3])
_S3_BLOBS_SPEC = DriverSpec("runtime_persistence.storage.drivers.s3:with_blobs", "s3", "minio")

BUILTIN_SCHEMES: dict[str, DriverSpec] = {
    "memory": DriverSpec("runtime_persistence.storage.drivers.memory:MemoryDriver"),
    "file": DriverSpec("runtime_persistence.storage.drivers.file:FileDriver"),
    "sqlite": DriverSpec("runtime_persistence.storage.drivers.sqlite:SqliteDriver"),
    "postgresql": DriverSpec(
        "runtime_persistence.storage.drivers.postgres:PostgresDriver",
        "postgres",
        "psycopg",
        "runtime_persistence.storage.drivers.postgres:AsyncPostgresDriver",
    ),
    "postgres": DriverSpec(
        "runtime_persistence.storage.drivers.postgres:PostgresDriver",
        "postgres",
        "psycopg",
        "runtime_persistence.storage.drivers.postgres:AsyncPostgresDriver",
    ),
    "mysql": DriverSpec(
        "runtime_persistence.storage.drivers.mysql:MysqlDriver",
        "mysql",
        "pymysql",
        "runtime_persistence.storage.drivers.mysql:AsyncMysqlDriver",
    ),
    "mariadb": DriverSpec(
        "runtime_persistence.storage.drivers.mysql:MysqlDriver",
        "mysql",
        "pymysql",
        "runtime_persistence.storage.drivers.mysql:AsyncMysqlDriver",
    ),
    "redis": DriverSpec(
        "runtime_persistence.storage.drivers.redis:RedisDriver",
        "redis",
        "redis",
        async_target="runtime_persistence.storage.drivers.redis:AsyncRedisDriver",
    ),
    "mongodb": DriverSpec(
        "runtime_persistence.storage.drivers.mongodb:MongoDriver",
        "mongodb",
        "pymongo",
        async_target="runtime_persistence.storage.drivers.mongodb:AsyncMongoDriver",
    ),
}


SECRET_URL_OPTIONS = frozenset({"password", "passwd", "pwd", "pass", "secret", "token", "sslpassword"})
"""Query parameters whose value :func:`redact_url` masks (compared without case)."""

_USERINFO_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/?#@]*?:)[^/?#@]*(?=@)")
_QUERY_SECRET = re.compile(r"(?P<head>[?&;](?P<name>[^=&;#]*)=)(?P<value>[^&;#]*)")


def redact_url(url: str) -> str:
    """``url`` with every password replaced by ``***`` (safe for logs, errors and ``--json``
    output): the one in ``user:password@`` and the value of any query parameter named
    ``password``, ``passwd``, ``pwd``, ``pass``, ``secret``, ``token`` or ``sslpassword`` (any
    case; ``passfile=`` and ``password_file=`` name a file and are kept). Works by text, so a URL
    too malformed to parse is masked too."""
    masked = _USERINFO_PASSWORD.sub(lambda m: m.group("head") + "***", url, count=1)

    def query_value(match: re.Match[str]) -> str:
        if unquote(match.group("name")).strip().lower() in SECRET_URL_OPTIONS:
            return match.group("head") + "***"
        return match.group(0)

    base, sep, query = masked.partition("?")
    if not sep:
        return masked
    return base + _QUERY_SECRET.sub(query_value, "?" + query)


def url_secrets(url: str) -> list[str]:
    """The passwords ``url`` carries (as written and percent-decoded), longest first: what
    :func:`redact_url` masks, for removing them from a client library's error text too."""
    found: set[str] = set()
    userinfo = _USERINFO_PASSWORD.match(url)
    if userinfo:
        found.add(url[userinfo.end("head") : userinfo.end()])
    _, _, query = url.partition("?")
    for match in _QUERY_SECRET.finditer("?" + query):
        if unquote(match.group("name")).strip().lower() in SECRET_URL_OPTIONS:
            found.add(match.group("value"))
    found |= {unquote(value) for value in found} | {unquote_plus(value) for value in found}
    return sorted((value for value in found if value), key=len, reverse=True)


def split_blobs(url: str) -> tuple[str, str | None]:
    """``url`` without its ``blobs=`` parameter, and that parameter (None when absent)."""
    if not isinstance(url, str) or "blobs=" not in url:
        return url, None  # anything else is checked (and refused) with the scheme
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    blobs = [v for k, v in query if k == "blobs"]
    if not blobs:
        return url, None
    if len(blobs) > 1:
        raise ValidationError("a store URL names its blob area (blobs=) at most once")
    rest = [(k, v) for k, v in query if k != "blobs"]
    return urlunsplit(parts._replace(query=urlencode(rest))), blobs[0]


def _spec_for(scheme: str) -> DriverSpec:
    spec = BUILTIN_SCHEMES.get(scheme)
    if spec is not None:
        return spec
    from importlib.metadata import entry_points  # 15+ ms at import: only for a third-party scheme

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == scheme:
            return DriverSpec(ep.value)
    known = ", ".join(sorted(BUILTIN_SCHEMES))
    raise DriverUnavailableError(
        f"no storage driver for the URL scheme {scheme!r}; known schemes: {known} "
        f"(third-party drivers register in the {ENTRY_POINT_GROUP!r} entry-point group)"
    )


def _scheme_of(url: object) -> str:
    if not isinstance(url, str) or "://" not in url:
        raise ValidationError(
            f"a store URL looks like 'sqlite:////abs/path/keepup.db' or 'postgresql://host/db'; got {url!r:.200}"
        )
    scheme = url.split("://", 1)[0].lower()
    if "+" in scheme:  # e.g. postgresql+psycopg://
        scheme = scheme.split("+", 1)[0]
    return scheme


def _load(scheme: str, spec: DriverSpec, target: str) -> Any:
    """The driver class ``target`` names, after checking its library is installed."""
    module_name, _, class_name = target.partition(":")
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
    return getattr(module, class_name)


def open_store(url: str, *, durability: Durability | str = Durability.DURABLE, **options: Any) -> Driver:
    """Open the store at ``url`` (``sqlite:////abs.db``, ``sqlite:///rel.db``, ``memory://``, ``file:///dir``,
    ``postgresql://…``, ``mysql://…``, ``redis://…``, ``mongodb://…``).

    Raises ValidationError for a malformed URL and DriverUnavailableError when the scheme is
    unknown, its library is not installed (the message names the extra to install), or its server
    does not answer."""
    url, blobs = split_blobs(url)
    scheme = _scheme_of(url)
    spec = _spec_for(scheme)
    driver_class = _load(scheme, spec, spec.target)
    driver = cast(Driver, driver_class.from_url(url, durability=Durability(durability), **options))
    if blobs is None:
        return driver
    try:
        return cast(
            Driver,
            _load("s3", _S3_BLOBS_SPEC, "runtime_persistence.storage.drivers.s3:with_blobs")(driver, blobs),
        )
    except BaseException:
        driver.close()
        raise


async def open_store_async(
    url: str, *, durability: Durability | str = Durability.DURABLE, **options: Any
) -> AsyncDriver:
    """The async twin of :func:`open_store`: the same URLs, options and errors. Native async I/O
    where the backend has an async client; the sync driver on worker threads otherwise."""
    import asyncio  # here, not at the top: a sync program (the keepup command) never loads it

    from runtime_persistence.storage.threaded import AsyncThreadDriver

    url, blobs = split_blobs(url)
    if blobs is not None:
        records = await open_store_async(url, durability=durability, **options)
        try:
            opener = await asyncio.to_thread(
                _load, "s3", _S3_BLOBS_SPEC, "runtime_persistence.storage.drivers.s3:with_blobs_async"
            )
            return cast(AsyncDriver, await opener(records, blobs))
        except BaseException:
            await records.close()
            raise
    scheme = _scheme_of(url)

    def resolve() -> Any:
        # importing a driver module (and its client library) and reading entry points is
        # blocking file I/O: done on a worker thread, never on the event loop
        spec = _spec_for(scheme)
        target = spec.async_target
        if target is None and scheme not in BUILTIN_SCHEMES:
            from importlib.metadata import entry_points

            target = next(
                (ep.value for ep in entry_points(group=ASYNC_ENTRY_POINT_GROUP) if ep.name == scheme), None
            )
        return None if target is None else _load(scheme, spec, target)

    driver_class = await asyncio.to_thread(resolve)
    if driver_class is not None:
        return cast(
            AsyncDriver, await driver_class.from_url(url, durability=Durability(durability), **options)
        )
    sync = await asyncio.to_thread(open_store, url, durability=durability, **options)
    return AsyncThreadDriver(sync)
