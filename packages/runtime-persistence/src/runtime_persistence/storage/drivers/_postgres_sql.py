"""The I/O-free half of the PostgreSQL driver: table names, the migration steps, every statement's
text, and the parsing of a store URL's options. The I/O is ``_async/postgres.py`` (sync twin
generated)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from runtime_core import ValidationError

from runtime_persistence.storage.drivers._schema import Migration, numbered
from runtime_persistence.storage.drivers._servers import (
    DEFAULT_CONNECT_TIMEOUT,
    bool_option,
    int_option,
    merged_options,
    scan_statements,
    split_options,
    store_prefix,
)

KIND = "PostgreSQL"
OWN_OPTIONS = ("prefix", "schema", "pool_size", "max_value_size", "read_only", "prepare")
SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
STORED_CHUNK = 1 << 20  # blob bytes per chunk row
MAX_VALUE = 64 << 20

_MIGRATION_STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "key-value table",
        (
            "CREATE TABLE {kv} (ns text NOT NULL, k bytea NOT NULL, v bytea NOT NULL, "
            "ver bigint NOT NULL, PRIMARY KEY (ns, k))",
        ),
    ),
    (
        "blob area",
        (
            "CREATE TABLE {blobs} (digest text PRIMARY KEY, upload bigint NOT NULL, "
            "size bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
            "CREATE TABLE {chunks} (upload bigint NOT NULL, seq integer NOT NULL, data bytea NOT NULL, "
            "PRIMARY KEY (upload, seq))",
            # blobs are usually compressed already: do not spend CPU on TOAST compression
            "ALTER TABLE {chunks} ALTER COLUMN data SET STORAGE EXTERNAL",
        ),
    ),
    (
        "message search index",
        (
            # the recorder's full-text index (derived from the recorded messages, which stay in
            # {kv}): each message's words as a tsvector, built by Keepup's own tokenizer so every
            # backend matches the same words (session/recorder/search.py)
            "CREATE TABLE {search} (msg_offset bigint PRIMARY KEY, conversation text, "
            "words tsvector NOT NULL, overflow boolean NOT NULL DEFAULT false)",
            "CREATE INDEX {search_words} ON {search} USING gin (words)",
            # the rare messages too large for a tsvector, so a query's OR can use both indexes
            "CREATE INDEX {search_overflow} ON {search} (msg_offset) WHERE overflow",
        ),
    ),
)
# Append new steps at the end; never edit or reorder old ones (stores record them by number and name).


def check_schema(schema: str | None) -> str | None:
    if schema is not None and not SCHEMA_RE.match(schema):
        raise ValidationError(f"a schema name is 1-63 characters of a-z, 0-9, '_'; got {schema!r:.80}")
    return schema


def table_names(prefix: str = "", schema: str | None = None) -> dict[str, str]:
    """The quoted, schema-qualified names of a store's tables (``kv``, ``blobs``, ``chunks``,
    ``migrations``, ``search``), for ``prefix`` and ``schema``, and the unqualified names of the
    search table's indexes (``search_words``, ``search_overflow``)."""
    store_prefix(prefix)
    check_schema(schema)
    # both parts are validated to [a-z0-9_], so double quotes need no escaping
    qualifier = f'"{schema}".' if schema else ""
    tables = {
        "kv": "kv",
        "blobs": "blobs",
        "chunks": "blob_chunks",
        "migrations": "migrations",
        "search": "message_search",
    }
    names = {role: f'{qualifier}"{prefix}keepup_{table}"' for role, table in tables.items()}
    names["search_words"] = f'"{prefix}keepup_message_search_words"'
    names["search_overflow"] = f'"{prefix}keepup_message_search_overflow"'
    return names


def migrations(prefix: str = "", schema: str | None = None) -> list[Migration]:
    """The schema of a store with ``prefix`` and ``schema``, as the ordered migrations the shared
    runner applies (version 1 is the oldest schema)."""
    return numbered(_MIGRATION_STEPS, table_names(prefix, schema))


