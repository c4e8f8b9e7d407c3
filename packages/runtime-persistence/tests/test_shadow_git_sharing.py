"""Shared snapshots: what a snapshot adds goes to the store's blob area as a git pack, and another
shadow repository (another host's Keepup home) on the same store fetches, verifies and uses it.
Runs on SQLite and PostgreSQL, with the sync ``SnapshotPacks`` and its async twin."""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from runtime_core import CorruptionError, NotFoundError, ValidationError, WorkspaceRef
from runtime_persistence import Checkpoints, collect_snapshot_packs
from runtime_persistence.shadow_git import AsyncShadowGit, AsyncSnapshotPacks, ShadowGit, SnapshotPacks
from runtime_persistence.shadow_git._pack_records import PACK_NS, PackRecord
from runtime_persistence.storage.serialization import EnvelopeSerializer
from runtime_persistence.testing import TestStore, store_fixture
from runtime_persistence.testing.blocking import unwrap

shared_store = store_fixture("sqlite", "postgres", modes=("sync", "async"))


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    (path / "a.txt").write_text("one\n")
    return path


def _host(store: TestStore, ws: Path, home: Path) -> ShadowGit:
    packs: Any = store.make(SnapshotPacks)
    return ShadowGit(ws, state_dir=home, shared=packs)


def _objects(shadow: ShadowGit) -> int:
    out = subprocess.run(
        ["git", f"--git-dir={shadow.git_dir}", "count-objects", "-v"], capture_output=True, check=True
    ).stdout.decode()
    fields = dict(line.split(": ") for line in out.splitlines())
    return int(fields["count"]) + int(fields["in-pack"])


def test_another_home_restores_a_snapshot_it_never_took(
    shared_store: TestStore, ws: Path, tmp_path: Path
) -> None:
    a = _host(shared_store, ws, tmp_path / "host-a")
    first = a.snapshot("first")
    (ws / "b.txt").write_text("two\n" * 100)
    second = a.snapshot("second")
    assert first is not None and second is not None
    (ws / "a.txt").write_text("changed on the other host\n")
    (ws / "b.txt").unlink()

    b = _host(shared_store, ws, tmp_path / "host-b")
    assert _objects(b) == 0
    assert [c.path for c in b.diff(first[:10], second)] == ["b.txt"]
    report = b.restore(second)
    assert (ws / "a.txt").read_text() == "one\n" and (ws / "b.txt").read_text() == "two\n" * 100
    assert report.changed == ("a.txt",) and report.created == ("b.txt",)


def test_each_pack_holds_only_what_its_snapshot_adds(
    shared_store: TestStore, ws: Path, tmp_path: Path
) -> None:
    a = _host(shared_store, ws, tmp_path / "host-a")
    (ws / "big.bin").write_bytes(os.urandom(100_000))
    first = a.snapshot("first")
    (ws / "small.txt").write_text("x\n")
    second = a.snapshot("second")
    packs: Any = shared_store.make(SnapshotPacks)
    one, two = packs.get(first), packs.get(second)
    assert one.prerequisites == [] and two.prerequisites == [first]
    assert two.size < one.size / 4


def test_an_unchanged_snapshot_publishes_a_newest_snapshot_that_missed_the_store(
    shared_store: TestStore, ws: Path, tmp_path: Path
) -> None:
    local = ShadowGit(ws, state_dir=tmp_path / "host-a")
    commit = local.snapshot("taken before sharing was on")
    assert commit is not None
    a = _host(shared_store, ws, tmp_path / "host-a")
    assert a.snapshot("nothing changed") is None
    packs: Any = shared_store.make(SnapshotPacks)
    assert packs.get(commit) is not None


def test_a_snapshot_the_store_does_not_hold_is_not_found(
    shared_store: TestStore, ws: Path, tmp_path: Path
) -> None:
    b = _host(shared_store, ws, tmp_path / "host-b")
    with pytest.raises(NotFoundError):
        b.restore("0123456789abcdef0123456789abcdef01234567")


def _swap_pack(store: TestStore, commit: str, data: bytes) -> None:
    """Point the record of ``commit`` at other (well-formed, digest-correct) blob bytes: what a
    writer with access to the store can do without breaking any checksum."""
    driver = store.driver
    ser = EnvelopeSerializer()
    entry = driver.get(PACK_NS, commit)
    rec: PackRecord = ser.loads(entry.value, PackRecord, at=(PACK_NS, commit))
    info = driver.put_blob(data)
    forged = PackRecord(rec.format, rec.commit, info.digest, info.size, rec.prerequisites, rec.created_at)
    driver.put(PACK_NS, commit, ser.dumps(forged, at=(PACK_NS, commit)))


def test_a_pack_that_is_not_a_pack_is_refused(shared_store: TestStore, ws: Path, tmp_path: Path) -> None:
    commit = _host(shared_store, ws, tmp_path / "host-a").snapshot("s")
    assert commit is not None
    _swap_pack(shared_store, commit, b"PACK\x00\x00\x00\x02 not really a pack")
    (ws / "a.txt").write_text("keep me\n")
    b = _host(shared_store, ws, tmp_path / "host-b")
    with pytest.raises(CorruptionError):
        b.restore(commit)
    assert (ws / "a.txt").read_text() == "keep me\n"
    assert not b._is_shared(commit)


