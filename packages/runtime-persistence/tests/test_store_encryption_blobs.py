"""``encrypt_store`` re-encrypts checkpoint blobs too (issue 11, hole 1 remainder): after it, no
checkpoint content is left in plaintext anywhere in the store, proven by scanning the raw rows
(SQLite, PostgreSQL) and files (file store) for markers written into every kind of value: inline,
KV blob, chunked list, blob-area blob, pending write, a copied thread's shared blobs and the blobs
of a pruned checkpoint. The dry run changes no byte, a second run does nothing, a run killed in
the blob phase is finished by running it again, and every state reads back equal under the key."""

from __future__ import annotations

import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from runtime_core import Driver
from runtime_persistence import Checkpoints, EnvelopeSerializer, Keyring, encrypt_store, open_store
from runtime_persistence.encryption import scrub_sqlite_store
from runtime_persistence.testing import open_test_store
from runtime_persistence.testing.backends import server_url

KEY = bytes([7]) * 32


def _ring() -> Keyring:
    return Keyring({"k1": KEY})


def _fill(driver: Driver, marker: str) -> Any:
    """A plaintext store whose checkpoint content carries ``marker`` in every storage kind;
    returns what must read back."""
    cps = Checkpoints(driver)
    t = cps.create_thread("secrets")
    big = os.urandom(700_000).hex()  # 1.4 MB of hex: compressed it still passes KV_BLOB_MAX
    cps.save(t.id, {"note": f"inline {marker}", "doc": f"{marker} " + "d" * 3000})
    gone = cps.save(t.id, {"doc": f"pruned {marker} " + "p" * 3000})  # its blob becomes garbage
    cp = cps.save(
        t.id,
        {
            "note": f"inline {marker}",
            "messages": [f"message {i} {marker}" for i in range(40)],  # chunked
            "area": f"{marker}{big}{marker}",  # the blob area
        },
    )
    cps.put_writes(cp.id, "task", {"pending": f"pending {marker} " + "w" * 2000})
    last = cps.save(t.id, {"messages": [f"message {i} {marker}" for i in range(41)], "doc": "x" * 500})
    cps.copy_thread(t.id, name="copy")  # shares every blob with the original
    assert cps.delete_checkpoints([gone.id]) == [gone.id]  # its blob is now named by no record
    return _state(driver, None), last.id


def _state(driver: Driver, ser: EnvelopeSerializer | None) -> Any:
    cps = Checkpoints(driver, serializer=ser)
    out = []
    for t in sorted(cps.list_threads(), key=lambda t: t.name):
        for c in cps.list(t.id):
            out.append((t.name, c.state, sorted((w.task_id, w.channel, w.value) for w in c.pending_writes)))
    return out


def _raw(name: str, url: str) -> bytes:
    """Every stored byte of the store, as the database or file system holds it."""
    if name == "sqlite":
        path = urlsplit(url).path.lstrip("/")
        path = "/" + path if not path.startswith("/") else path
        con = sqlite3.connect(path)
        try:
            # the rows, and the files' own bytes (free pages and the WAL included)
            parts = [Path(f).read_bytes() for f in (path, path + "-wal") if Path(f).exists()]
            for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'"):
                for row in con.execute(f'SELECT * FROM "{table}"'):
                    parts += [v if isinstance(v, bytes) else str(v).encode() for v in row]
            return b"\0".join(parts)
        finally:
            con.close()
    if name == "file":
        root = Path(urlsplit(url).path)
        return b"\0".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())
    import psycopg

    prefix = parse_qs(urlsplit(url).query)["prefix"][0]
    base = server_url("postgres")
    assert base is not None
    with psycopg.connect(base) as con:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_name LIKE %s",
                (prefix.lower() + "%",),
            )
        ]
        assert tables
        parts = []
        for table in tables:
            for (row,) in con.execute(f'SELECT t::text FROM "{table}" t'):  # bytea as \\x hex
                parts.append(row.encode())
    return b"\0".join(parts)


def _leaks(raw: bytes, marker: str) -> int:
    return raw.count(marker.encode()) + raw.count(marker.encode().hex().encode())


