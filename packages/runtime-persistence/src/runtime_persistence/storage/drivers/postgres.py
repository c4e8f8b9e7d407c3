"""The PostgreSQL driver (``postgresql://user:password@host:port/db?prefix=p_&schema=s``), psycopg 3
with a connection pool (extra ``[postgres]``), blocking (:class:`PostgresDriver`) or native
async (:class:`AsyncPostgresDriver`, on ``psycopg.AsyncConnection``; what ``open_store_async``
returns). The async class is the source; the blocking one is generated from it.

Layout: a key-value table ``<prefix>keepup_kv`` (namespace, key as ``bytea`` so keys compare in
UTF-8 byte order whatever the database collation, value, version), a blob table
``<prefix>keepup_blobs`` and its chunk table ``<prefix>keepup_blob_chunks``, plus the migrations
table. ``schema=`` puts them in that schema (created if missing).

Guarantees: every put and delete is one statement (create-only is ``INSERT … ON CONFLICT DO
NOTHING``, compare-and-set is ``UPDATE … WHERE version = …``), a batch is all or nothing
(``atomic_batch``): a batch of distinct keys (what a checkpoint commit writes) is one statement
of data-modifying CTEs that rolls back whole when a condition fails, any other batch one
transaction; a blob is written in one transaction and becomes visible only when complete.
``durable`` runs with ``synchronous_commit = on`` (acknowledged after the WAL is flushed; the
server's ``fsync`` setting must be on), ``relaxed`` with ``synchronous_commit = off`` (a crash
of the server may lose the last few hundred milliseconds of acknowledged writes, never corrupt).

URL options: ``prefix`` (table-name prefix, at most 32 of ``a-z 0-9 _``), ``schema``,
``pool_size`` (most connections this process opens, default 4), ``max_value_size``, ``read_only``
(``1``: never migrate, refuse a store that needs it, and open read-only sessions), ``prepare``
(``0``: no server-side prepared statements, for PgBouncer in transaction mode before 1.21, which
loses them between transactions; durability is unaffected there only with the server's default
``synchronous_commit = on``, since session settings do not survive either); every other
query parameter is a libpq parameter (``connect_timeout`` defaults to 5 seconds)."""

from runtime_persistence.storage.drivers._async.postgres import AsyncPostgresDriver
from runtime_persistence.storage.drivers._postgres_sql import migrations, table_names
from runtime_persistence.storage.drivers._sync.postgres import PostgresDriver

__all__ = ["AsyncPostgresDriver", "PostgresDriver", "migrations", "table_names"]
