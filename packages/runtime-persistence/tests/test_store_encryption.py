"""``encrypt_store`` (the engine of ``keepup store encrypt``): every record rewritten bound and
encrypted, the data unchanged, a dry run writes nothing, a second run rewrites nothing, and a
run killed part-way is finished by running it again (issue 11, hole 1)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from runtime_core import CorruptionError, Driver
from runtime_persistence import (
    RECORD_NAMESPACES,
    Artifacts,
    Checkpoints,
    EnvelopeSerializer,
    Keyring,
    Leases,
    Sessions,
    Tasks,
    encrypt_store,
    open_store,
)
from runtime_persistence.storage.serialization import ENCRYPTION_AES_GCM, FORMAT_VERSION, MAGIC
from runtime_persistence.testing import TestStore, store_fixture

store = store_fixture()
KEY = b"\x07" * 32
FORMAT1_STORE = Path(__file__).parent / "data" / "format1-store.sqlite"


def _ring() -> Keyring:
    return Keyring({"k1": KEY})


def _fill(driver: Driver, ser: EnvelopeSerializer | None = None, threads: int = 2) -> None:
    cps = Checkpoints(driver, serializer=ser)
    for n in range(threads):
        t = cps.create_thread(f"t{n}", metadata={"n": n})
        cp = cps.save(t.id, {"messages": [f"hello {n}"], "big": "x" * 3000})
        cps.save(t.id, {"messages": [f"m{i}" for i in range(2100)]}, label=f"l{n}")
        cps.put_writes(cp.id, "task", {"messages": "pending"})
        cps.pin(cp.id, "keep")
    Artifacts(driver, serializer=ser).put("s", "a.txt", b"artifact bytes")
    Sessions(driver, serializer=ser).open("session")
    tasks = Tasks(driver, serializer=ser)
    tasks.log(tasks.create("task").id, "line")
    Leases(driver, serializer=ser).acquire(cps.list_threads()[0].id, "run", timedelta(minutes=5))


def _snapshot(driver: Driver, ser: EnvelopeSerializer | None = None) -> Any:
    cps = Checkpoints(driver, serializer=ser)
    out: list[Any] = []
    for t in sorted(cps.list_threads(), key=lambda t: t.name):
        out.append((t.name, t.metadata))
        for c in cps.list(t.id):
            out.append((c.id, c.label, c.state, [(w.task_id, w.value) for w in c.pending_writes]))
    out.append(Artifacts(driver, serializer=ser).get("s", "a.txt")[1])
    out.append([s.name for s in Sessions(driver, serializer=ser).list()])
    return out


def _records(driver: Driver) -> list[bytes]:
    return [e.value for ns in RECORD_NAMESPACES for e in driver.scan(ns) if bytes(e.value[:2]) == MAGIC]


def _all_sealed(driver: Driver) -> bool:
    return all(v[2] == FORMAT_VERSION and v[5] == ENCRYPTION_AES_GCM for v in _records(driver))


def test_a_store_is_encrypted_and_reads_the_same_with_the_key(store: TestStore) -> None:
    _fill(store.driver)
    before = _snapshot(store.driver)
    raw = {ns: {e.key: e.value for e in store.driver.scan(ns)} for ns in RECORD_NAMESPACES}
    dry = encrypt_store(store.driver, _ring(), dry_run=True)
    assert dry.rewritten > 20 and dry.already == 0 and not dry.damaged
    assert {ns: {e.key: e.value for e in store.driver.scan(ns)} for ns in RECORD_NAMESPACES} == raw
    report = encrypt_store(store.driver, _ring())
    assert (report.rewritten, report.already, report.not_envelopes) == (
        dry.rewritten,
        0,
        dry.not_envelopes,
    )
    assert _all_sealed(store.driver)
    strict = EnvelopeSerializer(keyring=_ring())
    assert _snapshot(store.driver, strict) == before
    again = encrypt_store(store.driver, _ring())
    assert (again.rewritten, again.already) == (0, report.rewritten)
    with pytest.raises(Exception, match="keyring"):  # the plaintext reader is locked out
        Checkpoints(store.driver).list_threads()


def test_rotation_rewrites_records_under_the_new_key(store: TestStore) -> None:
    _fill(store.driver, EnvelopeSerializer(keyring=_ring()), threads=1)
    ring = _ring()
    ring.add("k2", b"\x08" * 32)
    report = encrypt_store(store.driver, ring)
    assert report.rewritten > 5 and report.already == 0
    assert all(b"k2" in v[:16] for v in _records(store.driver))
    assert _snapshot(store.driver, EnvelopeSerializer(keyring=ring))


def test_a_store_written_before_binding_is_encrypted_and_read_under_the_key(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    shutil.copy(FORMAT1_STORE, path)
    driver = open_store(f"sqlite:///{path}")
    try:
        before = Checkpoints(driver).list_threads()
        history = {t.id: [c.state for c in Checkpoints(driver).list(t.id)] for t in before}
        encrypt_store(driver, _ring())
        assert _all_sealed(driver)
        cps = Checkpoints(driver, serializer=EnvelopeSerializer(keyring=_ring()))
        assert {t.id: [c.state for c in cps.list(t.id)] for t in cps.list_threads()} == history
    finally:
        driver.close()


def test_a_damaged_record_is_reported_and_the_rest_is_still_encrypted(store: TestStore) -> None:
    _fill(store.driver, threads=1)
    (victim,) = [e for e in store.driver.scan("thread")]
    store.driver.put("thread", victim.key, victim.value[:-1] + bytes([victim.value[-1] ^ 1]))
    report = encrypt_store(store.driver, _ring())
    assert [(ns, key) for ns, key, _ in report.damaged] == [("thread", victim.key)]
    assert report.rewritten > 5
    with pytest.raises(CorruptionError):
        Checkpoints(store.driver, serializer=EnvelopeSerializer(keyring=_ring())).get_thread(victim.key)


_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from runtime_persistence import Keyring, encrypt_store, open_store

    driver = open_store(sys.argv[1])
    stop_after = int(sys.argv[2])

    def progress(report):
        if report.rewritten >= stop_after:
            os.kill(os.getpid(), signal.SIGKILL)

    encrypt_store(driver, Keyring({"k1": bytes([7]) * 32}), progress=progress)
    """
)