@pytest.mark.parametrize("name", ["sqlite", "file", "postgres"])
def test_after_encrypt_no_checkpoint_content_is_left_in_plaintext(name: str, tmp_path: Path) -> None:
    marker = f"PLAIN-{secrets.token_hex(6)}"
    with open_test_store(name, tmp_path) as store:
        assert store.url is not None
        expected, _ = _fill(store.driver, marker)
        before = _raw(name, store.url)
        assert _leaks(before, marker) >= 6  # the scan sees the plaintext it must later not see

        dry = encrypt_store(store.driver, _ring(), dry_run=True)
        assert dry.blobs_rewritten > 0 and dry.records_relinked > 0 and dry.blobs_removed > 0
        assert _raw(name, store.url) == before  # the dry run wrote nothing

        done = encrypt_store(store.driver, _ring())
        assert scrub_sqlite_store(store.url) is (name == "sqlite")  # old pages and WAL frames
        assert not done.damaged
        assert (done.blobs_rewritten, done.records_relinked) == (dry.blobs_rewritten, dry.records_relinked)
        assert done.blobs_removed == dry.blobs_removed
        assert _leaks(_raw(name, store.url), marker) == 0, "plaintext left after store encrypt"
        assert _state(store.driver, EnvelopeSerializer(keyring=_ring())) == expected

        again = encrypt_store(store.driver, _ring())
        assert (again.rewritten, again.blobs_rewritten, again.records_relinked, again.blobs_removed) == (
            0,
            0,
            0,
            0,
        )
        # rotation: every blob moves to the new key, and the old key is then not needed
        rotated = Keyring({"k1": KEY, "k2": bytes([9]) * 32}, active="k2")
        moved = encrypt_store(store.driver, rotated)
        assert moved.blobs_rewritten == done.blobs_rewritten + done.blobs_already
        only_new = Keyring({"k2": bytes([9]) * 32})
        assert _state(store.driver, EnvelopeSerializer(keyring=only_new)) == expected
        scrub_sqlite_store(store.url)
        assert _leaks(_raw(name, store.url), marker) == 0


_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from runtime_persistence import Keyring, encrypt_store, open_store

    driver = open_store(sys.argv[1])
    stop_after = int(sys.argv[2])

    def progress(report):
        if report.records_relinked >= stop_after:
            os.kill(os.getpid(), signal.SIGKILL)

    encrypt_store(driver, Keyring({"k1": bytes([7]) * 32}), progress=progress)
    """
)


@pytest.mark.parametrize("name", ["sqlite", "file"])
def test_a_run_killed_in_the_blob_phase_is_finished_by_running_it_again(name: str, tmp_path: Path) -> None:
    marker = f"PLAIN-{secrets.token_hex(6)}"
    url = f"sqlite:///{tmp_path / 's.db'}" if name == "sqlite" else f"file://{tmp_path / 'store'}"
    driver = open_store(url)
    expected, _ = _fill(driver, marker)
    driver.close()
    killed = subprocess.run([sys.executable, "-c", _KILLER, url, "2"], check=False)
    assert killed.returncode == -signal.SIGKILL
    driver = open_store(url)
    try:
        # killed after relinking two records: the store reads under the key already
        assert _state(driver, EnvelopeSerializer(keyring=_ring(), accept_plaintext=True)) == expected
        rest = encrypt_store(driver, _ring())
        scrub_sqlite_store(url)
        assert not rest.damaged and rest.rewritten == 0 and rest.records_relinked > 0
        assert _state(driver, EnvelopeSerializer(keyring=_ring())) == expected
        assert _leaks(_raw(name, url), marker) == 0
    finally:
        driver.close()


def test_a_damaged_checkpoint_record_keeps_every_blob(tmp_path: Path) -> None:
    """A checkpoint record that cannot be read may name any blob: nothing is removed, the damage
    is reported, and the other records are still relinked to encrypted blobs."""
    marker = f"PLAIN-{secrets.token_hex(6)}"
    url = f"sqlite:///{tmp_path / 's.db'}"
    driver = open_store(url)
    try:
        cps = Checkpoints(driver)
        t = cps.create_thread("t")
        first = cps.save(t.id, {"doc": f"{marker} " + "a" * 3000})
        cps.save(t.id, {"doc": f"{marker} " + "b" * 3000})
        from runtime_persistence.checkpoint._records import Record

        plain = EnvelopeSerializer()
        (victim,) = [
            e
            for e in driver.scan("ckpt")
            if "/w/" not in e.key and plain.loads(e.value, Record, at=("ckpt", e.key)).id == first.id
        ]
        blobs_before = {e.key for e in driver.scan("ckpt.blob")}
        driver.put("ckpt", victim.key, victim.value[:-1] + bytes([victim.value[-1] ^ 1]))
        report = encrypt_store(driver, _ring())
        assert [(ns, k) for ns, k, _ in report.damaged] == [("ckpt", victim.key)]  # listed once
        assert report.records_relinked == 1 and report.blobs_removed == 0
        assert blobs_before <= {e.key for e in driver.scan("ckpt.blob")}  # the old blobs stay
    finally:
        driver.close()
