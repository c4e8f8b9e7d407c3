"""Run records on every available driver: create, get, update (CAS), list, request_cancel."""

from __future__ import annotations

from dataclasses import replace

import pytest
from runtime_core import (
    ConflictError,
    ManualClock,
    NotFoundError,
    Run,
    RunError,
    RunStatus,
    RunStore,
    new_id,
)
from runtime_persistence import RunRecords
from runtime_persistence.testing import TestStore, store_fixture

run_store = store_fixture(modes=("sync", "async"))


@pytest.fixture
def runs(run_store: TestStore) -> RunRecords:
    runs: RunRecords = run_store.make(RunRecords)
    return runs


def _run(thread: str, status: RunStatus = RunStatus.RUNNING) -> Run:
    return Run(id=new_id(), thread_id=thread, agent="coder", status=status, started_at=ManualClock().now())


def test_run_records_implement_the_core_protocol(runs: RunRecords) -> None:
    assert isinstance(runs, RunStore)


def test_create_get_round_trip(runs: RunRecords) -> None:
    run = replace(_run(new_id()), error=RunError("boom", "E1", False), metadata={"a": [1, 2]})
    runs.create(run)
    assert runs.get(run.id) == run
    with pytest.raises(ConflictError):
        runs.create(run)
    with pytest.raises(NotFoundError):
        runs.get(new_id())


def test_list_by_thread_and_status_newest_first(runs: RunRecords) -> None:
    t1, t2 = new_id(), new_id()
    made = [runs.create(_run(t1 if i % 2 else t2)) for i in range(6)]
    assert [r.id for r in runs.list(limit=4)] == [r.id for r in made[::-1][:4]]
    assert [r.id for r in runs.list(thread_id=t1)] == [r.id for r in made[::-1] if r.thread_id == t1]
    runs.update(replace(made[1], status=RunStatus.COMPLETED, steps=3))
    assert [r.id for r in runs.list(status=RunStatus.COMPLETED)] == [made[1].id]
    assert made[1].id not in {r.id for r in runs.list(status=RunStatus.RUNNING)}
    assert [r.id for r in runs.list(thread_id=t1, status=RunStatus.COMPLETED)] == [made[1].id]


def test_cancel_request_survives_a_concurrent_update(runs: RunRecords) -> None:
    run = runs.create(_run(new_id()))
    assert runs.request_cancel(run.id).cancel_requested
    updated = runs.update(replace(run, steps=5))  # the runner did not see the request yet
    assert updated.cancel_requested and updated.steps == 5
    assert runs.get(run.id).cancel_requested


def test_a_finished_run_cannot_change_status(runs: RunRecords) -> None:
    run = runs.create(_run(new_id()))
    runs.update(replace(run, status=RunStatus.CANCELLED))
    with pytest.raises(ConflictError):
        runs.update(replace(run, status=RunStatus.RUNNING))
    assert not runs.request_cancel(run.id).cancel_requested


def test_a_run_state_recovers_from_its_checkpoint_and_pending_writes(run_store: TestStore) -> None:
    from runtime_core import (
        Message,
        RecoveryRefusedError,
        RunState,
        ToolCall,
        ToolCallResult,
        prepare_recovery,
    )
    from runtime_persistence import Checkpoints

    cps = Checkpoints(run_store.driver)
    thread = cps.create_thread()
    calls = (ToolCall("c1", "read", {"path": "a"}), ToolCall("c2", "write", {"path": "b"}))
    state = RunState(
        messages=(Message("user", "do it"),), pending_tool_calls=calls, step=3, status=RunStatus.RUNNING
    )
    cp = cps.save(thread.id, state.to_channels())
    # the first tool finished and its result was written before the crash; the second did not
    done = ToolCallResult("c1", "read", {"path": "a"}, True, output="contents")
    cps.put_writes(cp.id, "c1", {"tool_result": {"call_id": "c1", "output": done.output}})
    reopened = Checkpoints(run_store.driver).latest(thread.id)
    assert reopened is not None
    restored = RunState.from_channels(reopened.state)
    results = [
        ToolCallResult(w.value["call_id"], "read", {"path": "a"}, True, output=w.value["output"])
        for w in reopened.pending_writes
        if w.channel == "tool_result"
    ]
    plan = prepare_recovery(restored, results)
    assert plan.resume_step == 3
    assert [r.call_id for r in plan.completed] == ["c1"] and [c.id for c in plan.to_run] == ["c2"]
    finished = cps.save(thread.id, restored.evolve(status=RunStatus.COMPLETED).to_channels())
    with pytest.raises(RecoveryRefusedError):
        prepare_recovery(RunState.from_channels(cps.get(finished.id).state))
