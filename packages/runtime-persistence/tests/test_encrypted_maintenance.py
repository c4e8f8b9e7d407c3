"""Maintenance on an encrypted store: gc, retention, export and import work with the keyring, on a
store holding checkpoints, artifacts (with blob refs) and shared workspace snapshots; nothing needs
a plaintext reader, and the store stays encrypted (issue 11: gc built the artifact and snapshot
root providers' serializers without the keyring and failed with ValidationError)."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from runtime_core import ArtifactRef, CorruptionError, ValidationError
from runtime_persistence import (
    Artifacts,
    Checkpoints,
    EnvelopeSerializer,
    Keyring,
    WorkspaceCheckpoints,
    collect_snapshot_packs,
)
from runtime_persistence.checkpoint.export import export_threads, import_threads
from runtime_persistence.shadow_git import ShadowGit, SnapshotPacks
from runtime_persistence.testing import TestStore, open_test_store

KEY = bytes(range(32))


def _ser() -> EnvelopeSerializer:
    return EnvelopeSerializer(keyring=Keyring({"k1": KEY}))


@pytest.mark.parametrize("backend", ["sqlite", "file", "postgres"])
def test_gc_retention_and_export_work_on_an_encrypted_store(backend: str, tmp_path: Path) -> None:
    ser = _ser()
    with open_test_store(backend, tmp_path) as source, open_test_store(backend, tmp_path) as target:
        _run(source, target, ser, tmp_path)


def _run(source: TestStore, target: TestStore, ser: EnvelopeSerializer, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "app.py").write_text("print('v1')\n")
    cps = Checkpoints(source.driver, serializer=ser)
    arts = Artifacts(source.driver, serializer=ser)
    packs = SnapshotPacks(source.driver, serializer=ser)
    shadow = ShadowGit(ws, state_dir=tmp_path / "home-a", shared=packs)
    linked = WorkspaceCheckpoints(cps, shadow)
    arts.put("reports", "summary.md", b"# all good\n", media_type="text/markdown")
    gone = arts.put("reports", "old.md", b"an old version nobody needs\n")
    thread = cps.create_thread("work")
    first = linked.save(
        thread.id,
        {"messages": ["one"], "big": "x" * 5000},
        artifacts=(ArtifactRef("reports", "summary.md", 0),),
    )
    for n in range(4):
        (ws / "app.py").write_text(f"print('v{n + 2}')\n")
        last = linked.save(
            thread.id,
            {"messages": ["one", f"two {n}"], "big": f"{n}" * 5000},
            artifacts=(ArtifactRef("reports", "summary.md", 0),),
        )
    (ws / "loose.txt").write_text("a snapshot no checkpoint names\n")
    loose = shadow.snapshot("loose")
    assert first.workspace is not None and last.workspace is not None and loose is not None
    arts.delete("reports", "old.md")

    # retention: prune all but the newest two (the first is labeled-free, so it goes)
    pruned = cps.prune(thread.id, keep_last=2)
    assert first.id in pruned.removed
    # gc with the keyring: the artifact and snapshot roots are read under the key
    report = cps.gc(grace=timedelta(0))
    assert report.blobs_removed >= 1
    dropped = collect_snapshot_packs(source.driver, grace=timedelta(0), serializer=ser)
    assert loose in dropped and last.workspace.commit not in dropped
    cps.gc(grace=timedelta(0))
    digests = {info.digest for info in source.driver.list_blobs()}
    assert gone.digest not in digests
    assert cps.latest(thread.id).state["big"] == "3" * 5000
    assert arts.get("reports", "summary.md", 0)[1] == b"# all good\n"
    assert packs.get(last.workspace.commit) is not None

    # export and import under the key, into another encrypted store
    buf = io.BytesIO()
    exported = export_threads(cps, buf, snapshots=lambda path: shadow)
    assert exported.checkpoints == 2 and exported.snapshot_packs == 1
    target_cps = Checkpoints(target.driver, serializer=ser)
    imported = import_threads(target_cps, io.BytesIO(buf.getvalue()))
    assert imported.threads == 1 and imported.checkpoints == 2
    assert target_cps.latest(thread.id).state == cps.latest(thread.id).state
    target_cps.gc(grace=timedelta(0))  # gc on the import's target, with its artifacts
    target_arts = Artifacts(target.driver, serializer=ser)
    assert target_arts.get("reports", "summary.md", 0)[1] == b"# all good\n"
    assert target_arts.put("reports", "summary.md", b"# v1\n").version == 1  # reads the imported mark
    assert target_cps.latest(thread.id).state["big"] == "3" * 5000

    # the store is still encrypted: a reader without the key is refused, not served
    with pytest.raises((CorruptionError, ValidationError)):
        Checkpoints(source.driver).latest(thread.id)
    with pytest.raises((CorruptionError, ValidationError)):
        Artifacts(target.driver).get("reports", "summary.md", 0)


def test_the_async_collector_reads_the_roots_with_the_keyring(tmp_path: Path) -> None:
    """The async collector takes the providers' async forms (artifacts, snapshot packs): they
    get its serializer too."""
    import asyncio

    from runtime_persistence import AsyncArtifacts, AsyncCheckpoints
    from runtime_persistence.storage.threaded import AsyncThreadDriver

    ser = _ser()
    with open_test_store("sqlite", tmp_path) as store:
        arts = Artifacts(store.driver, serializer=ser)
        kept = arts.put("s", "kept.txt", b"kept")
        gone = arts.put("s", "gone.txt", b"gone")
        arts.delete("s", "gone.txt")

        async def run() -> None:
            driver = AsyncThreadDriver(store.driver)
            cps = AsyncCheckpoints(driver, serializer=ser)
            thread = await cps.create_thread("t")
            await cps.save(thread.id, {"doc": "y" * 4000})
            await cps.gc(grace=timedelta(0))
            assert (await AsyncArtifacts(driver, serializer=ser).get("s", "kept.txt"))[1] == b"kept"

        asyncio.run(run())
        digests = {info.digest for info in store.driver.list_blobs()}
        assert kept.digest in digests and gone.digest not in digests
