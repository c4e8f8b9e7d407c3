"""KeepupSessionService and KeepupArtifactService on an encrypted store (issue 11: an encrypted
store refuses every plaintext or misplaced record): with the runtime's keyring serializer no
session, state or event is readable in the raw store, a plaintext record planted in their
namespaces is refused with CorruptionError, and ``encrypt_store`` rewrites a plaintext store so
the keyring service still reads it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from google.adk.events import Event, EventActions
from google.genai import types
from keepup_adk import KeepupArtifactService, KeepupSessionService
from runtime_core import CorruptionError
from runtime_persistence import open_store_async
from runtime_persistence.artifact._records import ARTIFACT_NS
from runtime_persistence.encryption import encrypt_store
from runtime_persistence.storage.serialization import ENCRYPTION_AES_GCM, EnvelopeSerializer, Keyring
from runtime_persistence.storage.stores import open_store

MARKER = "quokkaplinth"
RING = Keyring({"k1": bytes(range(32))}, active="k1")


def rows_with(path: Path, marker: str) -> list[str]:
    """The tables of the SQLite file at ``path`` with a row holding ``marker``."""
    found = []
    with sqlite3.connect(path) as conn:
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                if any(
                    (isinstance(c, str) and marker in c) or (isinstance(c, bytes) and marker.encode() in c)
                    for c in row
                ):
                    found.append(table)
    return found


def _event(text: str) -> Event:
    return Event(
        id="event-1",
        invocation_id="inv-1",
        author="user",
        timestamp=1_700_000_001.0,
        content=types.Content(role="user", parts=[types.Part(text=text)]),
        actions=EventActions(state_delta={"note": f"delta {MARKER}", "app:shared": MARKER}),
    )


async def _write(url: str, serializer: EnvelopeSerializer | None) -> None:
    driver = await open_store_async(url)
    service = KeepupSessionService(driver, serializer=serializer)
    try:
        session = await service.create_session(
            app_name="app", user_id="u", session_id="s1", state={"secret": MARKER}
        )
        await service.append_event(session, _event(f"hello {MARKER}"))
    finally:
        await driver.close()


async def _read(
    url: str, serializer: EnvelopeSerializer | None, *, again: bool = False
) -> tuple[dict[str, object], list[str]]:
    """The session's state and event texts (``again``: after appending its event again, which
    reads the event's stored record to find it is the same)."""
    driver = await open_store_async(url)
    service = KeepupSessionService(driver, serializer=serializer)
    try:
        session = await service.get_session(app_name="app", user_id="u", session_id="s1")
        assert session is not None
        if again:
            await service.append_event(session, _event(f"hello {MARKER}"))
        texts = [p.text or "" for e in session.events if e.content for p in e.content.parts or []]
        return dict(session.state), texts
    finally:
        await driver.close()


def test_with_a_keyring_no_session_record_is_readable_in_the_raw_store(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    url = f"sqlite:///{db}"
    ring = EnvelopeSerializer(keyring=RING)
    asyncio.run(_write(url, ring))
    assert rows_with(db, MARKER) == []
    state, texts = asyncio.run(_read(url, ring))
    assert state["secret"] == MARKER and state["app:shared"] == MARKER
    assert texts == [f"hello {MARKER}"]
    assert asyncio.run(_read(url, ring, again=True))[1] == texts  # recognised as the same event


@pytest.mark.parametrize("namespace", ["adk.session", "adk.state", "adk.event"])
def test_a_plaintext_record_planted_under_an_adk_namespace_is_refused(tmp_path: Path, namespace: str) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    ring = EnvelopeSerializer(keyring=RING)
    asyncio.run(_write(url, ring))
    driver = open_store(url)
    try:
        entries = list(driver.scan(namespace))
        assert entries
        for entry in entries:  # the same value, sealed without the key (its checksum recomputed)
            value = ring.loads(entry.value, at=(namespace, entry.key))
            driver.put(namespace, entry.key, EnvelopeSerializer().dumps(value, at=(namespace, entry.key)))
    finally:
        driver.close()
    with pytest.raises(CorruptionError):
        asyncio.run(_read(url, ring, again=True))


def test_store_encrypt_rewrites_adk_records_and_the_keyring_service_reads_them(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    url = f"sqlite:///{db}"
    asyncio.run(_write(url, None))
    assert rows_with(db, MARKER)
    driver = open_store(url)
    try:
        report = encrypt_store(driver, RING)
    finally:
        driver.close()
    assert all(report.by_namespace[ns]["rewritten"] >= 1 for ns in ("adk.session", "adk.state", "adk.event"))
    state, texts = asyncio.run(_read(url, EnvelopeSerializer(keyring=RING)))
    assert state["secret"] == MARKER and texts == [f"hello {MARKER}"]
    assert rows_with(db, MARKER) == []


def test_the_artifact_service_takes_the_keyring_too(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    url = f"sqlite:///{db}"
    ring = EnvelopeSerializer(keyring=RING)

    async def run() -> types.Part | None:
        driver = await open_store_async(url)
        service = KeepupArtifactService(driver, serializer=ring)
        try:
            part = types.Part.from_bytes(data=b"x", mime_type="text/plain")
            await service.save_artifact(
                app_name="app", user_id="u", session_id="s1", filename=f"{MARKER}.txt", artifact=part
            )
            return await service.load_artifact(
                app_name="app", user_id="u", session_id="s1", filename=f"{MARKER}.txt"
            )
        finally:
            await driver.close()

    loaded = asyncio.run(run())
    assert loaded is not None and loaded.inline_data is not None and loaded.inline_data.data == b"x"
    driver = open_store(url)
    try:  # the artifact's record (it names the file) is encrypted
        records = [bytes(e.value) for e in driver.scan(ARTIFACT_NS)]
        assert records and {r[5] for r in records} == {ENCRYPTION_AES_GCM}
        assert not any(MARKER.encode() in r for r in records)
    finally:
        driver.close()