@dataclass(frozen=True, slots=True)
class PostgresOptions:
    """A store URL's options, checked: the constructor arguments of the driver."""

    prefix: str
    schema: str | None
    pool_size: int
    max_value_size: int
    read_only: bool
    prepare: bool = True  # False: no server-side prepared statements (PgBouncer transaction mode)


def parse_options(url: str, options: dict[str, Any]) -> PostgresOptions:
    """The driver options in ``url``'s query, overridden by ``options`` (ValidationError if bad)."""
    _, query = split_options(url, OWN_OPTIONS)
    opts = merged_options(query, options, OWN_OPTIONS, url)
    return PostgresOptions(
        prefix=store_prefix(opts.get("prefix", "")),
        schema=check_schema(opts.get("schema") or None),
        pool_size=int_option(opts, "pool_size", 4, low=1, high=256),
        max_value_size=int_option(opts, "max_value_size", MAX_VALUE, low=1, high=MAX_VALUE),
        read_only=bool_option(opts, "read_only"),
        prepare=bool_option(opts, "prepare") if "prepare" in opts else True,
    )


def libpq_url(url: str) -> str:
    """``url`` without Keepup's own options, with the scheme libpq knows."""
    scheme, rest = url.split("://", 1)
    if scheme.lower().startswith(("postgresql", "postgres")):
        url = "postgresql://" + rest
    return split_options(url, OWN_OPTIONS)[0]


def connect_kwargs(conninfo: str) -> dict[str, Any]:
    """libpq parameters Keepup adds when the URL leaves them out."""
    return {} if "connect_timeout" in conninfo else {"connect_timeout": int(DEFAULT_CONNECT_TIMEOUT)}


def session_settings(durable: bool, read_only: bool) -> list[str]:
    """What every pooled connection runs when it is opened."""
    settings = [f"SET synchronous_commit TO {'on' if durable else 'off'}"]
    if read_only:
        settings.append("SET default_transaction_read_only TO on")
    return settings


def queries(names: dict[str, str]) -> dict[str, Any]:
    """Every statement, with the store's table names (bytes, so psycopg can prepare them). Keys
    are bound with ``%b`` so they are compared as bytes."""

    def q(text: str) -> bytes:
        return text.format(**names).encode()

    return {
        "get": q("SELECT v, ver FROM {kv} WHERE ns = %s AND k = %b"),
        "insert": q(
            "INSERT INTO {kv} (ns, k, v, ver) VALUES (%s, %b, %b, 1) ON CONFLICT (ns, k) DO NOTHING RETURNING ver"
        ),
        "update_if": q(
            "UPDATE {kv} SET v = %b, ver = ver + 1 WHERE ns = %s AND k = %b AND ver = %s RETURNING ver"
        ),
        "update_if_same": q(
            "UPDATE {kv} SET v = %b, ver = ver + 1 WHERE ns = %s AND k = %b AND ver = %s AND v = %b RETURNING ver"
        ),
        "upsert": q(
            "INSERT INTO {kv} AS t (ns, k, v, ver) VALUES (%s, %b, %b, 1) "
            "ON CONFLICT (ns, k) DO UPDATE SET v = EXCLUDED.v, ver = t.ver + 1 RETURNING ver"
        ),
        "delete": q("DELETE FROM {kv} WHERE ns = %s AND k = %b RETURNING ver"),
        "delete_if": q("DELETE FROM {kv} WHERE ns = %s AND k = %b AND ver = %s RETURNING ver"),
        "insert_chunk": q("INSERT INTO {chunks} (upload, seq, data) VALUES (%s, %s, %b)"),
        "insert_blob": q(
            "INSERT INTO {blobs} (digest, upload, size) VALUES (%s, %s, %s) "
            "ON CONFLICT (digest) DO NOTHING RETURNING created_at"
        ),
        "blob_info": q("SELECT size, created_at FROM {blobs} WHERE digest = %s"),
        "blob_upload": q("SELECT upload FROM {blobs} WHERE digest = %s"),
        "read_chunks": q(
            "SELECT seq, data FROM {chunks} WHERE upload = %s AND seq >= %s ORDER BY seq LIMIT %s"
        ),
        "delete_blob": q("DELETE FROM {blobs} WHERE digest = %s RETURNING upload"),
        "delete_chunks": q("DELETE FROM {chunks} WHERE upload = %s"),
        "list_blobs": q(
            "SELECT digest, size, created_at FROM {blobs} WHERE digest > %s ORDER BY digest LIMIT %s"
        ),
        "namespaces": q('SELECT ns FROM {kv} GROUP BY ns ORDER BY ns COLLATE "C"'),
        "rollback": q("ROLLBACK"),
        "snapshot": [q("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")],
    }


