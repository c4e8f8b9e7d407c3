"""The task board on every available driver, sync and async: update, assign, links, re-parent
(refusing cycles), trees, recursive delete with a dry run, bulk load and save, imports."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from runtime_core import (
    ImportedTask,
    ManualClock,
    NotFoundError,
    TaskStatus,
    ValidationError,
    new_id,
)
from runtime_persistence import Tasks
from runtime_persistence.session.tasks import TASK_CHILD_NS, TASK_LOG_NS, TASK_NS
from runtime_persistence.testing import TestStore, store_fixture

board_store = store_fixture(modes=("sync", "async"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def tasks(board_store: TestStore, clock: ManualClock) -> Tasks:
    made: Tasks = board_store.make(Tasks, clock=clock)
    return made


def test_update_changes_title_description_and_metadata(tasks: Tasks, clock: ManualClock) -> None:
    task = tasks.create("draft", description="first")
    clock.advance(3)
    updated = tasks.update(task.id, title="final", metadata={"k": 1})
    assert (updated.title, updated.description, updated.metadata) == ("final", "first", {"k": 1})
    assert updated.updated_at == clock.now()
    assert tasks.get(task.id) == updated
    assert tasks.update(task.id, description="second").description == "second"
    with pytest.raises(ValidationError):
        tasks.update(task.id, title="")
    assert tasks.get(task.id).title == "final"


def test_assign_and_unassign(tasks: Tasks) -> None:
    task = tasks.create("t")
    assert tasks.assign(task.id, "ann").assignee == "ann"
    assert tasks.list(assignee="ann") == [tasks.get(task.id)]
    assert tasks.unassign(task.id).assignee is None
    assert tasks.get(task.id).assignee is None
    with pytest.raises(ValidationError):
        tasks.assign(task.id, "")


def test_links_to_a_thread_and_a_run(tasks: Tasks) -> None:
    thread, run = new_id(), new_id()
    task = tasks.create("t", thread_id=thread)
    assert task.thread_id == thread
    linked = tasks.link(task.id, run_id=run)
    assert (linked.thread_id, linked.run_id) == (thread, run)
    assert tasks.link(task.id, thread_id=None).thread_id is None
    assert tasks.get(task.id).run_id == run
    with pytest.raises(ValidationError):
        tasks.link(task.id, run_id="nope")


def test_move_re_parents_a_subtree(tasks: Tasks) -> None:
    a = tasks.create("a")
    b = tasks.create("b")
    a1 = tasks.create("a1", parent_id=a.id)
    tasks.create("a1x", parent_id=a1.id)
    moved = tasks.move(a1.id, b.id)
    assert moved.parent_id == b.id
    assert tasks.children(a.id) == []
    assert [t.id for t in tasks.children(b.id)] == [a1.id]
    assert [(n.depth, n.task.title) for n in tasks.tree(b.id)] == [(0, "b"), (1, "a1"), (2, "a1x")]
    tasks.move(a1.id, None)
    assert [t.title for t in tasks.roots()] == ["a", "b", "a1"]
    assert tasks.children(b.id) == []


def test_move_refuses_a_cycle_and_changes_nothing(tasks: Tasks) -> None:
    a = tasks.create("a")
    b = tasks.create("b", parent_id=a.id)
    c = tasks.create("c", parent_id=b.id)
    for target in (a.id, b.id, c.id):
        with pytest.raises(ValidationError, match="its own ancestor"):
            tasks.move(a.id, target)
    assert tasks.get(a.id).parent_id is None
    assert [n.task.id for n in tasks.tree(a.id)] == [a.id, b.id, c.id]
    with pytest.raises(NotFoundError):
        tasks.move(b.id, new_id())


def test_tree_lists_every_root_depth_first(tasks: Tasks) -> None:
    r1 = tasks.create("r1")
    tasks.create("r1a", parent_id=r1.id)
    r1b = tasks.create("r1b", parent_id=r1.id)
    tasks.create("r1b1", parent_id=r1b.id)
    tasks.create("r2")
    assert [(n.depth, n.task.title) for n in tasks.tree()] == [
        (0, "r1"),
        (1, "r1a"),
        (1, "r1b"),
        (2, "r1b1"),
        (0, "r2"),
    ]
    assert [n.task.title for n in tasks.tree(r1.id, max_depth=1)] == ["r1", "r1a", "r1b"]


def test_delete_refuses_a_task_with_children_unless_recursive(tasks: Tasks, board_store: TestStore) -> None:
    root = tasks.create("root")
    kid = tasks.create("kid", parent_id=root.id)
    grandkid = tasks.create("grandkid", parent_id=kid.id)
    tasks.log(grandkid.id, "working")
    other = tasks.create("other")
    with pytest.raises(ValidationError, match="2 task"):
        tasks.delete(root.id)
    plan = tasks.delete(root.id, recursive=True, dry_run=True)
    assert [(n.depth, n.task.id) for n in plan] == [(0, root.id), (1, kid.id), (2, grandkid.id)]
    assert tasks.get(grandkid.id) == grandkid  # a dry run deletes nothing
    done = tasks.delete(root.id, recursive=True)
    assert [n.task.id for n in done] == [root.id, kid.id, grandkid.id]
    for gone in (root.id, kid.id, grandkid.id):
        with pytest.raises(NotFoundError):
            tasks.get(gone)
    assert [e.key for e in board_store.driver.scan(TASK_NS)] == [other.id]
    assert [e.key for e in board_store.driver.scan(TASK_CHILD_NS)] == [f"root/{other.id}"]
    assert list(board_store.driver.scan(TASK_LOG_NS)) == []


def test_bulk_save_keeps_ids_and_stores_parents_first(tasks: Tasks, board_store: TestStore) -> None:
    root = tasks.create("root")
    kid = tasks.create("kid", parent_id=root.id, assignee="bo")
    tasks.transition(kid.id, TaskStatus.RUNNING)
    everything = tasks.load_all()
    assert [t.id for t in everything] == [root.id, kid.id]
    tasks.delete(root.id, recursive=True)
    stored = tasks.save_all(list(reversed(everything)))  # children before parents, on purpose
    assert [t.id for t in stored] == [root.id, kid.id]
    assert tasks.load_all() == everything
    assert tasks.save_all(everything) == []  # a second save changes nothing
    orphan = everything[1].__class__(**{**_fields(everything[1]), "id": new_id(), "parent_id": new_id()})
    with pytest.raises(NotFoundError):
        tasks.save_all([orphan])


def _fields(task: object) -> dict[str, object]:
    return {name: getattr(task, name) for name in task.__slots__}  # type: ignore[attr-defined]


def test_an_import_twice_changes_nothing_and_skips_orphans(tasks: Tasks) -> None:
    at = datetime(2025, 3, 1, tzinfo=UTC)
    items = [
        ImportedTask("child", "Child", at, at, TaskStatus.RUNNING, parent_external_id="root", progress=0.5),
        ImportedTask("root", "Root", at, at, logs=((at, "info", "made"),)),
        ImportedTask("lost", "Lost", at, at, parent_external_id="nowhere"),
    ]
    first = tasks.import_tasks("tool", items)
    outcome = {i.external_id: (i.outcome, i.reason) for i in first}
    assert outcome["root"] == ("imported", "") and outcome["child"] == ("imported", "")
    assert outcome["lost"][0] == "skipped" and "nowhere" in outcome["lost"][1]
    root = tasks.imported("tool", "root")
    assert root is not None and root.created_at == at and root.metadata == {"tool_id": "root"}
    [child] = tasks.children(root.id)
    assert (child.title, child.status, child.progress) == ("Child", TaskStatus.RUNNING, 0.5)
    assert [line.message for line in tasks.logs(root.id)] == ["made"]
    before = tasks.load_all()
    second = tasks.import_tasks("tool", items)
    assert {i.external_id: i.reason for i in second if i.outcome == "skipped"} == {
        "root": "already imported",
        "child": "already imported",
        "lost": outcome["lost"][1],
    }
    assert tasks.load_all() == before
    assert len(tasks.logs(root.id)) == 1


def test_a_dry_run_import_writes_nothing(tasks: Tasks, board_store: TestStore) -> None:
    at = datetime(2025, 3, 1, tzinfo=UTC)
    report = tasks.import_tasks("tool", [ImportedTask("a", "A", at, at)], dry_run=True)
    assert [i.outcome for i in report] == ["imported"]
    assert list(board_store.driver.scan(TASK_NS)) == []
