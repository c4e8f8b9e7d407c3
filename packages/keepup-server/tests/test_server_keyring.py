"""`keepup serve` on an encrypted store: the server reads and writes with the keyring in the
Keepup home (or $KEEPUP_KEYRING), as every other command does (issue 11)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from keepup import open_runtime
from runtime_persistence import Incoming, MessageStore
from runtime_persistence.encryption import add_keyring_key

from .conftest import running_server


def test_the_server_reads_an_encrypted_store_with_the_homes_keyring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEEPUP_KEYRING", raising=False)
    add_keyring_key(tmp_path / "keyring.toml", "k1")
    with open_runtime(home=tmp_path) as runtime:  # the home's keyring: an encrypted store
        thread = runtime.checkpoints.create_thread("secret thread")
        runtime.checkpoints.save(thread.id, {"messages": ["a secret"]})
        recorded = MessageStore(runtime.driver, serializer=runtime.serializer)
        body = json.dumps({"id": "m1", "sender": "s", "seq": 1, "text": "a recorded walrusmoon"})
        recorded.append([Incoming("chat", body.encode(), datetime(2026, 1, 1, tzinfo=UTC), "zmq")])
        recorded.close()
    assert b"a secret" not in (tmp_path / "keepup.db").read_bytes()
    with running_server(tmp_path) as server, server.client() as client:
        listed = client.get("/api/threads")
        assert listed.status_code == 200, listed.text
        assert [t["name"] for t in listed.json()["threads"]] == ["secret thread"]
        found = client.get("/api/messages/search", params={"q": "walrusmoon"})
        assert found.status_code == 200, found.text
        assert [h["message"]["text"] for h in found.json()["hits"]] == ["a recorded walrusmoon"]
