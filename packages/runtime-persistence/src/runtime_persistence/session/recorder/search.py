"""Full-text search over recorded messages: a :class:`SearchIndex` kept beside the message store.

One definition of a match holds on every store: a message matches a query when each word of the
query is a word, or the start of a word, of the message's text, where words are what
:func:`~runtime_persistence.session.recorder._model.words` finds (case-folded, without
diacritics, split at anything that is not a letter, digit or ``_``). Nothing in a query is
syntax. The indexes are fed those words, never the raw text, so no backend's own tokenizer (FTS5's
``unicode61``, PostgreSQL's text-search parser with its URL, e-mail and hyphenated-word rules)
changes what matches; and the store checks every hit against the text before it returns it.

* **SQLite** (the default store): an FTS5 table (``keepup_message_words``, rowid = message offset)
  in the store's own file with the ``ascii`` tokenizer over the words, ranked by BM25.
* **PostgreSQL**: the table ``keepup_message_search`` (created by the driver's migration 3), one
  ``tsvector`` of the words per message with a GIN index, matched by a prefix ``tsquery``,
  ranked by ``ts_rank``.
* **MySQL / MariaDB**: the table ``keepup_message_search`` (the driver's migration 3) with an
  InnoDB ``FULLTEXT`` index over the words, each written as ``kw`` + the hex of its UTF-8 so
  InnoDB's parser, minimum token size and stopwords change nothing; boolean-mode prefix terms,
  ranked by InnoDB's relevance.
* **Every other store** (Redis, MongoDB, files, memory): no index;
  :meth:`MessageStore.search` scans the messages and ranks by the number of matching words (the
  documented fallback, linear in the number of messages).

Every backend ranks only the newest :data:`RANK_WINDOW` matches of a query, best first, newer
first on ties. Only the rank function differs (BM25, ts_rank, InnoDB relevance, a count).

The index is derived data: the message store is the truth. It is written after each committed
batch, and its high-water mark is its largest offset, so a recorder killed between the two writes
re-indexes the missing tail when it starts (:meth:`MessageStore.catch_up_index`); a search also
scans any tail the index has not reached yet, so it never misses a recorded message."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from runtime_core import StorageError

from runtime_persistence.session.recorder._model import RecordedMessage, id_digest, words

__all__ = [
    "RANK_WINDOW",
    "MysqlSearchIndex",
    "PostgresSearchIndex",
    "SearchIndex",
    "SqliteSearchIndex",
    "search_index_for",
]


@runtime_checkable
class SearchIndex(Protocol):
    """A full-text index of recorded messages, keyed by offset. Sync: the async store calls it
    on a worker thread."""

    name: str

    def add(self, messages: Sequence[RecordedMessage]) -> None:
        """Index ``messages`` (any already indexed are replaced)."""
        ...

    def indexed_upto(self) -> int:
        """The largest offset indexed (0: none)."""
        ...

    def search(
        self, terms: Sequence[str], *, limit: int, conversation: str | None = None
    ) -> list[tuple[int, float]]:
        """``(offset, rank)`` of the best of the newest :data:`RANK_WINDOW` messages holding each
        of ``terms`` (the output of ``query_terms``) as a word or word start, best first. It may
        name a few more that do not match (the store checks each one)."""
        ...

    def close(self) -> None: ...


RANK_WINDOW = 5000
"""Search ranks the newest this-many matches of a query (all of them when there are fewer)."""

_FTS_TABLE = "keepup_message_words"
_IDS_TABLE = "keepup_message_ids"  # id digest -> offset: the dedup index of layout 3
_IDS_PER_QUERY = 500
_OLD_FTS_TABLE = "keepup_message_fts"  # raw text under unicode61 (before one tokenizer): dropped


class SqliteSearchIndex:
    """An FTS5 index in the SQLite store file at ``path`` (``read_only``: never created or
    written; a missing table is an empty index).

    Beside the words it indexes each message's id (table ``keepup_message_ids``: the id's
    :func:`~runtime_persistence.session.recorder._model.id_digest` and the message's offset),
    written in the same transaction as the words, so both reach the same offset
    (:meth:`indexed_upto`). A store in layout 3 finds its recorded ids there instead of an id row
    per message in the store (one checksummed driver row each, the larger part of a batch's
    cost); the store catches the index up from its chunks before it trusts it, and checks every
    id it finds against the record."""

    name = "sqlite-fts5"

    def __init__(self, path: Path, *, read_only: bool = False, busy_timeout: float = 30.0) -> None:
        self._path = path
        self._read_only = read_only
        self._lock = threading.Lock()
        try:
            if read_only:
                conn = sqlite3.connect(
                    f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None
                )
            else:
                conn = sqlite3.connect(
                    path, timeout=busy_timeout, check_same_thread=False, isolation_level=None
                )
                # derived data, rebuilt from the store after a crash: no fsync of its own
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
                conn.execute(f"DROP TABLE IF EXISTS {_OLD_FTS_TABLE}")
                # the words are joined by spaces; ``ascii`` splits there and nowhere else (every
                # non-ASCII character is a token character, and so is ``_``)
                conn.execute(
                    f"CREATE VIRTUAL TABLE IF NOT EXISTS {_FTS_TABLE} USING fts5("
                    "words, conversation UNINDEXED, tokenize=\"ascii tokenchars '_'\", prefix='2 3 4')"
                )
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {_IDS_TABLE} (digest INTEGER NOT NULL, "
                    "at INTEGER NOT NULL, PRIMARY KEY (digest, at)) WITHOUT ROWID"
                )
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the search index in {path}: {exc}") from exc
        self._conn = conn
        self._exists = read_only is False or self._table_exists(_FTS_TABLE)
        self._ids_exist = read_only is False or self._table_exists(_IDS_TABLE)

    @property
    def writable(self) -> bool:
        """Whether :meth:`add` writes (False: opened read-only)."""
        return not self._read_only

    def _table_exists(self, name: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)
        ).fetchone()
        return row is not None

    def add(self, messages: Sequence[RecordedMessage]) -> None:
        if self._read_only or not messages:
            return
        rows = [(m.offset, " ".join(words(m.text or "")), m.conversation) for m in messages]
        ids = [(id_digest(m.id), m.offset) for m in messages if m.id is not None]
        with self._lock:
            try:
                try:  # new offsets (the common case): a plain insert, cheaper in FTS5
                    self._write(rows, ids, "INSERT")
                except sqlite3.IntegrityError:  # some were indexed already (a catch-up)
                    self._write(rows, ids, "INSERT OR REPLACE")
            except sqlite3.Error as exc:
                raise StorageError(f"cannot write the search index in {self._path}: {exc}") from exc

    def _write(self, rows: list[tuple[int, str, str | None]], ids: list[tuple[int, int]], verb: str) -> None:
        """One transaction of index rows (rolled back whole on any error)."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                f"{verb} INTO {_FTS_TABLE}(rowid, words, conversation) VALUES (?, ?, ?)", rows
            )
            self._conn.executemany(f"INSERT OR IGNORE INTO {_IDS_TABLE}(digest, at) VALUES (?, ?)", ids)
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def offsets_of(self, digests: Sequence[int]) -> list[tuple[int, int]]:
        """``(digest, offset)`` of every indexed message whose id has one of ``digests`` (see
        :func:`~runtime_persistence.session.recorder._model.id_digest`)."""
        if not self._ids_exist or not digests:
            return []
        found: list[tuple[int, int]] = []
        with self._lock:
            try:
                for start in range(0, len(digests), _IDS_PER_QUERY):
                    part = digests[start : start + _IDS_PER_QUERY]
                    marks = ",".join("?" * len(part))
                    found += self._conn.execute(
                        f"SELECT digest, at FROM {_IDS_TABLE} WHERE digest IN ({marks})", part
                    ).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"cannot read the id index in {self._path}: {exc}") from exc
        return [(int(d), int(o)) for d, o in found]

    def indexed_upto(self) -> int:
        if not self._exists:
            return 0
        with self._lock:
            # not max(rowid): FTS5 reads every row for it
            row = self._conn.execute(f"SELECT rowid FROM {_FTS_TABLE} ORDER BY rowid DESC LIMIT 1").fetchone()
        return 0 if row is None else int(row[0])

    def search(
        self, terms: Sequence[str], *, limit: int, conversation: str | None = None
    ) -> list[tuple[int, float]]:
        if not terms or not self._exists or limit == 0:
            return []
        # each term is a run of word characters (no quote), as a quoted prefix term: never syntax
        where = f"{_FTS_TABLE} MATCH ?"
        args: list[Any] = [" ".join(f'"{term}"*' for term in terms)]
        if conversation is not None:
            where += " AND conversation = ?"
            args.append(conversation)
        # BM25 is computed for every match before the best are picked, which takes a second
        # for a word in half a million messages: rank only the newest RANK_WINDOW matches
        # (found in rowid order, which the index holds ready).
        floor_sql = f"SELECT rowid FROM {_FTS_TABLE} WHERE {where} ORDER BY rowid DESC LIMIT 1 OFFSET ?"
        sql = (
            f"SELECT rowid, -bm25({_FTS_TABLE}) AS score FROM {_FTS_TABLE} "
            f"WHERE {where} AND rowid >= ? ORDER BY score DESC, rowid DESC LIMIT ?"
        )
        with self._lock:
            try:
                floor = self._conn.execute(floor_sql, [*args, RANK_WINDOW - 1]).fetchone()
                bound = int(floor[0]) if floor is not None else 0
                rows = self._conn.execute(sql, [*args, bound, limit]).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"search failed in {self._path}: {exc}") from exc
        return [(int(r[0]), float(r[1])) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


MAX_LEXEME = 200
"""Words are indexed on PostgreSQL by their first this-many characters (a lexeme holds at most
2,047 bytes); the store's check of every hit against the text keeps longer words exact."""
MAX_TSVECTOR = 256 * 1024
"""A message whose words make a longer tsvector literal (PostgreSQL's limit is 1 MiB) is stored
as ``overflow``: a candidate for every query, checked against its text by the store."""


def _lexeme(word: str) -> str:
    return "'" + word[:MAX_LEXEME].replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector_literal(found: Sequence[str]) -> str | None:
    """The ``tsvector`` input of a message's words with their positions (at most 256 per
    word, as PostgreSQL keeps), or None when it would exceed :data:`MAX_TSVECTOR`."""
    positions: dict[str, list[int]] = {}
    for position, word in enumerate(found, start=1):
        kept = positions.setdefault(_lexeme(word), [])
        if len(kept) < 256:
            kept.append(min(position, 16383))
    text = " ".join(f"{lexeme}:{','.join(map(str, at))}" for lexeme, at in positions.items())
    return None if len(text) > MAX_TSVECTOR else text


def tsquery_literal(terms: Sequence[str]) -> str:
    """Every term as a quoted prefix lexeme, all required: ``'a':* & 'b':*``. Lexemes in a
    ``tsquery`` literal are taken as written (no parser, no stemming, no syntax inside quotes)."""
    return " & ".join(f"{_lexeme(term)}:*" for term in terms)


class _ServerSearchIndex:
    """A full-text index in a server store's table (``table``, created by the driver's
    migrations), over one connection of its own made by ``connect`` (autocommit) on first use
    and again after an error; ``errors``: what the client library raises. ``read_only``: never
    written. :func:`search_index_for` builds it from a driver (the client library is imported
    only by the driver's modules)."""

    name = ""

    def __init__(
        self,
        connect: Callable[[], Any],
        table: str,
        *,
        errors: tuple[type[BaseException], ...] = (),
        read_only: bool = False,
    ) -> None:
        self._connect = connect
        self._errors = errors
        self._table = table  # quoted and validated by the driver's table_names()
        self._read_only = read_only
        self._lock = threading.Lock()
        self._conn: Any = None

    def _run(self, what: str, work: Callable[[Any], Any]) -> Any:
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self._connect()
                return work(self._conn)
            except self._errors as exc:
                conn, self._conn = self._conn, None  # reconnect next time
                if conn is not None:
                    with contextlib.suppress(*self._errors):
                        conn.close()
                raise StorageError(f"cannot {what} the {self.name} search index: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(*self._errors):
                    conn.close()


class PostgresSearchIndex(_ServerSearchIndex):
    """The ``tsvector`` index in a PostgreSQL store (psycopg connection)."""

    name = "postgresql-tsvector"

    def add(self, messages: Sequence[RecordedMessage]) -> None:
        if self._read_only or not messages:
            return
        rows = []
        for m in messages:
            literal = tsvector_literal(words(m.text or ""))
            rows.append((m.offset, m.conversation, literal or "", literal is None))
        sql = (
            f"INSERT INTO {self._table} (msg_offset, conversation, words, overflow) "
            "VALUES (%s, %s, %s::tsvector, %s) ON CONFLICT (msg_offset) DO UPDATE SET "
            "conversation = EXCLUDED.conversation, words = EXCLUDED.words, overflow = EXCLUDED.overflow"
        )

        def work(conn: Any) -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(sql, rows)

        self._run("write", work)

    def indexed_upto(self) -> int:
        sql = f"SELECT coalesce(max(msg_offset), 0) FROM {self._table}"
        return int(self._run("read", lambda conn: conn.execute(sql).fetchone()[0]))

    def search(
        self, terms: Sequence[str], *, limit: int, conversation: str | None = None
    ) -> list[tuple[int, float]]:
        if not terms or limit == 0:
            return []
        query = tsquery_literal(terms)
        conv = " AND conversation = %(c)s" if conversation is not None else ""
        # the matches and the overflow rows apart (an OR would keep the planner off the GIN
        # index), each the newest RANK_WINDOW; an overflow row's words are empty, never a match
        sql = (
            f"WITH recent AS ((SELECT msg_offset, words FROM {self._table} "
            f"WHERE words @@ %(q)s::tsquery{conv} ORDER BY msg_offset DESC LIMIT %(window)s) UNION ALL "
            f"(SELECT msg_offset, words FROM {self._table} WHERE overflow{conv} "
            "ORDER BY msg_offset DESC LIMIT %(window)s)) "
            "SELECT msg_offset, ts_rank(words, %(q)s::tsquery) AS score FROM recent "
            "ORDER BY score DESC, msg_offset DESC LIMIT %(limit)s"
        )
        params = {"q": query, "c": conversation, "window": RANK_WINDOW, "limit": limit}
        rows = self._run("search", lambda conn: conn.execute(sql, params).fetchall())
        return [(int(r[0]), float(r[1])) for r in rows]


MAX_MYSQL_TOKEN = 80
"""InnoDB indexes tokens of at most 84 characters: a word is indexed as ``kw`` and the first
80 hex digits of its UTF-8 (40 bytes); the store's check of every hit keeps longer words exact."""
MAX_MYSQL_WORDS = 1 << 20
"""A message whose encoded words are longer is stored as ``overflow`` (see MAX_TSVECTOR)."""


def mysql_token(word: str) -> str:
    """A word as the MySQL index holds it: ``kw`` + hex of its UTF-8, at most 82 characters, so
    InnoDB's parser, its minimum token size (3) and its stopwords never split or drop one."""
    return "kw" + word.encode("utf-8", "surrogatepass").hex()[:MAX_MYSQL_TOKEN]


class MysqlSearchIndex(_ServerSearchIndex):
    """The ``FULLTEXT`` index in a MySQL/MariaDB store (pymysql connection), queried in boolean
    mode with every term a required prefix (``+kw6465706c6f79*``), ranked by InnoDB's relevance."""

    name = "mysql-fulltext"

    def add(self, messages: Sequence[RecordedMessage]) -> None:
        if self._read_only or not messages:
            return
        rows = []
        for m in messages:
            text = " ".join(mysql_token(w) for w in words(m.text or ""))
            overflow = len(text) > MAX_MYSQL_WORDS
            rows.append((m.offset, m.conversation, "" if overflow else text, overflow))
        sql = (
            f"INSERT INTO {self._table} (msg_offset, conversation, words, overflow) "
            "VALUES (%s, %s, %s, %s) ON DUPLICATE KEY UPDATE conversation = VALUES(conversation), "
            "words = VALUES(words), overflow = VALUES(overflow)"
        )

        def work(conn: Any) -> None:
            with conn.cursor() as cur:
                cur.executemany(sql, rows)

        self._run("write", work)

    def indexed_upto(self) -> int:
        sql = f"SELECT coalesce(max(msg_offset), 0) FROM {self._table}"

        def work(conn: Any) -> int:
            with conn.cursor() as cur:
                cur.execute(sql)
                return int(cur.fetchone()[0])

        return int(self._run("read", work))

    def search(
        self, terms: Sequence[str], *, limit: int, conversation: str | None = None
    ) -> list[tuple[int, float]]:
        if not terms or limit == 0:
            return []
        query = " ".join(f"+{mysql_token(t)}*" for t in terms)  # kw and hex digits: no syntax
        conv = " AND conversation = %s" if conversation is not None else ""
        extra = [conversation] if conversation is not None else []
        sql = (
            "(SELECT msg_offset, score FROM (SELECT msg_offset, "
            f"MATCH(words) AGAINST (%s IN BOOLEAN MODE) AS score FROM {self._table} "
            f"WHERE MATCH(words) AGAINST (%s IN BOOLEAN MODE){conv} "
            "ORDER BY msg_offset DESC LIMIT %s) AS matched) UNION ALL "
            f"(SELECT msg_offset, 0 AS score FROM {self._table} WHERE overflow{conv} "
            "ORDER BY msg_offset DESC LIMIT %s) ORDER BY score DESC, msg_offset DESC LIMIT %s"
        )
        params = [query, query, *extra, RANK_WINDOW, *extra, RANK_WINDOW, limit]

        def work(conn: Any) -> list[Any]:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())

        rows = self._run("search", work)
        return [(int(r[0]), float(r[1])) for r in rows]


def search_index_for(driver: Any) -> SearchIndex | None:
    """The search index of the store behind ``driver`` (sync or async): FTS5 for SQLite, the
    tsvector table for PostgreSQL, None (the scanning fallback) for the others."""
    inner = getattr(driver, "sync_driver", driver)
    from runtime_persistence.storage.drivers.sqlite import SqliteDriver

    if isinstance(inner, SqliteDriver):
        return SqliteSearchIndex(inner.path, read_only=bool(getattr(inner, "_read_only", False)))
    # a PostgreSQL driver exists only if its module was imported (psycopg is an extra)
    for module_name, class_name in (
        ("runtime_persistence.storage.drivers._sync.postgres", "PostgresDriver"),
        ("runtime_persistence.storage.drivers._async.postgres", "AsyncPostgresDriver"),
    ):
        module = sys.modules.get(module_name)
        if module is not None and isinstance(inner, getattr(module, class_name)):
            from runtime_persistence.storage.drivers import _postgres_sql as pg

            psycopg = module.psycopg  # the driver's own import
            # the driver's connection settings: autocommit, and no prepared statements with
            # prepare=0 (PgBouncer in transaction mode)
            kwargs = {**inner._connect_kwargs, "autocommit": True}
            table = pg.table_names(inner._prefix, inner._schema)["search"]
            return PostgresSearchIndex(
                functools.partial(psycopg.connect, inner._conninfo, **kwargs),
                table,
                errors=(psycopg.Error,),
                read_only=inner._read_only,
            )
    for module_name, class_name in (
        ("runtime_persistence.storage.drivers._sync.mysql", "MysqlDriver"),
        ("runtime_persistence.storage.drivers._async.mysql", "AsyncMysqlDriver"),
    ):
        module = sys.modules.get(module_name)
        if module is not None and isinstance(inner, getattr(module, class_name)):
            from runtime_persistence.storage.drivers import _mysql_sql as my

            pymysql = module.pymysql  # the driver's own import
            params = {**inner._params, "autocommit": True}
            return MysqlSearchIndex(
                functools.partial(pymysql.connect, **params),
                my.table_names(inner._prefix)["search"],
                errors=(pymysql.MySQLError,),
                read_only=inner._read_only,
            )
    return None
