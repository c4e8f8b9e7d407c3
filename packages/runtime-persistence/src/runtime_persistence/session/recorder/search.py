"""Full-text search over recorded messages: a :class:`SearchIndex` kept beside the message store.

* **SQLite** (the default store): an FTS5 table (``keepup_message_fts``, rowid = message offset)
  in the store's own file, ranked by BM25, snippets by FTS5's ``snippet()``.
* **Every other store**: no index; :meth:`MessageStore.search` scans the messages newest first and
  ranks by the number of matches (the documented fallback, linear in the number of messages).

The index is derived data: the message store is the truth. It is written after each committed
batch, and its high-water mark is its largest rowid, so a recorder killed between the two writes
re-indexes the missing tail when it starts (:meth:`MessageStore.catch_up_index`); a search also
scans any tail the index has not reached yet, so it never misses a recorded message."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from runtime_core import StorageError

from runtime_persistence.session.recorder._model import MARK_CLOSE, MARK_OPEN, RecordedMessage, query_terms

__all__ = ["SearchIndex", "SqliteSearchIndex", "search_index_for"]


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
        self, query: str, *, limit: int, conversation: str | None = None
    ) -> list[tuple[int, float, str]]:
        """``(offset, rank, snippet)`` of the best matches of ``query``, best first."""
        ...

    def close(self) -> None: ...


_TABLE = "keepup_message_fts"
RANK_WINDOW = 5000
"""Search ranks the newest this-many matches of a query (all of them when there are fewer)."""


def fts_query(query: str) -> str:
    """``query`` as an FTS5 expression that cannot be a syntax error: every word becomes a quoted
    prefix term, all of them required."""
    return " ".join(f'"{term}"*' for term in query_terms(query))


class SqliteSearchIndex:
    """An FTS5 index in the SQLite store file at ``path`` (``read_only``: never created or
    written; a missing table is an empty index)."""

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
                conn.execute(
                    f"CREATE VIRTUAL TABLE IF NOT EXISTS {_TABLE} USING fts5("
                    "text, conversation UNINDEXED, tokenize='unicode61', prefix='2 3 4')"
                )
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the search index in {path}: {exc}") from exc
        self._conn = conn
        self._exists = read_only is False or self._table_exists()

    def _table_exists(self) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (_TABLE,)
        ).fetchone()
        return row is not None

    def add(self, messages: Sequence[RecordedMessage]) -> None:
        if self._read_only or not messages:
            return
        rows = [(m.offset, m.text or "", m.conversation) for m in messages]
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(
                    f"INSERT OR REPLACE INTO {_TABLE}(rowid, text, conversation) VALUES (?, ?, ?)", rows
                )
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise StorageError(f"cannot write the search index in {self._path}: {exc}") from exc

    def indexed_upto(self) -> int:
        if not self._exists:
            return 0
        with self._lock:
            row = self._conn.execute(f"SELECT max(rowid) FROM {_TABLE}").fetchone()
        return int(row[0] or 0)

    def search(
        self, query: str, *, limit: int, conversation: str | None = None
    ) -> list[tuple[int, float, str]]:
        expr = fts_query(query)
        if not expr or not self._exists or limit == 0:
            return []
        where = f"{_TABLE} MATCH ?"
        args: list[Any] = [expr]
        if conversation is not None:
            where += " AND conversation = ?"
            args.append(conversation)
        # BM25 is computed for every match before the best are picked, which takes a second
        # for a word in half a million messages: rank only the newest RANK_WINDOW matches
        # (found in rowid order, which the index holds ready).
        floor_sql = f"SELECT rowid FROM {_TABLE} WHERE {where} ORDER BY rowid DESC LIMIT 1 OFFSET ?"
        sql = (
            f"SELECT rowid, -bm25({_TABLE}), snippet({_TABLE}, 0, ?, ?, '…', 12) FROM {_TABLE} "
            f"WHERE {where} AND rowid >= ? ORDER BY rank LIMIT ?"
        )
        with self._lock:
            try:
                floor = self._conn.execute(floor_sql, [*args, RANK_WINDOW - 1]).fetchone()
                bound = int(floor[0]) if floor is not None else 0
                rows = self._conn.execute(sql, [MARK_OPEN, MARK_CLOSE, *args, bound, limit]).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"search failed in {self._path}: {exc}") from exc
        return [(int(r[0]), float(r[1]), str(r[2])) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def search_index_for(driver: Any) -> SearchIndex | None:
    """The search index of the store behind ``driver`` (sync or async): FTS5 for SQLite, None
    (the scanning fallback) for the others."""
    inner = getattr(driver, "sync_driver", driver)
    from runtime_persistence.storage.drivers.sqlite import SqliteDriver

    if isinstance(inner, SqliteDriver):
        return SqliteSearchIndex(inner.path, read_only=bool(getattr(inner, "_read_only", False)))
    return None