@pytest.mark.parametrize(("name", "stop_after"), [("sqlite", 17), ("file", 1), ("file", 41)])
def test_a_run_killed_part_way_is_finished_by_running_it_again(
    tmp_path: Path, name: str, stop_after: int
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}" if name == "sqlite" else f"file://{tmp_path / 'store'}"
    driver = open_store(url)
    _fill(driver, threads=5)
    before = _snapshot(driver)
    total = encrypt_store(driver, _ring(), dry_run=True).rewritten
    assert total > 41
    driver.close()
    killed = subprocess.run([sys.executable, "-c", _KILLER, url, str(stop_after)], check=False)
    assert killed.returncode == -signal.SIGKILL
    driver = open_store(url)
    try:
        half = encrypt_store(driver, _ring(), dry_run=True)
        assert half.rewritten == total - stop_after  # the kill landed part-way
        assert half.already == stop_after
        rest = encrypt_store(driver, _ring())
        assert rest.rewritten == total - stop_after and not rest.damaged
        assert _all_sealed(driver)
        assert _snapshot(driver, EnvelopeSerializer(keyring=_ring())) == before
    finally:
        driver.close()


def test_an_import_into_an_encrypted_store_writes_bound_encrypted_records(tmp_path: Path) -> None:
    import io

    from runtime_persistence.checkpoint.export import export_threads, import_threads

    source = Checkpoints(open_store("memory://"))
    t = source.create_thread("exported")
    source.save(t.id, {"messages": [f"m{i}" for i in range(40)], "doc": "d" * 3000})
    buf = io.BytesIO()
    export_threads(source, buf)
    target_driver = open_store("memory://")
    target = Checkpoints(target_driver, serializer=EnvelopeSerializer(keyring=_ring()))
    import_threads(target, io.BytesIO(buf.getvalue()))
    assert _all_sealed(target_driver)
    latest = target.latest(t.id)
    assert latest is not None and latest.state["doc"] == "d" * 3000 and len(latest.state["messages"]) == 40
