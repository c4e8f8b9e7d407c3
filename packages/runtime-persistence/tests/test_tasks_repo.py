"""The task repository on every available driver: hierarchy, checked transitions (CAS), progress,
append-only logs; and two processes racing one transition on SQLite."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from runtime_core import (
    ConflictError,
    ManualClock,
    NotFoundError,
    TaskRepository,
    TaskStatus,
    ValidationError,
    new_id,
)
from runtime_persistence import Tasks
from runtime_persistence.session.tasks import TASK_CHILD_NS, TASK_LOG_NS, TASK_NS
from runtime_persistence.storage.stores import open_store
from runtime_persistence.testing import TestStore, open_test_store, store_fixture, unwrap

task_store = store_fixture(modes=("sync", "async"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def tasks(task_store: TestStore, clock: ManualClock) -> Tasks:
    tasks: Tasks = task_store.make(Tasks, clock=clock)
    return tasks


def test_tasks_implement_the_core_protocol(tasks: Tasks) -> None:
    assert isinstance(tasks, TaskRepository)


def test_a_created_task_reads_back_pending(tasks: Tasks, clock: ManualClock) -> None:
    task = tasks.create("write docs", assignee="ann", metadata={"priority": 2})
    assert task.status is TaskStatus.PENDING and task.progress == 0.0
    assert task.created_at == task.updated_at == clock.now()
    assert tasks.get(task.id) == task


def test_unknown_task_ids_raise_not_found(tasks: Tasks) -> None:
    missing = new_id()
    with pytest.raises(NotFoundError):
        tasks.get(missing)
    with pytest.raises(NotFoundError):
        tasks.transition(missing, TaskStatus.RUNNING)
    with pytest.raises(NotFoundError):
        tasks.set_progress(missing, 0.5)
    with pytest.raises(NotFoundError):
        tasks.children(missing)
    with pytest.raises(NotFoundError):
        tasks.log(missing, "hello")
    with pytest.raises(NotFoundError):
        tasks.logs(missing)
    with pytest.raises(NotFoundError):
        tasks.create("orphan", parent_id=missing)


def test_bad_input_is_refused_before_anything_is_written(tasks: Tasks, task_store: TestStore) -> None:
    with pytest.raises(ValidationError):
        tasks.create("")
    with pytest.raises(ValidationError):
        tasks.create("t", parent_id="nope")
    with pytest.raises(ValidationError):
        tasks.create("t", assignee="")
    with pytest.raises(ValidationError):
        tasks.create("t", metadata={"x": b"bytes are not json"})
    assert list(task_store.driver.scan(TASK_NS)) == []
    task = tasks.create("t")
    with pytest.raises(ValidationError):
        tasks.set_progress(task.id, 1.5)
    with pytest.raises(ValidationError):
        tasks.transition(task.id, "flying")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        tasks.log(task.id, "x", level="loud")
    assert tasks.get(task.id) == task
    assert list(task_store.driver.scan(TASK_LOG_NS)) == []


def test_allowed_transitions_move_the_task(tasks: Tasks, clock: ManualClock) -> None:
    task = tasks.create("t")
    clock.advance(5)
    running = tasks.transition(task.id, TaskStatus.RUNNING)
    assert running.status is TaskStatus.RUNNING and running.updated_at == clock.now()
    done = tasks.transition(task.id, TaskStatus.COMPLETED)
    assert done.status is TaskStatus.COMPLETED and done.progress == 1.0
    assert tasks.get(task.id) == done


def test_a_forbidden_transition_raises_validation_and_changes_nothing(tasks: Tasks) -> None:
    task = tasks.create("t")
    with pytest.raises(ValidationError):
        tasks.transition(task.id, TaskStatus.COMPLETED)  # pending cannot complete directly
    assert tasks.get(task.id) == task


def test_a_transition_from_a_status_it_did_not_see_raises_conflict(task_store: TestStore) -> None:
    """Another process blocks the task between our read and our write: our start must lose."""
    tasks = task_store.make(Tasks)
    task = tasks.create("t")
    racer = task_store.make_with_writer_between(
        Tasks, TASK_NS, lambda other: other.transition(task.id, TaskStatus.BLOCKED)
    )
    with pytest.raises(ConflictError):
        racer.transition(task.id, TaskStatus.RUNNING)
    assert tasks.get(task.id).status is TaskStatus.BLOCKED


def test_a_transition_survives_a_concurrent_progress_update(task_store: TestStore) -> None:
    tasks = task_store.make(Tasks)
    task = tasks.create("t")
    tasks.transition(task.id, TaskStatus.RUNNING)
    racer = task_store.make_with_writer_between(
        Tasks, TASK_NS, lambda other: other.set_progress(task.id, 0.25)
    )
    blocked = racer.transition(task.id, TaskStatus.BLOCKED)
    assert blocked.status is TaskStatus.BLOCKED and blocked.progress == 0.25
    assert tasks.get(task.id) == blocked


def test_progress_is_stored_and_final_once_completed(tasks: Tasks) -> None:
    task = tasks.create("t")
    assert tasks.set_progress(task.id, 0.5).progress == 0.5
    assert tasks.get(task.id).progress == 0.5
    tasks.transition(task.id, TaskStatus.RUNNING)
    tasks.transition(task.id, TaskStatus.COMPLETED)
    with pytest.raises(ConflictError):
        tasks.set_progress(task.id, 0.1)


def test_children_come_back_in_creation_order_through_the_parent_index(
    tasks: Tasks, task_store: TestStore
) -> None:
    root, other = tasks.create("root"), tasks.create("other")
    kids = [tasks.create(f"kid {i}", parent_id=root.id) for i in range(4)]
    grandchild = tasks.create("grandchild", parent_id=kids[0].id)
    tasks.create("other's kid", parent_id=other.id)
    assert [t.id for t in tasks.children(root.id)] == [k.id for k in kids]
    assert [t.id for t in tasks.children(kids[0].id)] == [grandchild.id]
    assert tasks.children(grandchild.id) == []
    assert len(list(task_store.driver.scan(TASK_CHILD_NS, prefix=f"{root.id}/"))) == 4


def test_a_child_index_entry_without_its_record_is_skipped(tasks: Tasks, task_store: TestStore) -> None:
    root = tasks.create("root")
    task_store.driver.put(TASK_CHILD_NS, f"{root.id}/{new_id()}", b"\x01")  # a crashed create
    kid = tasks.create("kid", parent_id=root.id)
    assert [t.id for t in tasks.children(root.id)] == [kid.id]


def test_logs_are_append_only_and_time_ordered(tasks: Tasks, clock: ManualClock) -> None:
    task, other = tasks.create("t"), tasks.create("o")
    lines = []
    for i, level in enumerate(["info", "debug", "warning", "error"]):
        clock.advance(1)
        lines.append(tasks.log(task.id, f"line {i}", level=level))
    tasks.log(other.id, "elsewhere")
    assert tasks.logs(task.id) == lines
    assert tasks.logs(task.id, limit=2) == lines[:2]
    assert [line.message for line in tasks.logs(other.id)] == ["elsewhere"]


def test_concurrent_async_transitions_of_one_task_have_exactly_one_winner(task_store: TestStore) -> None:
    """Eight coroutines on one event loop start the same task at once: one wins, the others get
    ConflictError (lost the compare-and-set) or ValidationError (read it running already)."""
    import asyncio

    from runtime_persistence.session.tasks import AsyncTasks

    if not task_store.is_async:
        pytest.skip("an event-loop concurrency test")
    assert task_store.portal is not None
    tasks = AsyncTasks(unwrap(task_store.driver))

    async def race() -> list[object]:
        task = await tasks.create("contested")
        return await asyncio.gather(
            *(tasks.transition(task.id, TaskStatus.RUNNING) for _ in range(8)), return_exceptions=True
        )

    outcomes = task_store.portal.call(race())
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, (ConflictError, ValidationError)) for o in outcomes if o not in winners)


def _claim_in_child(url: str, task_ids: list[str], start: Any, out: Any) -> None:
    driver = open_store(url)
    try:
        tasks = Tasks(driver)
        outcomes: dict[str, str] = {}
        start.wait(30)
        for task_id in task_ids:
            try:
                tasks.transition(task_id, TaskStatus.RUNNING)
                outcomes[task_id] = "won"
            except (ConflictError, ValidationError) as exc:  # lost the race, or came second
                outcomes[task_id] = type(exc).__name__
        out.put(outcomes)
    finally:
        driver.close()


def test_two_processes_starting_the_same_tasks_on_sqlite_have_exactly_one_winner_each(
    tmp_path: Path,
) -> None:
    ctx = multiprocessing.get_context("spawn")
    with open_test_store("sqlite", tmp_path) as store:
        assert store.url is not None
        tasks = Tasks(store.driver)
        ids = [tasks.create(f"contested {i}").id for i in range(30)]
        start, out = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_claim_in_child, args=(store.url, ids, start, out)) for _ in range(2)]
        for p in procs:
            p.start()
        start.set()
        results = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        for task_id in ids:
            outcomes = sorted(r[task_id] for r in results)
            assert outcomes.count("won") == 1, (task_id, outcomes)
            assert tasks.get(task_id).status is TaskStatus.RUNNING
