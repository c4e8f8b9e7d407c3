"""The runtime's shared-snapshot setting: on by default for server stores, off for local ones,
overridable; ``Runtime.gc`` collects the packs no checkpoint needs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from keepup.runtime import open_runtime
from runtime_persistence.shadow_git import SnapshotPacks


def test_sharing_is_off_for_sqlite_and_on_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEEPUP_SHARE_SNAPSHOTS", raising=False)
    with open_runtime(home=tmp_path / "home") as runtime:
        assert runtime.share_snapshots is False
    monkeypatch.setenv("KEEPUP_SHARE_SNAPSHOTS", "1")
    with open_runtime(home=tmp_path / "home") as runtime:
        assert runtime.share_snapshots is True
    with open_runtime(home=tmp_path / "home", share_snapshots=False) as runtime:
        assert runtime.share_snapshots is False


def test_runtime_gc_frees_the_packs_no_checkpoint_needs(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("a\n")
    with open_runtime(home=tmp_path / "home", share_snapshots=True) as runtime:
        snaps = runtime.snapshots(ws)
        from runtime_persistence import WorkspaceCheckpoints

        linked = WorkspaceCheckpoints(runtime.checkpoints, snaps)
        cp = linked.save(runtime.checkpoints.create_thread().id, {"x": 1})
        (ws / "b.txt").write_text("b\n")
        loose = snaps.snapshot("a snapshot no checkpoint names")
        assert cp.workspace is not None and loose is not None
        packs = SnapshotPacks(runtime.driver)
        loose_digest = packs.get(loose).digest  # type: ignore[union-attr]
        report = runtime.gc(grace=timedelta(0))
        assert report.records_removed >= 1
        assert packs.get(loose) is None and packs.get(cp.workspace.commit) is not None
        assert loose_digest not in {info.digest for info in runtime.driver.list_blobs()}
