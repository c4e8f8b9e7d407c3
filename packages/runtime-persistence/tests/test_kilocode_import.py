"""Importing Kilocode's tasks.json (StorageData) on every available driver, from realistic
fixture files: a complete store, a main file cut off mid-write (the backup is read and the
report says so), a partial file with broken tasks, both files damaged, and the legacy bare list."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from runtime_core import CorruptionError, NotFoundError, TaskStatus
from runtime_persistence import Tasks
from runtime_persistence.session.kilocode import import_kilocode
from runtime_persistence.session.tasks import TASK_NS
from runtime_persistence.testing import TestStore, store_fixture

FIXTURES = Path(__file__).parent / "fixtures" / "kilocode"
kilo_store = store_fixture()


@pytest.fixture
def tasks(kilo_store: TestStore) -> Tasks:
    return Tasks(kilo_store.driver)


def test_a_complete_file_imports_with_its_tree_statuses_progress_and_logs(tasks: Tasks) -> None:
    report = import_kilocode(tasks, FIXTURES / "complete" / "tasks.json")
    assert (report.imported, report.skipped, report.notes) == (7, 0, ())
    root = tasks.imported("kilocode", "task_1730455200000_k3j9x")
    assert root is not None
    assert (root.status, root.progress, root.assignee) == (TaskStatus.RUNNING, 0.4, "architect")
    assert root.description.startswith("Replace the legacy session cookies")
    assert root.metadata["priority"] == "high" and root.metadata["kilocode_id"] == "task_1730455200000_k3j9x"
    assert root.created_at == datetime(2025, 11, 1, 10, 0, tzinfo=UTC)
    assert [(n.depth, n.task.title) for n in tasks.tree(root.id)] == [
        (0, "Migrate auth service to OAuth 2.1"),
        (1, "Write the PKCE helper"),
        (1, "Token exchange endpoint"),
        (2, "Handle refresh-token rotation"),
        (1, "Remove the cookie session store"),
    ]
    logs = tasks.logs(root.id)
    assert [(line.level, line.message) for line in logs] == [
        ("info", "Task created from chat"),
        ("info", "Plan approved"),
        ("warning", "Rate limit on the IdP sandbox"),
    ]
    statuses = {t.title: t.status for t in tasks.load_all()}
    assert statuses["Upgrade the CI runners"] is TaskStatus.FAILED
    assert statuses["Remove the cookie session store"] is TaskStatus.BLOCKED
    assert statuses["Write release notes"] is TaskStatus.CANCELLED


def test_a_second_import_changes_nothing(tasks: Tasks) -> None:
    import_kilocode(tasks, FIXTURES / "complete")
    before = tasks.load_all()
    logs = {t.id: tasks.logs(t.id) for t in before}
    again = import_kilocode(tasks, FIXTURES / "complete")
    assert again.imported == 0
    assert {i.reason for i in again.items} == {"already imported"}
    assert tasks.load_all() == before
    assert {t.id: tasks.logs(t.id) for t in before} == logs


def test_a_damaged_main_file_falls_back_to_the_backup_and_says_so(tasks: Tasks) -> None:
    report = import_kilocode(tasks, FIXTURES / "damaged" / "tasks.json")
    assert report.path.endswith("tasks.backup.json")
    assert len(report.notes) == 1 and "tasks.json cannot be read" in report.notes[0]
    assert "not valid JSON" in report.notes[0]
    assert report.imported == 5


def test_a_partial_file_imports_what_it_can_and_says_why_it_skipped_the_rest(tasks: Tasks) -> None:
    report = import_kilocode(tasks, FIXTURES / "partial" / "tasks.json")
    skipped = {i.external_id: i.reason for i in report.items if i.outcome == "skipped"}
    assert skipped == {
        "kc-no-title": "it has no title",
        "kc-orphan": "its parent 'kc-no-title' is missing or was skipped",
        "kc-weird-status": "unknown status 'archived'",
        "kc-root": "a task with this id came earlier in the file",
        "#5": "it has no id",
        "#6": "not a task object",
    }
    assert any("says it holds 14 tasks but lists 10" in note for note in report.notes)
    imported = {i.external_id for i in report.items if i.outcome == "imported"}
    assert imported == {"kc-root", "kc-only-in-children", "kc-minimal", "kc-bad-logs"}
    child = tasks.imported("kilocode", "kc-only-in-children")
    root = tasks.imported("kilocode", "kc-root")
    assert child is not None and root is not None
    assert child.parent_id == root.id and child.progress == 0.75 and root.progress == 0.25
    bad_logs = tasks.imported("kilocode", "kc-bad-logs")
    assert bad_logs is not None
    assert [(line.level, line.message) for line in tasks.logs(bad_logs.id)] == [
        ("info", "plain string line"),
        ("info", "ok"),
    ]


def test_both_files_damaged_imports_nothing_and_names_both(tasks: Tasks, kilo_store: TestStore) -> None:
    with pytest.raises(CorruptionError) as err:
        import_kilocode(tasks, FIXTURES / "both_damaged")
    assert "tasks.json" in str(err.value) and "tasks.backup.json" in str(err.value)
    assert list(kilo_store.driver.scan(TASK_NS)) == []


def test_a_missing_file_is_not_found(tasks: Tasks, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        import_kilocode(tasks, tmp_path / "tasks.json")
    shutil.copy(FIXTURES / "complete" / "tasks.backup.json", tmp_path / "tasks.backup.json")
    report = import_kilocode(tasks, tmp_path)
    assert report.imported == 2 and "does not exist" in report.notes[0]


def test_the_legacy_bare_list_is_read_and_a_dry_run_writes_nothing(
    tasks: Tasks, kilo_store: TestStore
) -> None:
    plan = import_kilocode(tasks, FIXTURES / "legacy", dry_run=True)
    assert (plan.dry_run, plan.imported) == (True, 2)
    assert "legacy" in plan.notes[0]
    assert list(kilo_store.driver.scan(TASK_NS)) == []
    done = import_kilocode(tasks, FIXTURES / "legacy")
    assert done.imported == 2
    child = tasks.imported("kilocode", "legacy-2")
    assert child is not None and child.status is TaskStatus.COMPLETED and child.progress == 1.0
