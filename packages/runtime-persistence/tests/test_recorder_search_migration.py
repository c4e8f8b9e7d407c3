"""The PostgreSQL and MySQL search indexes arrive by a forward migration: a store written at schema
version 2 (before the index) with recorded messages in it is migrated when it is opened, its
messages are found at once (the scan of what the index has not reached) and catch_up_index()
indexes them. Then a message too large for the index is kept as an overflow row."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from runtime_persistence import Incoming, MessageStore, open_store
from runtime_persistence.session.recorder.search import MysqlSearchIndex, PostgresSearchIndex
from runtime_persistence.storage.drivers import _mysql_sql as my
from runtime_persistence.storage.drivers import _postgres_sql as pg

KINDS: dict[str, tuple[str, ModuleType, type[Any]]] = {
    "postgres": ("KEEPUP_TEST_POSTGRES_URL", pg, PostgresSearchIndex),
    "mysql": ("KEEPUP_TEST_MYSQL_URL", my, MysqlSearchIndex),
}
NOW = datetime(2026, 1, 2, tzinfo=UTC)


def batch(start: int, n: int) -> list[Incoming]:
    return [
        Incoming(
            "agents",
            json.dumps(
                {"id": f"m{i}", "sender": "s", "seq": i, "conversation": "c", "text": f"note {i} about Café"}
            ).encode(),
            NOW,
            "zmq",
        )
        for i in range(start, start + n)
    ]


def search_table_exists(kind: str, url: str, prefix: str) -> bool:
    table = f"{prefix}keepup_message_search"
    if kind == "postgres":
        import psycopg

        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT to_regclass(%s)", (f'"{table}"',)).fetchone()
        return row is not None and row[0] is not None
    import pymysql

    params = my.connect_params(url, connect_timeout=10, unix_socket=None, ssl_ca=None)
    conn = pymysql.connect(**params)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES LIKE %s", (table,))
            return cur.fetchone() is not None
    finally:
        conn.close()


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_store_at_schema_2_with_messages_is_migrated_and_its_messages_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str
) -> None:
    monkeypatch.setenv("KEEPUP_HOME", str(tmp_path))  # where the backup before the migration goes
    env, sql_module, index_class = KINDS[kind]
    server = os.environ.get(env)
    if not server:
        pytest.skip(f"{env} is not set")
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    url = f"{server}?prefix={prefix}"
    with monkeypatch.context() as old_code:
        old_code.setattr(
            sql_module, "_MIGRATION_STEPS", sql_module._MIGRATION_STEPS[:2]
        )  # the schema before the index
        old = open_store(url)
        try:
            assert old.schema_status().current == 2  # type: ignore[attr-defined]
            store = MessageStore(old, index=None)
            for start in (1, 101, 201):
                store.append(batch(start, 100))
            store.close()
        finally:
            old.close()
    assert not search_table_exists(kind, server, prefix)
    driver = open_store(url)
    try:
        status = driver.schema_status()  # type: ignore[attr-defined]
        assert (status.current, status.latest) == (3, 3)
        assert search_table_exists(kind, server, prefix)
        store = MessageStore(driver)
        assert isinstance(store.index, index_class) and store.index.indexed_upto() == 0
        # found before they are indexed: the search scans what the index has not reached
        assert {h.message.seq for h in store.search("note 150 cafe", limit=50)} == {150}
        assert len(store.search("cafe", limit=1000)) == 300
        assert store.catch_up_index() == 300
        assert store.index.indexed_upto() == 300
        store.append(batch(301, 5))  # indexed as it is recorded
        assert store.index.indexed_upto() == 305 and store.index_error is None
        assert [h.message.seq for h in store.search("note 302")] == [302]
        assert store.index.search(["note", "302"], limit=5) == [
            (302, pytest.approx(store.search("note 302")[0].rank))
        ]
        assert len(store.search("café", limit=1000)) == 305
        # a message too large for a tsvector is kept as an overflow row: a candidate for every
        # query, found or not by its text
        huge = " ".join(f"zz{n:06d}" for n in range(60_000)) + " needle"
        store.append([Incoming("agents", json.dumps({"id": "big", "text": huge}).encode(), NOW, "zmq")])
        assert store.index.indexed_upto() == 306 and store.index_error is None
        assert [h.message.id for h in store.search("needle")] == ["big"]
        assert [h.message.id for h in store.search("zz059999 needle")] == ["big"]
        assert store.search("haystack") == []
        assert {h.message.seq for h in store.search("note 303")} == {303}
        store.close()
    finally:
        driver.destroy()  # type: ignore[attr-defined]
        driver.close()
    assert not search_table_exists(kind, server, prefix)