def test_a_pack_of_another_snapshot_is_refused(shared_store: TestStore, ws: Path, tmp_path: Path) -> None:
    a = _host(shared_store, ws, tmp_path / "host-a")
    first = a.snapshot("first")
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.txt").write_text("unrelated\n")
    o = ShadowGit(other, state_dir=tmp_path / "host-o")
    unrelated = o.snapshot("unrelated")
    assert first is not None and unrelated is not None
    _swap_pack(shared_store, first, o._pack_file(unrelated, []).read_bytes())
    b = _host(shared_store, ws, tmp_path / "host-b")
    with pytest.raises(CorruptionError, match="does not bring that snapshot"):
        b.restore(first)
    assert not b._is_shared(first)


def test_a_pack_record_copied_under_another_snapshot_is_refused(
    shared_store: TestStore, ws: Path, tmp_path: Path
) -> None:
    a = _host(shared_store, ws, tmp_path / "host-a")
    first = a.snapshot("first")
    (ws / "b.txt").write_text("b\n")
    second = a.snapshot("second")
    assert first is not None and second is not None
    driver = shared_store.driver
    driver.put(PACK_NS, first, driver.get(PACK_NS, second).value)
    b = _host(shared_store, ws, tmp_path / "host-b")
    # the envelope is bound to its key (and, for a record written unbound, its commit is checked)
    with pytest.raises(CorruptionError, match=r"names snapshot|copied or moved here from another key"):
        b.restore(first)


def test_gc_keeps_packs_a_checkpoint_needs_and_frees_the_others(
    shared_store: TestStore, ws: Path, tmp_path: Path
) -> None:
    a = _host(shared_store, ws, tmp_path / "host-a")
    base = a.snapshot("the prerequisite of the named one")
    (ws / "b.txt").write_text("b\n")
    named = a.snapshot("named by a checkpoint")
    (ws / "c.txt").write_text("c\n")
    unnamed = a.snapshot("named by nothing")
    assert base is not None and named is not None and unnamed is not None
    cps: Any = shared_store.make(Checkpoints)
    thread = cps.create_thread()
    cps.save(thread.id, {"x": 1}, workspace=WorkspaceRef(str(ws), named))
    packs: Any = shared_store.make(SnapshotPacks)
    assert packs.get(named).prerequisites == [base]
    digest = packs.get(unnamed).digest

    def blobs() -> set[str]:
        return {info.digest for info in shared_store.driver.list_blobs()}

    assert collect_snapshot_packs(shared_store.driver) == []  # younger than the default grace
    cps.gc(grace=timedelta(0))
    assert digest in blobs()  # a pack stays while its record exists
    assert collect_snapshot_packs(shared_store.driver, grace=timedelta(0), dry_run=True) == [unnamed]
    assert packs.get(unnamed) is not None
    assert collect_snapshot_packs(shared_store.driver, grace=timedelta(0)) == [unnamed]
    cps.gc(grace=timedelta(0))
    assert digest not in blobs()
    assert {packs.get(base).digest, packs.get(named).digest} <= blobs()
    (ws / "a.txt").write_text("changed\n")
    b = _host(shared_store, ws, tmp_path / "host-b")
    b.restore(named)
    assert (ws / "a.txt").read_text() == "one\n" and not (ws / "c.txt").exists()


async_store = store_fixture("sqlite", "postgres", modes=("async",))


def test_an_async_snapshot_publishes_and_fetches_its_packs_natively(
    async_store: TestStore, ws: Path, tmp_path: Path
) -> None:
    """AsyncShadowGit with an AsyncSnapshotPacks: the pack goes to the store on the loop with the
    async driver (no sync SnapshotPacks anywhere), and another home fetches it the same way."""
    driver = unwrap(async_store.driver)
    assert async_store.portal is not None

    async def scenario() -> None:
        packs = AsyncSnapshotPacks(driver)
        a = await AsyncShadowGit.open(ws, state_dir=tmp_path / "host-a", shared=packs)
        assert a.sync.shared is None and a.shared is packs
        first = await a.snapshot("first")
        (ws / "b.txt").write_text("two\n" * 100)
        second = await a.snapshot("second")
        assert first is not None and second is not None
        one, two = await packs.get(first), await packs.get(second)
        assert one is not None and two is not None and two.prerequisites == [first]
        assert await a.snapshot("unchanged") is None

        (ws / "a.txt").write_text("changed on the other host\n")
        (ws / "b.txt").unlink()
        b = await AsyncShadowGit.open(ws, state_dir=tmp_path / "host-b", shared=AsyncSnapshotPacks(driver))
        assert _objects(b.sync) == 0
        assert [c.path for c in await b.diff(first[:10], second)] == ["b.txt"]
        report = await b.restore(second)
        assert report.changed == ("a.txt",) and report.created == ("b.txt",)
        assert (ws / "b.txt").read_text() == "two\n" * 100
        assert (await b.info(first)).message == "first"
        with pytest.raises(NotFoundError):
            await b.resolve("abcdef12")

    async_store.portal.call(scenario())


def test_an_async_shadow_git_takes_one_sharing_not_two(
    async_store: TestStore, ws: Path, tmp_path: Path
) -> None:
    sync_shared: Any = async_store.make(SnapshotPacks)
    with pytest.raises(ValidationError):
        AsyncShadowGit(
            ShadowGit(ws, state_dir=tmp_path / "h", shared=sync_shared),
            shared=AsyncSnapshotPacks(unwrap(async_store.driver)),
        )
