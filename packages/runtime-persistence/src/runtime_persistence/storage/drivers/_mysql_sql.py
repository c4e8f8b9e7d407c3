"""The I/O-free half of the MySQL / MariaDB driver: table names, the migration steps, every
statement's text, the parsing of a store URL's options and the connection parameters. The I/O is
``_async/mysql.py`` (sync twin generated)."""

from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from runtime_core import ValidationError

from runtime_persistence.storage.drivers._schema import Migration, numbered
from runtime_persistence.storage.drivers._servers import (
    DEFAULT_CONNECT_TIMEOUT,
    bool_option,
    float_option,
    int_option,
    merged_options,
    scan_statements,
    split_options,
    store_prefix,
)
from runtime_persistence.storage.stores import redact_url

KIND = "MySQL"
OPTIONS = (
    "prefix",
    "pool_size",
    "connect_timeout",
    "max_value_size",
    "unix_socket",
    "ssl_ca",
    "read_only",
    "password_file",
)
MAX_VALUE = 64 << 20
HEADROOM = 64 << 10  # statement text around a value: keys, names, escaping prefix
STORED_CHUNK = 1 << 20
IDLE_CHECK = 30.0  # seconds idle after which a pooled connection is pinged before use
POOL_WAIT = 30.0  # seconds an operation waits for a free pooled connection
ER_DUP_ENTRY = 1062
ER_LOCK_DEADLOCK = 1213

_MIGRATION_STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "key-value table",
        (
            "CREATE TABLE {kv} (ns VARCHAR(63) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, "
            "k VARBINARY(512) NOT NULL, v LONGBLOB NOT NULL, ver BIGINT NOT NULL, "
            "PRIMARY KEY (ns, k)) ENGINE=InnoDB",
        ),
    ),
    (
        "blob area",
        (
            "CREATE TABLE {blobs} (digest CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL "
            "PRIMARY KEY, upload BIGINT NOT NULL, size BIGINT NOT NULL, created_at DATETIME(6) NOT NULL) "
            "ENGINE=InnoDB",
            "CREATE TABLE {chunks} (upload BIGINT NOT NULL, seq INT NOT NULL, data MEDIUMBLOB NOT NULL, "
            "PRIMARY KEY (upload, seq)) ENGINE=InnoDB",
        ),
    ),
    (
        "message search index",
        (
            # the recorder's full-text index (derived from the messages in {kv}): each message's
            # words, each written as kw + the hex of its UTF-8 (so InnoDB's parser, its 3-character
            # minimum and its stopwords see plain ASCII tokens and change nothing; see
            # session/recorder/search.py)
            "CREATE TABLE {search} (msg_offset BIGINT NOT NULL PRIMARY KEY, "
            "conversation VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL, "
            "words LONGTEXT CHARACTER SET utf8mb4 NOT NULL, overflow BOOLEAN NOT NULL DEFAULT FALSE, "
            "KEY {search_overflow} (overflow, msg_offset), FULLTEXT KEY {search_words} (words)) ENGINE=InnoDB",
        ),
    ),
)
# Append new steps at the end; never edit or reorder old ones (stores record them by number and name).


def table_names(prefix: str = "") -> dict[str, str]:
    """The quoted names of a store's tables (``kv``, ``blobs``, ``chunks``, ``migrations``,
    ``search``) and of the search table's indexes (``search_words``, ``search_overflow``)."""
    store_prefix(prefix)  # [a-z0-9_] only, so backquotes need no escaping
    tables = {
        "kv": "kv",
        "blobs": "blobs",
        "chunks": "blob_chunks",
        "migrations": "migrations",
        "search": "message_search",
        "search_words": "message_search_words",
        "search_overflow": "message_search_overflow",
    }
    return {role: f"`{prefix}keepup_{table}`" for role, table in tables.items()}


def migrations(prefix: str = "") -> list[Migration]:
    """The schema of a store with ``prefix`` as the ordered migrations the shared runner applies
    (version 1 is the oldest schema). MySQL commits each DDL statement on its own, so a crash in
    the middle of a migration can leave it half applied; opening again reports the mismatch."""
    return numbered(_MIGRATION_STEPS, table_names(prefix))


@dataclass(frozen=True, slots=True)
class MysqlOptions:
    """A store URL's options, checked: the constructor arguments of the driver."""

    prefix: str
    pool_size: int
    connect_timeout: float
    max_value_size: int | None
    unix_socket: str | None
    ssl_ca: str | None
    read_only: bool
    password_file: str | None


