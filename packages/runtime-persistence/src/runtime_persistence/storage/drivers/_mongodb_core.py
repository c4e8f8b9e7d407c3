"""The I/O-free part of the MongoDB driver, shared by :class:`AsyncMongoDriver` and the generated
:class:`MongoDriver`: collection names, document ids, scan queries, client options and the
batch's condition check. Nothing here talks to a server (and nothing imports pymongo), so it
exists once for both twins. The layout and guarantees are described in
:mod:`runtime_persistence.storage.drivers.mongodb`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from runtime_core import ConflictError, Delete, DriverUnavailableError, Durability, Put

from runtime_persistence.storage.drivers._servers import DEFAULT_CONNECT_TIMEOUT

KIND = "MongoDB"
DOCUMENT_LIMIT = 16 << 20  # the server's maxBsonObjectSize unless it says otherwise
MAX_VALUE_CEILING = 64 << 20
ROOM = 4 << 10  # document bytes besides the value: _id (namespace and key), field names, version
UPSERT_RETRIES = 3
ROLES = ("kv", "blobs", "blob_chunks")

Doc = dict[str, Any]


def collection_name(prefix: str, role: str) -> str:
    """``<prefix>keepup_<role>``: the store's collection for ``role`` (one of ROLES)."""
    return f"{prefix}keepup_{role}"


def doc_id(namespace: str, key: str) -> str:
    """A key's document id: ``<namespace>|<key>`` (``|`` cannot occur in a namespace, so one id
    range is one namespace, in key byte order)."""
    return f"{namespace}|{key}"


def client_options(clean_url: str, password: str | None = None) -> dict[str, Any]:
    """The pymongo client options the driver sets: an application name, connection and server
    selection timeouts unless the URL sets them, and the password read from ``password_file=``
    (the user name stays in the URL)."""
    lowered = clean_url.lower()
    options: dict[str, Any] = {"appname": "keepup"}
    if password is not None:
        options["password"] = password
    if "serverselectiontimeoutms" not in lowered:
        options["serverSelectionTimeoutMS"] = int(DEFAULT_CONNECT_TIMEOUT * 1000)
    if "connecttimeoutms" not in lowered:
        options["connectTimeoutMS"] = int(DEFAULT_CONNECT_TIMEOUT * 1000)
    return options


def without_userinfo(url: str) -> str:
    """``url`` without its ``user[:password]@`` part."""
    scheme, sep, rest = url.partition("://")
    host, slash, tail = rest.partition("/")
    return scheme + sep + host.rpartition("@")[2] + slash + tail


def write_concern(durability: Durability) -> dict[str, Any]:
    """``durable``: acknowledged once journaled on a majority; ``relaxed``: by the primary alone."""
    if durability is Durability.DURABLE:
        return {"w": "majority", "j": True}
    return {"w": 1, "j": False}


def value_limit(hello: Mapping[str, Any], requested: int | None) -> int:
    """The largest value a document can hold on this server (less ROOM), or ``requested`` if lower."""
    limit = int(hello.get("maxBsonObjectSize", DOCUMENT_LIMIT)) - ROOM
    return limit if requested is None else min(limit, requested)


def check_collation(name: str, url: str, options: Mapping[str, Any]) -> None:
    """Refuse a collection whose collation is not the binary one (keys would sort wrongly)."""
    collation = options.get("collation")
    if collation and collation.get("locale") != "simple":
        raise DriverUnavailableError(
            f"the collection {name} at {url} has the collation {collation.get('locale')!r}; "
            "Keepup needs MongoDB's default binary string order: use another prefix"
        )


def scan_query(namespace: str, low: bytes, low_inclusive: bool, high: bytes | None) -> Doc:
    """The filter for the documents of ``namespace`` whose key lies between ``low`` and ``high``
    (exclusive; None: to the end of the namespace)."""
    head = namespace + "|"
    upper = head + high.decode() if high is not None else namespace + "}"  # "}" follows "|"
    return {"_id": {"$gte" if low_inclusive else "$gt": head + low.decode(), "$lt": upper}}


def key_of(namespace: str, document_id: Any) -> str:
    return str(document_id)[len(namespace) + 1 :]


def check_conditions(ops: Sequence[Put | Delete], versions: dict[str, int]) -> None:
    """Check every op's condition against ``versions`` (document id -> current version) as it
    will be when that op runs; ConflictError naming the first op that would lose. Updates
    ``versions`` to the state after the batch."""
    for position, op in enumerate(ops):
        key = doc_id(op.namespace, op.key)
        current = versions.get(key, 0)
        if_absent = isinstance(op, Put) and op.if_absent
        if (if_absent and current) or (op.if_version is not None and current != op.if_version):
            raise ConflictError(
                f"batch op {position} lost its condition: key {op.key!r} in {op.namespace!r} is at "
                f"version {current}; nothing was written"
            )
        versions[key] = current + 1 if isinstance(op, Put) else 0


def lost_midway(position: int, exc: ConflictError) -> ConflictError:
    """The error for a batch op that lost its condition to a concurrent writer after the earlier
    ops were applied (MongoDB batches are not atomic)."""
    if not position:
        return ConflictError(str(exc))
    return ConflictError(
        f"batch op {position} lost its condition to a concurrent writer after ops "
        f"0-{position - 1} were applied (MongoDB batches are not atomic): {exc}"
    )


def utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
