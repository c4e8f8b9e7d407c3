"""Checkpoints linked with workspace snapshots: saved together, restored together in one call,
refused while a run holds the thread, and released when checkpoints are pruned."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from runtime_core import (
    CheckpointSource,
    ManualClock,
    NotFoundError,
    RuntimeBusyError,
    ValidationError,
    WorkspaceRef,
)
from runtime_persistence import Checkpoints, Leases
from runtime_persistence.checkpoint.workspaces import (
    AsyncWorkspaceCheckpoints,
    SnapshotBeforeChange,
    WorkspaceCheckpoints,
)
from runtime_persistence.shadow_git.repository import ShadowGit
from runtime_persistence.storage.drivers.memory import MemoryDriver
from runtime_persistence.storage.leases import AsyncLeases
from runtime_persistence.storage.threaded import AsyncThreadDriver
from runtime_persistence.testing import TestStore, store_fixture
from runtime_persistence.testing.blocking import blocking, unwrap

link_store = store_fixture("memory", "sqlite", modes=("sync", "async"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    return path


@pytest.fixture
def sg(ws: Path, tmp_path: Path) -> ShadowGit:
    return ShadowGit(ws, state_dir=tmp_path / "state")


@pytest.fixture
def cps(link_store: TestStore, clock: ManualClock) -> Checkpoints:
    return link_store.make(Checkpoints, clock=clock)


Link = Callable[..., WorkspaceCheckpoints]


@pytest.fixture
def link(link_store: TestStore) -> Link:
    """Builds the link in the store's mode: WorkspaceCheckpoints, or AsyncWorkspaceCheckpoints
    over the AsyncCheckpoints behind ``cps`` (through the blocking proxy)."""

    def make(cps: Checkpoints, snapshots: ShadowGit, *, leases: Any = None) -> WorkspaceCheckpoints:
        if not link_store.is_async:
            return WorkspaceCheckpoints(cps, snapshots, leases=leases)
        assert link_store.portal is not None
        made = AsyncWorkspaceCheckpoints(unwrap(cps), snapshots, leases=unwrap(leases))
        linked: WorkspaceCheckpoints = blocking(made, link_store.portal)
        return linked

    return make


@pytest.fixture
def linked(cps: Checkpoints, sg: ShadowGit, link: Link) -> WorkspaceCheckpoints:
    return link(cps, sg)


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_save_records_the_snapshot_and_keeps_it_under_the_checkpoint_id(
    linked: WorkspaceCheckpoints, cps: Checkpoints, sg: ShadowGit, ws: Path
) -> None:
    thread = cps.create_thread("agent")
    write(ws, "main.py", "v1\n")
    cp = linked.save(thread.id, {"messages": ["hi"]}, message="turn 1")
    assert cp.workspace is not None
    assert cp.workspace == WorkspaceRef(sg.workspace, cp.workspace.commit)
    assert sg.kept() == {cp.id: cp.workspace.commit}
    assert sg.info(cp.workspace.commit).message == "turn 1"
    assert cps.get(cp.id).workspace == cp.workspace


def test_save_without_changes_links_the_newest_snapshot(
    linked: WorkspaceCheckpoints, cps: Checkpoints, ws: Path
) -> None:
    thread = cps.create_thread()
    write(ws, "a.txt", "same\n")
    first = linked.save(thread.id, {"step": 1})
    second = linked.save(thread.id, {"step": 2})
    assert first.workspace is not None and second.workspace is not None
    assert first.workspace.commit == second.workspace.commit


def test_restore_brings_back_conversation_and_files_in_one_call(
    linked: WorkspaceCheckpoints, cps: Checkpoints, sg: ShadowGit, ws: Path
) -> None:
    thread = cps.create_thread()
    write(ws, "main.py", "print('v1')\n")
    checkpoint = linked.save(thread.id, {"messages": ["write v1"]})
    write(ws, "main.py", "print('v2')\n")
    write(ws, "later.py", "created after the checkpoint\n")
    linked.save(thread.id, {"messages": ["write v1", "write v2"]})

    result = linked.restore(checkpoint.id)

    assert result.checkpoint is not None
    assert result.checkpoint.source is CheckpointSource.RESTORE
    assert result.checkpoint.state == {"messages": ["write v1"]}
    assert cps.latest(thread.id) == result.checkpoint
    assert (ws / "main.py").read_text() == "print('v1')\n"
    assert not (ws / "later.py").exists()
    assert result.files is not None and result.files.removed == ("later.py",)
    # the new head names the same snapshot and keeps it alive too
    assert result.checkpoint.workspace == checkpoint.workspace
    assert sg.kept()[result.checkpoint.id] == checkpoint.workspace.commit  # type: ignore[union-attr]
    # and the file created later can be brought back from the rescue snapshot
    assert result.files.rescue_commit is not None
    sg.restore(result.files.rescue_commit, paths=["later.py"])
    assert (ws / "later.py").read_text() == "created after the checkpoint\n"


def test_restore_is_refused_while_a_run_holds_the_thread_and_touches_no_file(
    linked: WorkspaceCheckpoints, cps: Checkpoints, sg: ShadowGit, ws: Path, clock: ManualClock
) -> None:
    thread = cps.create_thread()
    write(ws, "main.py", "v1\n")
    checkpoint = linked.save(thread.id, {"step": 1})
    write(ws, "main.py", "v2 (the running agent's work)\n")
    cps.leases.acquire(thread.id, "run-42", timedelta(minutes=5))
    snapshots_before = sg.list()
    head_before = cps.latest(thread.id)

    with pytest.raises(RuntimeBusyError) as excinfo:
        linked.restore(checkpoint.id)

    assert excinfo.value.holder == "run-42"
    assert (ws / "main.py").read_text() == "v2 (the running agent's work)\n"
    assert sg.list() == snapshots_before  # not even a rescue snapshot was taken
    assert cps.latest(thread.id) == head_before
    clock.advance(timedelta(minutes=6))  # the lease expires: now it works
    linked.restore(checkpoint.id)
    assert (ws / "main.py").read_text() == "v1\n"


def test_files_are_put_back_when_the_conversation_restore_fails(
    cps: Checkpoints, sg: ShadowGit, ws: Path, link_store: TestStore, clock: ManualClock, link: Link
) -> None:
    # our lease check sees a free thread (another lease store), the checkpoint store's own does not
    linked = link(cps, sg, leases=link_store.make(Leases, clock=clock))
    elsewhere = (
        AsyncLeases(AsyncThreadDriver(MemoryDriver()), clock=clock)
        if link_store.is_async
        else Leases(MemoryDriver(), clock=clock)
    )
    linked_free = link(cps, sg, leases=elsewhere)
    thread = cps.create_thread()
    write(ws, "main.py", "v1\n")
    checkpoint = linked.save(thread.id, {"step": 1})
    write(ws, "main.py", "v2\n")
    cps.leases.acquire(thread.id, "run-7", timedelta(minutes=5))
    with pytest.raises(RuntimeBusyError):
        linked.restore(checkpoint.id)  # refused up front: files untouched
    assert (ws / "main.py").read_text() == "v2\n"
    with pytest.raises(RuntimeBusyError):
        linked_free.restore(checkpoint.id)  # refused by the conversation restore: files rolled back
    assert (ws / "main.py").read_text() == "v2\n"


def test_dry_run_changes_neither_conversation_nor_files(
    linked: WorkspaceCheckpoints, cps: Checkpoints, ws: Path
) -> None:
    thread = cps.create_thread()
    write(ws, "a.txt", "v1\n")
    checkpoint = linked.save(thread.id, {"step": 1})
    write(ws, "a.txt", "v2\n")
    head = linked.save(thread.id, {"step": 2})
    result = linked.restore(checkpoint.id, dry_run=True)
    assert result.dry_run and result.checkpoint is None
    assert result.files is not None and result.files.changed == ("a.txt",)
    assert (ws / "a.txt").read_text() == "v2\n"
    assert cps.latest(thread.id) == head


def test_restore_without_the_workspace_leaves_files_alone(
    linked: WorkspaceCheckpoints, cps: Checkpoints, ws: Path
) -> None:
    thread = cps.create_thread()
    write(ws, "a.txt", "v1\n")
    checkpoint = linked.save(thread.id, {"step": 1})
    write(ws, "a.txt", "v2\n")
    result = linked.restore(checkpoint.id, workspace=False)
    assert result.files is None
    assert result.checkpoint is not None and result.checkpoint.state == {"step": 1}
    assert (ws / "a.txt").read_text() == "v2\n"


def test_a_checkpoint_of_another_workspace_is_refused(
    cps: Checkpoints, ws: Path, tmp_path: Path, link: Link
) -> None:
    other_ws = tmp_path / "other"
    other_ws.mkdir()
    other = link(cps, ShadowGit(other_ws, state_dir=tmp_path / "state"))
    mine = link(cps, ShadowGit(ws, state_dir=tmp_path / "state"))
    thread = cps.create_thread()
    write(other_ws, "x.txt", "x")
    checkpoint = other.save(thread.id, {"step": 1})
    with pytest.raises(ValidationError):
        mine.restore(checkpoint.id)


def test_pruning_checkpoints_releases_and_lets_gc_drop_their_snapshots(
    linked: WorkspaceCheckpoints, cps: Checkpoints, sg: ShadowGit, ws: Path
) -> None:
    thread = cps.create_thread()
    saved = []
    for i in range(4):
        write(ws, "a.txt", f"v{i}\n")
        saved.append(linked.save(thread.id, {"step": i}))
    commits = [cp.workspace.commit for cp in saved if cp.workspace is not None]
    report = cps.prune(thread.id, keep_last=1)
    assert set(report.removed) == {cp.id for cp in saved[:3]}
    assert sg.kept() == {saved[3].id: commits[3]}
    sg.gc()
    for gone in commits[:3]:
        with pytest.raises(NotFoundError):
            sg.info(gone)
    assert sg.info(commits[3]).commit == commits[3]


def test_deleting_a_thread_releases_its_snapshots(
    linked: WorkspaceCheckpoints, cps: Checkpoints, sg: ShadowGit, ws: Path
) -> None:
    thread = cps.create_thread()
    write(ws, "a.txt", "v1\n")
    linked.save(thread.id, {"step": 1})
    write(ws, "a.txt", "v2\n")
    linked.save(thread.id, {"step": 2})
    assert len(sg.kept()) == 2
    cps.delete_thread(thread.id)
    assert sg.kept() == {}


def test_before_change_hook_snapshots_so_a_change_can_be_undone(sg: ShadowGit, ws: Path) -> None:
    hook = SnapshotBeforeChange(sg)
    write(ws, "notes.md", "original\n")
    hook("edit_file", ["notes.md"])
    before_edit = hook.last
    assert before_edit is not None
    assert sg.info(before_edit).message == "before edit_file: notes.md"
    write(ws, "notes.md", "the agent's edit\n")
    hook("write_file", ["new.md"])
    assert hook.last is not None and hook.last != before_edit
    write(ws, "new.md", "new\n")
    sg.restore(hook.last)  # undo the write only
    assert (ws / "notes.md").read_text() == "the agent's edit\n"
    assert not (ws / "new.md").exists()
    sg.restore(before_edit)  # and the edit
    assert (ws / "notes.md").read_text() == "original\n"