def parse_options(url: str, options: dict[str, Any]) -> MysqlOptions:
    """The driver options in ``url``'s query, overridden by ``options`` (ValidationError if bad)."""
    clean, query = split_options(url, OPTIONS)
    if urlsplit(clean).query:
        raise ValidationError(
            f"unknown URL option(s) in {redact_url(url)}; the MySQL driver knows: {', '.join(OPTIONS)}"
        )
    opts = merged_options(query, options, OPTIONS, url)
    return MysqlOptions(
        prefix=store_prefix(opts.get("prefix", "")),
        pool_size=int_option(opts, "pool_size", 4, low=1, high=256),
        connect_timeout=float_option(opts, "connect_timeout", DEFAULT_CONNECT_TIMEOUT, low=0.1, high=600),
        max_value_size=int_option(opts, "max_value_size", MAX_VALUE, low=1, high=MAX_VALUE)
        if "max_value_size" in opts
        else None,
        unix_socket=opts.get("unix_socket") or None,
        ssl_ca=opts.get("ssl_ca") or None,
        read_only=bool_option(opts, "read_only"),
        password_file=opts.get("password_file") or None,
    )


def connect_params(
    url: str, *, connect_timeout: float, unix_socket: str | None, ssl_ca: str | None
) -> dict[str, Any]:
    """The client library's connection parameters for ``url`` (the database under the key
    ``database``; aiomysql calls it ``db``)."""
    parts = urlsplit(url)
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise ValidationError(f"a MySQL store URL names one database: mysql://host/db; got {redact_url(url)}")
    params: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": parts.port or 3306,
        "user": unquote(parts.username) if parts.username else "root",
        "password": unquote(parts.password) if parts.password else "",
        "database": database,
        "autocommit": True,
        "charset": "utf8mb4",
        "connect_timeout": connect_timeout,
        "init_command": "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",
    }
    if unix_socket:
        params["unix_socket"] = unix_socket
    if ssl_ca:
        params["ssl"] = ssl.create_default_context(cafile=ssl_ca)  # verify the server and its name
    return params


def migration_lock(database: str, prefix: str) -> str:
    """The name of the server lock that serializes the migrations of one store."""
    return "keepup:" + hashlib.blake2b(f"{database}:{prefix}".encode(), digest_size=16).hexdigest()


def value_limits(packet: int, max_value_size: int | None) -> tuple[int, int]:
    """``(max_value_size, blob chunk size)`` for a server whose ``max_allowed_packet`` is ``packet``:
    values are sent escaped in the statement text, which can double their size."""
    limit = max(0, min(MAX_VALUE, (packet - HEADROOM) // 2))
    chunk = max(1 << 10, min(STORED_CHUNK, (packet - HEADROOM) // 2))
    return (limit if max_value_size is None else min(limit, max_value_size)), chunk


def error_code(exc: BaseException | None) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def utc(value: Any) -> datetime | None:
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) else None


def queries(names: dict[str, str]) -> dict[str, Any]:
    kv, blobs, chunks = names["kv"], names["blobs"], names["chunks"]
    return {
        "get": f"SELECT v, ver FROM {kv} WHERE ns = %s AND k = %s",
        "insert": f"INSERT INTO {kv} (ns, k, v, ver) VALUES (%s, %s, %s, 1)",
        "update_if": f"UPDATE {kv} SET v = %s, ver = ver + 1 WHERE ns = %s AND k = %s AND ver = %s",
        "upsert": f"INSERT INTO {kv} (ns, k, v, ver) VALUES (%s, %s, %s, 1) "
        "ON DUPLICATE KEY UPDATE v = VALUES(v), ver = LAST_INSERT_ID(ver + 1)",
        "delete": f"DELETE FROM {kv} WHERE ns = %s AND k = %s",
        "delete_if": f"DELETE FROM {kv} WHERE ns = %s AND k = %s AND ver = %s",
        "insert_chunk": f"INSERT INTO {chunks} (upload, seq, data) VALUES (%s, %s, %s)",
        "insert_blob": f"INSERT INTO {blobs} (digest, upload, size, created_at) VALUES (%s, %s, %s, %s)",
        "blob_info": f"SELECT size, created_at FROM {blobs} WHERE digest = %s",
        "blob_upload": f"SELECT upload FROM {blobs} WHERE digest = %s",
        "blob_upload_for_update": f"SELECT upload FROM {blobs} WHERE digest = %s FOR UPDATE",
        "read_chunks": f"SELECT seq, data FROM {chunks} WHERE upload = %s AND seq >= %s ORDER BY seq LIMIT %s",
        "delete_blob": f"DELETE FROM {blobs} WHERE digest = %s",
        "delete_chunks": f"DELETE FROM {chunks} WHERE upload = %s",
        "list_blobs": f"SELECT digest, size, created_at FROM {blobs} WHERE digest > %s ORDER BY digest LIMIT %s",
        "max_packet": "SELECT @@max_allowed_packet",
        "namespaces": f"SELECT DISTINCT ns FROM {kv} ORDER BY ns",
        "rollback": "ROLLBACK",
        "snapshot": [
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
        ],
    }


def scans(names: dict[str, str]) -> dict[tuple[bool, bool, bool], str]:
    return scan_statements(names["kv"], "%s")


def drop_statements(names: dict[str, str]) -> list[str]:
    roles = ("search", "chunks", "blobs", "kv", "migrations")
    return [f"DROP TABLE IF EXISTS {names[role]}" for role in roles]
