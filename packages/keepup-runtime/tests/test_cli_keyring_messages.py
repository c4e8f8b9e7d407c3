"""Recorded messages on an encrypted store (issue 11): with the home's keyring, `keepup messages`
refuses messages recorded in plaintext until `keepup store encrypt` rewrites them; afterwards no
message text is left in the store's records (the full-text index keeps its words, by design) and
`keepup messages search` and the browser's search still find them."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from keepup._browse.source import StoreSource
from keepup._cli.exit_codes import ExitCode
from keepup.cli import app
from runtime_persistence import Incoming, MessageStore, open_store
from runtime_persistence.storage.encryption import read_keyring_file
from runtime_persistence.storage.serialization import EnvelopeSerializer
from typer.testing import CliRunner, Result

MARKER = "narwhalfiddle"


def invoke(home: Path, *args: str) -> Result:
    env: dict[str, str | None] = {
        "KEEPUP_HOME": str(home),
        "KEEPUP_STORE_URL": None,
        "KEEPUP_KEYRING": None,
        "KEEPUP_DEBUG": None,
        "HOME": str(home.parent),
    }
    return CliRunner().invoke(app, list(args), env=env)


def record_rows_with(path: Path, marker: str) -> list[str]:
    """The tables of the SQLite store at ``path`` with a row holding ``marker``, the recorder's
    full-text index (keepup_message_words*, plaintext words by design) left out."""
    found = []
    with sqlite3.connect(path) as conn:
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            if table.startswith("keepup_message_words"):
                continue
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                if any(
                    isinstance(c, (str, bytes))
                    and marker.encode() in (c.encode() if isinstance(c, str) else c)
                    for c in row
                ):
                    found.append(table)
    return found


@pytest.fixture
def home(tmp_path: Path) -> Path:
    old = os.umask(0o022)
    yield tmp_path / "home"
    os.umask(old)


def test_store_encrypt_then_messages_search_finds_the_recorded_messages(tmp_path: Path, home: Path) -> None:
    db = tmp_path / "store.db"
    url = f"sqlite:///{db}"
    driver = open_store(url)
    store = MessageStore(driver)
    when = datetime(2026, 1, 2, tzinfo=UTC)
    store.append(
        [
            Incoming(
                "chat",
                json.dumps({"id": f"m{i}", "sender": "bob", "seq": i, "text": f"{MARKER} {i}"}).encode(),
                when,
                "zmq",
            )
            for i in range(1, 11)
        ]
    )
    store.close()
    driver.close()
    assert record_rows_with(db, MARKER)

    assert invoke(home, "--store", url, "store", "key", "new", "k1").exit_code == 0
    refused = invoke(home, "--store", url, "messages", "search", MARKER, "--json")
    assert refused.exit_code == ExitCode.CORRUPT, refused.output  # plaintext refused under a keyring
    done = invoke(home, "--store", url, "store", "encrypt", "--yes", "--json")
    assert done.exit_code == 0, done.output
    assert record_rows_with(db, MARKER) == []

    found = invoke(home, "--store", url, "messages", "search", MARKER, "--json")
    assert found.exit_code == 0, found.output
    hits = json.loads(found.stdout)["hits"]
    assert sorted(h["message"]["text"] for h in hits) == sorted(f"{MARKER} {i}" for i in range(1, 11))
    recent = invoke(home, "--store", url, "messages", "recent", "--json")
    assert recent.exit_code == 0, recent.output
    assert MARKER in recent.stdout

    ring = EnvelopeSerializer(keyring=read_keyring_file(home / "keyring.toml"))

    async def browse() -> list[str]:
        source = await StoreSource.open(url, home=home, serializer=ring)
        try:
            return [h.text for h in await source.search(MARKER)]
        finally:
            await source.close()

    assert sorted(asyncio.run(browse())) == sorted(f"{MARKER} {i}" for i in range(1, 11))
