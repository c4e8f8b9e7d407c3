"""The recorder's message store on an encrypted store (issue 11: an encrypted store refuses every
plaintext or misplaced record): with the runtime's keyring serializer its records are encrypted
(no message text left in the store's rows, except the full-text index, plaintext by design), a
plaintext or misplaced record is refused with CorruptionError, and ``encrypt_store`` rewrites a
store recorded in plaintext so that the keyring store still reads and searches it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from runtime_core import CorruptionError, Put, ValidationError
from runtime_persistence import Incoming, MessageStore
from runtime_persistence.encryption import RECORD_NAMESPACES, UNENCRYPTED_NAMESPACES, encrypt_store
from runtime_persistence.session.recorder._model import (
    MESSAGE_CHUNK_NS,
    MESSAGE_CONV_NS,
    MESSAGE_ID_NS,
    MESSAGE_NS,
    MESSAGE_STATE_NS,
    MESSAGE_THREAD_NS,
    STATE_KEY,
)
from runtime_persistence.storage.serialization import EnvelopeSerializer, Keyring
from runtime_persistence.storage.stores import open_store

MARKER = "zebracornquill"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
KEY = bytes(range(32))


def _wire(seq: int, text: str) -> Incoming:
    body = {"id": f"alice-{seq}", "sender": "alice", "seq": seq, "conversation": "c1", "text": text}
    return Incoming("agents.chat", json.dumps(body).encode(), NOW, "zmq")


def _batch(n: int = 20) -> list[Incoming]:
    return [_wire(i, f"message {i} says {MARKER}") for i in range(1, n + 1)]


def _keyring() -> Keyring:
    return Keyring({"k1": KEY}, active="k1")


def rows_with(path: Path, marker: str) -> list[str]:
    """The tables of the SQLite file at ``path`` with a row holding ``marker`` (in text or
    bytes), the recorder's full-text index (plaintext words, by design) left out."""
    found = []
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            if table.startswith("keepup_message_words"):
                continue
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for cell in row:
                    if (isinstance(cell, str) and marker in cell) or (
                        isinstance(cell, bytes) and marker.encode() in cell
                    ):
                        found.append(table)
    return found


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def driver(db: Path) -> Iterator[object]:
    made = open_store(f"sqlite:///{db}")
    yield made
    made.close()


def test_every_recorder_and_adk_namespace_is_encrypted_by_store_encrypt() -> None:
    for ns in (
        MESSAGE_NS,
        MESSAGE_CHUNK_NS,
        MESSAGE_STATE_NS,
        MESSAGE_ID_NS,
        MESSAGE_CONV_NS,
        MESSAGE_THREAD_NS,
    ):
        assert ns in RECORD_NAMESPACES
    assert {"adk.session", "adk.state", "adk.event"} <= set(RECORD_NAMESPACES)
    assert not UNENCRYPTED_NAMESPACES


def test_with_a_keyring_no_message_is_readable_in_the_raw_store(driver: object, db: Path) -> None:
    store = MessageStore(driver, serializer=EnvelopeSerializer(keyring=_keyring()))  # type: ignore[arg-type]
    try:
        assert len(store.append(_batch()).recorded) == 20
        assert len(store.search(MARKER, limit=50)) == 20  # the index still finds them
        assert [m.text for m in store.read(limit=2)] == [f"message {i} says {MARKER}" for i in (1, 2)]
    finally:
        store.close()
    assert rows_with(db, MARKER) == []
    assert rows_with(db, "alice") == []  # senders and ids are inside the sealed records too


def test_a_plaintext_or_misplaced_record_is_refused_by_a_keyring_store(driver: object) -> None:
    ring = EnvelopeSerializer(keyring=_keyring())
    store = MessageStore(driver, serializer=ring)  # type: ignore[arg-type]
    try:
        store.append(_batch(40))
        chunks = list(driver.scan(MESSAGE_CHUNK_NS))  # type: ignore[attr-defined]
        assert len(chunks) >= 2
        # an intact encrypted chunk copied over another: misplaced
        driver.put(MESSAGE_CHUNK_NS, chunks[1].key, chunks[0].value)  # type: ignore[attr-defined]
        with pytest.raises(CorruptionError):
            list(MessageStore(driver, serializer=ring).read(limit=100))  # type: ignore[arg-type]
        # a plaintext chunk, checksummed and bound to its place, but not encrypted
        plain = EnvelopeSerializer()
        first = chunks[0].key
        inner = ring.loads(chunks[0].value, bytes, at=(MESSAGE_CHUNK_NS, first))
        driver.put(MESSAGE_CHUNK_NS, first, plain.dumps(inner, at=(MESSAGE_CHUNK_NS, first)))  # type: ignore[attr-defined]
        with pytest.raises(CorruptionError):
            MessageStore(driver, serializer=ring).get(1)  # type: ignore[arg-type]
        # a plaintext recorder state
        state = driver.get(MESSAGE_STATE_NS, STATE_KEY)  # type: ignore[attr-defined]
        decoded = ring.loads(state.value, at=(MESSAGE_STATE_NS, STATE_KEY))
        driver.batch(  # type: ignore[attr-defined]
            [Put(MESSAGE_STATE_NS, STATE_KEY, plain.dumps(decoded, at=(MESSAGE_STATE_NS, STATE_KEY)))]
        )
        with pytest.raises(CorruptionError):
            MessageStore(driver, serializer=ring).state()  # type: ignore[arg-type]
    finally:
        store.close()


def test_store_encrypt_rewrites_recorded_messages_and_the_keyring_store_still_finds_them(
    driver: object, db: Path
) -> None:
    plain = MessageStore(driver)  # type: ignore[arg-type]
    try:
        plain.append(_batch())
    finally:
        plain.close()
    assert rows_with(db, MARKER)  # recorded without a keyring: plaintext
    report = encrypt_store(driver, _keyring())  # type: ignore[arg-type]
    assert report.by_namespace[MESSAGE_CHUNK_NS]["rewritten"] >= 2
    assert report.by_namespace[MESSAGE_STATE_NS]["rewritten"] == 1
    assert rows_with(db, MARKER) == []
    ring = MessageStore(driver, serializer=EnvelopeSerializer(keyring=_keyring()))  # type: ignore[arg-type]
    try:
        hits = ring.search(MARKER, limit=50)
        assert len(hits) == 20 and all(MARKER in h.message.text for h in hits)
        assert ring.state().messages == 20
    finally:
        ring.close()
    with pytest.raises(ValidationError, match="keyring"):  # and a plain reader is locked out
        MessageStore(driver).get(1)  # type: ignore[arg-type]
