"""Export carries what a thread needs beyond its checkpoints (the files of its workspace snapshots,
the artifact versions it names), and import trusts nothing it does not carry: the whole file is
verified before a record is written (issue 11, hole 10)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime_core import ArtifactRef, CorruptionError
from runtime_persistence import Artifacts, Checkpoints, WorkspaceCheckpoints
from runtime_persistence.checkpoint._export_format import EXPORT_MAGIC, LEN, FrameReader, FrameWriter
from runtime_persistence.checkpoint.export import export_threads, import_threads
from runtime_persistence.shadow_git import ShadowGit, SnapshotPacks
from runtime_persistence.testing import TestStore, open_test_store


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[TestStore, TestStore]]:
    with open_test_store("sqlite", tmp_path) as source, open_test_store("sqlite", tmp_path) as target:
        yield source, target


def _frames(data: bytes) -> list[dict[str, Any]]:
    reader = FrameReader()
    reader.magic(data[: len(EXPORT_MAGIC)])
    pos = len(EXPORT_MAGIC)
    frames = []
    while True:
        head = data[pos : pos + LEN.size]
        length = reader.length(head)
        frame, last = reader.frame(head, data[pos + LEN.size : pos + LEN.size + length], length)
        pos += LEN.size + length
        if last:
            return frames
        frames.append(frame)


def _rewritten(data: bytes, edit: Callable[[dict[str, Any]], dict[str, Any] | None]) -> bytes:
    """The export ``data`` with each frame passed through ``edit`` (None drops it), re-signed: a
    forged file whose framing and checksums are all valid."""
    out = FrameWriter()
    result = out.start()
    for frame in _frames(data):
        changed = edit(dict(frame))
        if changed is not None:
            kind = changed.pop("k")
            result += out.frame(kind, **changed)
    return result + out.end()


def test_an_export_restores_its_files_and_artifacts_on_a_fresh_home(
    stores: tuple[TestStore, TestStore], tmp_path: Path
) -> None:
    source, target = stores
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "app.py").write_text("print('v1')\n")
    cps = Checkpoints(source.driver)
    arts = Artifacts(source.driver)
    shadow = ShadowGit(ws, state_dir=tmp_path / "home-a")
    linked = WorkspaceCheckpoints(cps, shadow)
    report = arts.put("reports", "summary.md", b"# all good\n", media_type="text/markdown")
    thread = cps.create_thread("work")
    first = linked.save(
        thread.id, {"messages": ["one"]}, artifacts=(ArtifactRef("reports", "summary.md", 0),)
    )
    (ws / "app.py").write_text("print('v2')\n")
    (ws / "extra.txt").write_text("added\n")
    second = linked.save(thread.id, {"messages": ["one", "two"]})
    assert report.version == 0 and first.workspace is not None and second.workspace is not None

    buf = io.BytesIO()
    exported = export_threads(cps, buf, snapshots=lambda path: shadow)
    assert (exported.snapshot_packs, exported.artifacts, exported.missing_snapshots) == (1, 1, ())
    imported = import_threads(Checkpoints(target.driver), io.BytesIO(buf.getvalue()))
    assert (imported.threads, imported.checkpoints, imported.snapshot_packs, imported.artifacts) == (
        1,
        2,
        1,
        1,
    )

    # a fresh home: no shadow repository, the workspace as someone else left it
    (ws / "app.py").write_text("print('elsewhere')\n")
    fresh = ShadowGit(
        ws, state_dir=tmp_path / "home-b", shared=SnapshotPacks(target.driver, publishing=False)
    )
    changes = fresh.diff(first.workspace.commit, second.workspace.commit)
    assert sorted(c.path for c in changes) == ["app.py", "extra.txt"]
    linked_b = WorkspaceCheckpoints(Checkpoints(target.driver), fresh)
    done = linked_b.restore(first.id)
    assert (ws / "app.py").read_text() == "print('v1')\n" and not (ws / "extra.txt").exists()
    assert done.checkpoint is not None and done.checkpoint.state == {"messages": ["one"]}
    version, data = Artifacts(target.driver).get("reports", "summary.md", 0)
    assert data == b"# all good\n" and version.media_type == "text/markdown"


def test_an_export_names_the_snapshots_it_could_not_find(
    stores: tuple[TestStore, TestStore], tmp_path: Path
) -> None:
    source, _ = stores
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("a\n")
    cps = Checkpoints(source.driver)
    shadow = ShadowGit(ws, state_dir=tmp_path / "home-a")
    cp = WorkspaceCheckpoints(cps, shadow).save(cps.create_thread().id, {"x": 1})
    assert cp.workspace is not None
    other = ShadowGit(ws, state_dir=tmp_path / "home-without-it")
    report = export_threads(cps, io.BytesIO(), snapshots=lambda path: other)
    assert report.missing_snapshots == (cp.workspace.commit,) and report.snapshot_packs == 0


def test_an_import_naming_a_blob_it_does_not_carry_is_refused(stores: tuple[TestStore, TestStore]) -> None:
    source, target = stores
    secret = {"secret": "another thread's conversation " * 200}
    victim = Checkpoints(target.driver)
    victim.save(victim.create_thread("victim").id, secret)  # the target already holds the blob
    cps = Checkpoints(source.driver)
    cps.save(cps.create_thread("forged").id, secret)
    buf = io.BytesIO()
    export_threads(cps, buf)
    forged = _rewritten(buf.getvalue(), lambda f: None if f["k"] == "blob" else f)
    with pytest.raises(CorruptionError, match="does not carry"):
        import_threads(victim, io.BytesIO(forged))
    assert [t.name for t in victim.list_threads()] == ["victim"]


def test_an_import_with_a_fork_link_to_a_thread_it_does_not_carry_is_refused(
    stores: tuple[TestStore, TestStore],
) -> None:
    source, target = stores
    victim = Checkpoints(target.driver)
    pinned = victim.save(victim.create_thread("victim").id, {"x": 1})
    cps = Checkpoints(source.driver)
    cp = cps.save(cps.create_thread("mine").id, {"x": 1})
    buf = io.BytesIO()
    export_threads(cps, buf)
    mine = cp.thread_id
    victim_slot = f"{pinned.thread_id}/{0:012d}"

    def add_fork(frame: dict[str, Any]) -> dict[str, Any]:
        if frame["k"] == "thread_end":  # smuggle a fork link in just before the section closes
            frames.append({"k": "fork", "key": f"{victim_slot}/{mine}"})
        return frame

    frames: list[dict[str, Any]] = []
    out = FrameWriter()
    data = out.start()
    for frame in _frames(buf.getvalue()):
        add_fork(frame)
        for extra in frames:
            kind = extra.pop("k")
            data += out.frame(kind, **extra)
        frames.clear()
        kind = frame.pop("k")
        data += out.frame(kind, **frame)
    data += out.end()
    with pytest.raises(CorruptionError, match="does not carry"):
        import_threads(victim, io.BytesIO(data))
    assert list(target.driver.scan("thread.fork")) == []
    assert [t.name for t in victim.list_threads()] == ["victim"]


def test_a_bad_end_checksum_imports_nothing(stores: tuple[TestStore, TestStore]) -> None:
    source, target = stores
    cps = Checkpoints(source.driver)
    for name in ("one", "two"):
        cps.save(cps.create_thread(name).id, {"name": name})
    buf = io.BytesIO()
    export_threads(cps, buf)
    data = bytearray(buf.getvalue())
    data[-5] ^= 0x01  # inside the end frame: every thread section before it is intact
    with pytest.raises(CorruptionError):
        import_threads(Checkpoints(target.driver), io.BytesIO(bytes(data)))
    assert Checkpoints(target.driver).list_threads() == []
    assert list(target.driver.scan("ckpt")) == []
