"""The MySQL / MariaDB driver (``mysql://user:password@host:port/db?prefix=p_``, also ``mariadb://``),
blocking over PyMySQL (:class:`MysqlDriver`) or native async over aiomysql
(:class:`AsyncMysqlDriver`, what ``open_store_async`` returns), each with a small connection pool
(extra ``[mysql]``). The async class is the source; the blocking one is generated from it.

Layout (InnoDB): a key-value table ``<prefix>keepup_kv`` (namespace, key as ``VARBINARY`` so keys
compare in UTF-8 byte order whatever the collation, value, version), a blob table
``<prefix>keepup_blobs`` and its chunk table ``<prefix>keepup_blob_chunks``, and the migrations
table.

Guarantees: every put and delete is one statement (create-only is a plain ``INSERT`` that fails on
the primary key, compare-and-set is ``UPDATE … WHERE version = …``), a batch is one transaction
(``atomic_batch``), a blob is written in one transaction and becomes visible only when complete.
Statements the server aborts for a deadlock are run again (an aborted statement had no effect).

Durability is the server's: MySQL has no per-session switch, so ``durable`` and ``relaxed`` behave
the same here. A write is on stable storage when acknowledged only if the server runs with
``innodb_flush_log_at_trx_commit = 1`` (the default) and, with binary logging, ``sync_binlog = 1``.

Limits: PyMySQL sends values escaped in the statement text, which can double their size, so
``max_value_size`` is half the server's ``max_allowed_packet`` (read when the store is opened)
less some headroom, and at most 64 MiB. Larger data belongs in the blob area.

URL options: ``prefix`` (table-name prefix, at most 32 of ``a-z 0-9 _``), ``pool_size`` (most
connections this process opens, default 4), ``connect_timeout`` (seconds, default 5),
``max_value_size`` (to lower the limit), ``unix_socket``, ``ssl_ca`` (a CA file: use TLS),
``read_only`` (``1``: never migrate, refuse a store that needs it, and open read-only sessions)."""

from runtime_persistence.storage.drivers._async.mysql import AsyncMysqlDriver
from runtime_persistence.storage.drivers._mysql_sql import migrations, table_names
from runtime_persistence.storage.drivers._sync.mysql import MysqlDriver

__all__ = ["AsyncMysqlDriver", "MysqlDriver", "migrations", "table_names"]