def scans(names: dict[str, str]) -> dict[tuple[bool, bool, bool], bytes]:
    return {shape: text.encode() for shape, text in scan_statements(names["kv"], "%b").items()}


def drop_statements(names: dict[str, str]) -> list[str]:
    roles = ("search", "chunks", "blobs", "kv", "migrations")
    return [f"DROP TABLE IF EXISTS {names[role]}" for role in roles]


FUSED_MAX_OPS = 32
"""The largest batch written as one fused statement (:func:`fused_batch`); larger ones run as a
transaction of one statement per op."""

_FUSED_OPS = {
    # (kind) -> (data-modifying statement of the CTE, what it binds)
    "insert": "INSERT INTO {kv} (ns, k, v, ver) VALUES (%s, %b, %b, 1) ON CONFLICT (ns, k) DO NOTHING RETURNING ver",
    "update_if": "UPDATE {kv} SET v = %b, ver = ver + 1 WHERE ns = %s AND k = %b AND ver = %s RETURNING ver",
    "update_if_same": (
        "UPDATE {kv} SET v = %b, ver = ver + 1 WHERE ns = %s AND k = %b AND ver = %s AND v = %b RETURNING ver"
    ),
    "upsert": (
        "INSERT INTO {kv} AS t (ns, k, v, ver) VALUES (%s, %b, %b, 1) "
        "ON CONFLICT (ns, k) DO UPDATE SET v = EXCLUDED.v, ver = t.ver + 1 RETURNING ver"
    ),
    "delete": "DELETE FROM {kv} WHERE ns = %s AND k = %b RETURNING ver",
    "delete_if": "DELETE FROM {kv} WHERE ns = %s AND k = %b AND ver = %s RETURNING ver",
}
CONDITIONAL = frozenset({"insert", "update_if", "update_if_same", "delete_if"})


def fused_batch(kv: str, kinds: tuple[str, ...]) -> bytes:
    """One statement that applies a batch of key-value writes of distinct keys (``kinds``: the
    statement kind of each op, as in :func:`queries`) and returns one row with each op's
    ``ver`` (NULL when it wrote nothing). When an op's condition fails, the statement divides by
    zero (SQLSTATE 22012) after every write ran, so PostgreSQL rolls the whole statement back:
    all or nothing in one round trip, without a transaction block. The caller maps that error to
    ConflictError. Data-modifying CTEs all see one snapshot, so two ops on one key are not
    fused (the caller runs such a batch as a transaction)."""
    ctes = ", ".join(f"o{i} AS ({_FUSED_OPS[kind].format(kv=kv)})" for i, kind in enumerate(kinds))
    columns = ", ".join(f"(SELECT ver FROM o{i})" for i in range(len(kinds)))
    checks = " AND ".join(
        f"EXISTS (SELECT 1 FROM o{i})" for i, kind in enumerate(kinds) if kind in CONDITIONAL
    )
    guard = f", 1 / (CASE WHEN {checks} THEN 1 ELSE 0 END)" if checks else ""
    return f"WITH {ctes} SELECT {columns}{guard}".encode()
