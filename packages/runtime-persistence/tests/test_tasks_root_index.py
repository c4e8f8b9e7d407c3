"""Stores written before root tasks were indexed (``data/old-tasks-store.sqlite``, made by Keepup
at 57e00b0: only a task with a parent had a ``task.child`` entry) list their root tasks and trees
correctly on every driver, in sync and async mode: the first listing migrates them forward once
(``Tasks.index_roots``), after which listing roots reads the index, not every task."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from runtime_persistence import Tasks
from runtime_persistence.session._records import TASK_CHILD_NS, TASK_INDEX_NS, TASK_NS
from runtime_persistence.storage.drivers.sqlite import SqliteDriver
from runtime_persistence.testing import TestStore, store_fixture

OLD_STORE = Path(__file__).parent / "data" / "old-tasks-store.sqlite"
ROOTS = ["old root 0", "old root 1", "old root 2"]
store = store_fixture(modes=("sync", "async"))


def _load_old(store: TestStore) -> None:
    """Copy every entry of the old store, as it is, into ``store``."""
    old = SqliteDriver(OLD_STORE, read_only=True)
    try:
        for namespace in old.namespaces():
            for entry in old.scan(namespace):
                store.driver.put(namespace, entry.key, entry.value)
    finally:
        old.close()


def test_the_fixture_is_an_old_store_without_root_entries() -> None:
    old = SqliteDriver(OLD_STORE, read_only=True)
    try:
        assert len(list(old.scan(TASK_NS))) == 15
        assert list(old.scan(TASK_CHILD_NS, prefix="root/")) == []
        assert list(old.namespaces()) == ["task", "task.child", "task.log"]
    finally:
        old.close()


def test_an_old_store_lists_its_root_tasks_and_trees(store: TestStore) -> None:
    _load_old(store)
    tasks: Tasks = store.make(Tasks)
    assert [t.title for t in tasks.roots()] == ROOTS
    tree = tasks.tree()
    assert [(n.depth, n.task.title) for n in tree[:5]] == [
        (0, "old root 0"),
        (1, "old child 0.0"),
        (2, "old grandchild 0.0"),
        (1, "old child 0.1"),
        (2, "old grandchild 0.1"),
    ]
    assert len(tree) == 15 and [n.task.title for n in tree if n.depth == 0] == ROOTS
    assert len(list(store.driver.scan(TASK_CHILD_NS, prefix="root/"))) == 3
    assert store.driver.get(TASK_INDEX_NS, "roots") is not None
    new_root = tasks.create("new root")
    assert [t.title for t in store.make(Tasks).roots()] == [*ROOTS, "new root"]
    assert store.make(Tasks).index_roots() == 0  # migrated already: nothing to add
    assert new_root.parent_id is None


def test_the_migration_runs_once_per_store(store: TestStore) -> None:
    _load_old(store)
    assert store.make(Tasks).index_roots(dry_run=True) == 3
    assert list(store.driver.scan(TASK_CHILD_NS, prefix="root/")) == []  # a dry run writes nothing
    first = store.make(Tasks).roots()
    # Once migrated, roots come from the index alone: an entry removed by hand is not rebuilt
    # by a scan of every task (that scan is what listing roots must no longer cost).
    store.driver.delete(TASK_CHILD_NS, f"root/{first[0].id}")
    assert [t.title for t in store.make(Tasks).roots()] == ROOTS[1:]


def test_a_store_opened_read_only_still_lists_the_roots_of_old_data(tmp_path: Path) -> None:
    copy = tmp_path / "old.sqlite"
    shutil.copy(OLD_STORE, copy)
    driver = SqliteDriver(copy, read_only=True)
    try:
        tasks = Tasks(driver)
        assert [t.title for t in tasks.roots()] == ROOTS
        assert len(tasks.tree()) == 15
    finally:
        driver.close()
    writable = SqliteDriver(copy)
    try:
        assert [t.title for t in Tasks(writable).roots()] == ROOTS
        assert writable.get(TASK_INDEX_NS, "roots") is not None
    finally:
        writable.close()


@pytest.mark.parametrize("limit", [1, 2])
def test_roots_respects_its_limit_on_old_data(store: TestStore, limit: int) -> None:
    _load_old(store)
    assert [t.title for t in store.make(Tasks).roots(limit=limit)] == ROOTS[:limit]
