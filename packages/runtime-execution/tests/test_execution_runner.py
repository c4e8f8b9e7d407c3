"""The durable runner on real stores (memory and SQLite): checkpoints, pending writes, recovery,
leases, cancellation, limits, failures, replay and telemetry.

The tools are a small invoker of our own (a test double of core's ToolInvoker Protocol: this
package never imports runtime_tools)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from runtime_core import (
    CheckpointSource,
    Clock,
    ConflictError,
    ManualClock,
    Message,
    NotFoundError,
    RecoveryRefusedError,
    Run,
    RunState,
    RunStatus,
    RuntimeBusyError,
    ToolCall,
    ToolCallResult,
    ToolDescription,
    ValidationError,
    new_id,
)
from runtime_execution import (
    RESULT_CHANNEL,
    STARTED_CHANNEL,
    LeaseKeeper,
    LeaseLostError,
    Runner,
    ScriptedAgent,
    Step,
    StepContext,
    run_id_of_holder,
)
from runtime_persistence import Checkpoints, Leases, RunRecords
from runtime_persistence.testing import open_test_store
from runtime_telemetry import StructuredTelemetry


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the runner catches it."""


@dataclass
class LedgerTools:
    """Tools that append to an in-memory ledger, counting every execution.

    ``append`` is idempotent by call id when ``idempotent`` is set. ``crash_after_effect`` names
    call ids whose first execution crashes right after its effect, before returning."""

    idempotent: bool = False
    crash_after_effect: set[str] = field(default_factory=set)
    ledger: list[tuple[str, Any]] = field(default_factory=list)
    executions: list[str] = field(default_factory=list)
    gate: threading.Event | None = None  # when set, "wait" blocks until the gate opens

    def describe(self) -> list[ToolDescription]:
        return [
            ToolDescription("append", "append a value", {"type": "object"}),
            ToolDescription("fail", "always fails", {"type": "object"}),
            ToolDescription("wait", "waits for the gate", {"type": "object"}),
        ]

    def invoke(self, call: ToolCall, *, timeout: float | None = None) -> ToolCallResult:
        self.executions.append(call.id)
        if call.name == "append":
            if not (self.idempotent and any(cid == call.id for cid, _ in self.ledger)):
                self.ledger.append((call.id, call.arguments.get("value")))
            if call.id in self.crash_after_effect:
                self.crash_after_effect.discard(call.id)
                raise Crash(call.id)
            return ToolCallResult(call.id, call.name, call.arguments, True, output=len(self.ledger))
        if call.name == "wait":
            assert self.gate is not None
            self.gate.wait(10)
            return ToolCallResult(call.id, call.name, call.arguments, True, output="opened")
        if call.name == "fail":
            return ToolCallResult(call.id, call.name, call.arguments, False, error="it failed")
        return ToolCallResult(call.id, call.name, call.arguments, False, error=f"unknown tool {call.name}")


@dataclass
class Stores:
    checkpoints: Checkpoints
    leases: Leases
    runs: RunRecords


def make_stores(driver: Any, clock: Clock | None = None) -> Stores:
    leases = Leases(driver, clock=clock)
    return Stores(Checkpoints(driver, leases=leases, clock=clock), leases, RunRecords(driver))


@pytest.fixture(params=["memory", "sqlite"])
def store_driver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with open_test_store(request.param, tmp_path) as store:
        yield store.driver


@pytest.fixture
def stores(store_driver: Any) -> Stores:
    return make_stores(store_driver)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def appends(n: int, *, per_step: int = 1) -> list[Any]:
    return [[("append", {"value": f"v{i}-{j}"}) for j in range(per_step)] for i in range(n)]


def runner(stores: Stores, tools: Any, **options: Any) -> Runner:
    return Runner(stores.checkpoints, stores.leases, stores.runs, tools, **options)


def final_state(stores: Stores, thread_id: str) -> RunState:
    head = stores.checkpoints.latest(thread_id)
    assert head is not None
    return RunState.from_channels(head.state)


def test_a_run_completes_with_a_checkpoint_per_step(stores: Stores) -> None:
    tools = LedgerTools()
    agent = ScriptedAgent(["hello", *appends(3)], final_message="bye")
    run = runner(stores, tools).start(agent, input="go")
    assert run.status is RunStatus.COMPLETED and run.ended_at is not None and run.error is None
    assert run.steps == 5  # one message, three tool steps, the final step
    checkpoints = stores.checkpoints.list(run.thread_id)
    assert len(checkpoints) == 6  # the input checkpoint and one per step
    assert checkpoints[-1].source is CheckpointSource.INPUT
    assert all(c.metadata["run_id"] == run.id for c in checkpoints)
    state = final_state(stores, run.thread_id)
    assert state.status is RunStatus.COMPLETED
    assert [r.call_id for r in state.completed_tool_calls] == ["s1c0", "s2c0", "s3c0"]
    assert tools.ledger == [("s1c0", "v0-0"), ("s2c0", "v1-0"), ("s3c0", "v2-0")]
    roles = [m.role for m in state.messages]
    assert roles == ["user", "assistant", "tool", "tool", "tool", "assistant"]
    assert stores.runs.get(run.id) == run
    assert stores.leases.current(run.thread_id) is None  # released


def test_each_tool_result_is_a_pending_write_of_the_checkpoint_that_asked_for_it(stores: Stores) -> None:
    tools = LedgerTools()
    run = runner(stores, tools).start(ScriptedAgent(appends(1, per_step=2)))
    asking = [c for c in stores.checkpoints.list(run.thread_id) if c.state["pending_tool_calls"]]
    assert len(asking) == 1
    writes = {(w.task_id, w.channel) for w in asking[0].pending_writes}
    assert writes == {
        ("s0c0", STARTED_CHANNEL),
        ("s0c0", RESULT_CHANNEL),
        ("s0c1", STARTED_CHANNEL),
        ("s0c1", RESULT_CHANNEL),
    }
    result = next(
        w.value for w in asking[0].pending_writes if w.channel == RESULT_CHANNEL and w.task_id == "s0c1"
    )
    assert result["success"] is True and result["output"] == 2


def test_a_crash_after_a_recorded_result_never_runs_that_call_again(stores: Stores) -> None:
    tools = LedgerTools()

    class CrashOnSecondResult(StructuredTelemetry):
        def event(self, name: str, **fields: Any) -> None:
            super().event(name, **fields)
            if name == "run.tool_call" and fields["call_id"] == "s0c1":
                raise Crash("after the result of s0c1 was recorded")

    agent = ScriptedAgent(appends(2, per_step=3))
    with pytest.raises(Crash):
        runner(stores, tools, telemetry=CrashOnSecondResult()).start(agent)
    assert tools.executions == ["s0c0", "s0c1"]
    run = stores.runs.list()[0]
    assert run.status is RunStatus.RUNNING
    done = runner(stores, tools).resume(run.id, agent)
    assert done.status is RunStatus.COMPLETED and done.id == run.id
    assert tools.executions == ["s0c0", "s0c1", "s0c2", "s1c0", "s1c1", "s1c2"]
    assert [cid for cid, _ in tools.ledger] == ["s0c0", "s0c1", "s0c2", "s1c0", "s1c1", "s1c2"]


def test_a_crash_between_effect_and_result_reruns_only_that_call(stores: Stores) -> None:
    tools = LedgerTools(idempotent=True, crash_after_effect={"s0c1"})
    agent = ScriptedAgent(appends(2, per_step=2))
    telemetry = StructuredTelemetry()
    with pytest.raises(Crash):
        runner(stores, tools).start(agent)
    run = runner(stores, tools, telemetry=telemetry).resume(stores.runs.list()[0].id, agent)
    assert run.status is RunStatus.COMPLETED
    assert tools.executions == ["s0c0", "s0c1", "s0c1", "s1c0", "s1c1"]  # at least once ...
    assert [cid for cid, _ in tools.ledger] == [
        "s0c0",
        "s0c1",
        "s1c0",
        "s1c1",
    ]  # ... exactly once when idempotent
    interrupted = telemetry.recent_events("run.tool_interrupted")
    assert [e.fields["call_id"] for e in interrupted] == ["s0c1"]


def test_interrupted_calls_can_be_failed_instead_of_rerun(stores: Stores) -> None:
    tools = LedgerTools(crash_after_effect={"s0c0"})
    agent = ScriptedAgent(appends(2))
    with pytest.raises(Crash):
        runner(stores, tools).start(agent)
    run = runner(stores, tools, rerun_interrupted=False).resume(stores.runs.list()[0].id, agent)
    assert run.status is RunStatus.COMPLETED
    assert tools.executions == ["s0c0", "s1c0"]  # at most once
    state = final_state(stores, run.thread_id)
    first = state.completed_tool_calls[0]
    assert first.call_id == "s0c0" and not first.success and "interrupted" in (first.error or "")


def test_resume_by_thread_id(stores: Stores) -> None:
    tools = LedgerTools(crash_after_effect={"s1c0"})
    agent = ScriptedAgent(appends(3))
    with pytest.raises(Crash):
        runner(stores, tools).start(agent)
    thread_id = stores.checkpoints.list_threads()[0].id
    r = runner(stores, tools, agents=[agent])
    run = r.resume(thread_id)  # the agent is found by name
    assert run.status is RunStatus.COMPLETED and run.thread_id == thread_id


def test_resume_of_a_finished_run_is_refused(stores: Stores) -> None:
    r = runner(stores, LedgerTools())
    agent = ScriptedAgent(appends(1))
    run = r.start(agent)
    with pytest.raises(RecoveryRefusedError):
        r.resume(run.id, agent)


def test_resume_brings_a_lagging_record_in_line_with_the_checkpoint(stores: Stores) -> None:
    r = runner(stores, LedgerTools())
    agent = ScriptedAgent(["hi"])
    run = r.start(agent)
    # a record left 'running' by a crash after the final checkpoint (the store never moves a
    # finished record back, so make a second record and point a final checkpoint at it)
    lagging = stores.runs.create(
        Run(
            id=new_id(),
            thread_id=run.thread_id,
            agent=run.agent,
            status=RunStatus.RUNNING,
            started_at=run.started_at,
        )
    )
    head = stores.checkpoints.latest(run.thread_id)
    assert head is not None
    stores.checkpoints.save(run.thread_id, head.state, metadata={**head.metadata, "run_id": lagging.id})
    with pytest.raises(RecoveryRefusedError):
        r.resume(lagging.id, agent)
    assert stores.runs.get(lagging.id).status is RunStatus.COMPLETED


def test_a_recoverable_failure_is_resumed_as_a_new_run(stores: Stores) -> None:
    tools = LedgerTools()
    agent = ScriptedAgent(appends(3), fail_at=2, recoverable=True)
    r = runner(stores, tools)
    failed = r.start(agent)
    assert failed.status is RunStatus.FAILED and failed.error is not None and failed.error.recoverable
    assert failed.error.code == "scripted_failure"
    resumed = r.resume(failed.id)
    assert resumed.status is RunStatus.COMPLETED and resumed.id != failed.id
    assert resumed.metadata["resumed_from"] == failed.id
    assert [cid for cid, _ in tools.ledger] == ["s0c0", "s1c0", "s2c0"]
    assert stores.runs.get(failed.id).status is RunStatus.FAILED


def test_a_non_recoverable_failure_cannot_be_resumed(stores: Stores) -> None:
    agent = ScriptedAgent(appends(3), fail_at=1, recoverable=False)
    r = runner(stores, LedgerTools())
    failed = r.start(agent)
    assert failed.status is RunStatus.FAILED and failed.error is not None and not failed.error.recoverable
    with pytest.raises(RecoveryRefusedError):
        r.resume(failed.id)


def test_an_agent_exception_is_a_recoverable_failure(stores: Stores) -> None:
    agent = ScriptedAgent(["a", "b"], fail_at=1, raise_error=True)
    run = runner(stores, LedgerTools()).start(agent)
    assert run.status is RunStatus.FAILED and run.error is not None
    assert run.error.code == "agent_error" and run.error.recoverable
    assert "ScriptedFailure" in run.error.message
    state = final_state(stores, run.thread_id)
    assert state.status is RunStatus.FAILED and state.error == run.error


def test_max_steps_fails_the_run_for_good(stores: Stores) -> None:
    r = runner(stores, LedgerTools())
    agent = ScriptedAgent(appends(10))
    run = r.start(agent, max_steps=3)
    assert run.status is RunStatus.FAILED and run.steps == 3
    assert run.error is not None and run.error.code == "max_steps" and not run.error.recoverable
    with pytest.raises(RecoveryRefusedError):
        r.resume(run.id)


def test_reused_tool_call_ids_fail_the_run(stores: Stores) -> None:
    call = ToolCall("same", "append", {"value": 1})
    run = runner(stores, LedgerTools()).start(ScriptedAgent([call, call]))
    assert run.status is RunStatus.FAILED and run.error is not None
    assert run.error.code == "duplicate_tool_call_id" and not run.error.recoverable


def test_an_agent_returning_something_else_fails_the_run(stores: Stores) -> None:
    class Broken:
        name = "broken"

        def step(self, state: RunState, context: StepContext) -> Step:
            return "not a step"  # type: ignore[return-value]

    run = runner(stores, LedgerTools()).start(Broken())
    assert run.status is RunStatus.FAILED and run.error is not None and run.error.code == "invalid_step"


def test_failed_tool_calls_are_results_not_run_failures(stores: Stores) -> None:
    run = runner(stores, LedgerTools()).start(ScriptedAgent([("fail", {})]))
    assert run.status is RunStatus.COMPLETED
    state = final_state(stores, run.thread_id)
    assert not state.completed_tool_calls[0].success
    assert state.messages[-1].content == "error: it failed" and state.messages[-1].role == "tool"


class GatedAgent:
    """Calls the gated 'wait' tool once, then finishes; lets a test act while the run is live."""

    name = "gated"

    def step(self, state: RunState, context: StepContext) -> Step:
        if state.step == 0:
            return Step.call(ToolCall("w", "wait", {}))
        return Step.finish("done")


def _run_in_thread(r: Runner, agent: Any, **kwargs: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def target() -> None:
        try:
            out.append(r.start(agent, **kwargs))
        except BaseException as exc:
            out.append(exc)

    t = threading.Thread(target=target)
    t.start()
    return t, out


def test_restore_and_a_second_run_are_refused_while_a_run_holds_the_lease(stores: Stores) -> None:
    gate = threading.Event()
    tools = LedgerTools(gate=gate)
    r = runner(stores, tools)
    thread_id = stores.checkpoints.create_thread("t").id
    t, out = _run_in_thread(r, GatedAgent(), thread_id=thread_id)
    wait_until(lambda: "w" in tools.executions)
    lease = stores.leases.current(thread_id)
    assert lease is not None
    first = stores.checkpoints.list(thread_id)[-1]
    with pytest.raises(RuntimeBusyError) as busy:
        stores.checkpoints.restore(first.id)
    assert busy.value.holder is not None
    run_id = run_id_of_holder(busy.value.holder)
    assert stores.runs.get(run_id).status is RunStatus.RUNNING
    with pytest.raises(RuntimeBusyError):
        r.start(ScriptedAgent(["x"]), thread_id=thread_id)
    with pytest.raises(RuntimeBusyError):
        r.resume(run_id, GatedAgent())
    gate.set()
    t.join(10)
    assert out[0].status is RunStatus.COMPLETED
    stores.checkpoints.restore(first.id)  # allowed once the run is over


def test_heartbeats_keep_the_lease_alive_past_its_ttl(stores: Stores) -> None:
    gate = threading.Event()
    tools = LedgerTools(gate=gate)
    r = runner(stores, tools, lease_ttl=0.5, heartbeat_every=0.1)
    thread_id = stores.checkpoints.create_thread("t").id
    t, out = _run_in_thread(r, GatedAgent(), thread_id=thread_id)
    wait_until(lambda: "w" in tools.executions)
    first = stores.leases.current(thread_id)
    assert first is not None
    threading.Event().wait(1.2)  # more than two ttls
    later = stores.leases.current(thread_id)
    assert later is not None and later.expires_at > first.expires_at
    gate.set()
    t.join(10)
    assert out[0].status is RunStatus.COMPLETED


def test_a_crashed_runners_lease_expires_and_then_restore_and_resume_are_allowed(store_driver: Any) -> None:
    clock = ManualClock()
    stores = make_stores(store_driver, clock)
    tools = LedgerTools(crash_after_effect={"s1c0"})
    agent = ScriptedAgent(appends(3))
    r = runner(stores, tools, lease_ttl=timedelta(seconds=30))
    # a runner that dies keeps its lease: take one like it did, and never release it
    with pytest.raises(Crash):
        r.start(agent)
    run = stores.runs.list()[0]
    stores.leases.acquire(run.thread_id, f"{run.id}+deadbeef", timedelta(seconds=30))
    first = stores.checkpoints.list(run.thread_id)[-1]
    with pytest.raises(RuntimeBusyError):
        stores.checkpoints.restore(first.id)
    with pytest.raises(RuntimeBusyError):
        r.resume(run.id)
    clock.advance(timedelta(seconds=31))
    assert stores.leases.current(run.thread_id) is None
    done = r.resume(run.id)
    assert done.status is RunStatus.COMPLETED
    stores.checkpoints.restore(first.id)


def test_a_runner_that_lost_its_lease_stops_before_touching_the_thread(store_driver: Any) -> None:
    clock = ManualClock()
    stores = make_stores(store_driver, clock)
    gate = threading.Event()
    tools = LedgerTools(gate=gate)
    telemetry = StructuredTelemetry()
    # heartbeats far apart: none happens during the test, as if the runner had been paused
    r = runner(
        stores, tools, lease_ttl=timedelta(seconds=30), heartbeat_every=20, telemetry=telemetry, clock=clock
    )
    thread_id = stores.checkpoints.create_thread("t").id
    t, out = _run_in_thread(r, GatedAgent(), thread_id=thread_id)
    wait_until(lambda: "w" in tools.executions)
    clock.advance(timedelta(seconds=60))  # the lease expires ...
    stores.leases.acquire(thread_id, "intruder", timedelta(seconds=300))  # ... and someone takes it
    before = stores.checkpoints.latest(thread_id)
    gate.set()
    t.join(10)
    assert isinstance(out[0], LeaseLostError)
    after = stores.checkpoints.latest(thread_id)
    assert before is not None and after is not None and after.id == before.id
    lease = stores.leases.current(thread_id)
    assert lease is not None and lease.holder == "intruder"
    assert telemetry.recent_events("run.lease_lost")


def test_a_heartbeat_that_finds_another_holder_marks_the_lease_lost(store_driver: Any) -> None:
    clock = ManualClock()
    stores = make_stores(store_driver, clock)
    thread_id = stores.checkpoints.create_thread("t").id
    lease = stores.leases.acquire(thread_id, "mine", timedelta(seconds=10))
    keeper = LeaseKeeper(stores.leases, lease, ttl=timedelta(seconds=10), every=5, clock=clock)
    assert keeper.renew_now() and keeper.valid() and keeper.renewals == 1
    clock.advance(timedelta(seconds=11))
    assert not keeper.valid()  # no heartbeat within the ttl: no longer trusted ...
    assert keeper.renew_now() and keeper.valid()  # ... until a renewal succeeds (nobody took it)
    clock.advance(timedelta(seconds=11))
    stores.leases.acquire(thread_id, "theirs", timedelta(seconds=10))
    assert not keeper.renew_now()
    assert not keeper.valid() and "lost" in (keeper.lost_reason or "")


def test_cancel_stops_a_running_run_at_the_next_step_with_a_checkpoint(stores: Stores) -> None:
    gate = threading.Event()
    tools = LedgerTools(gate=gate)
    r = runner(stores, tools)
    thread_id = stores.checkpoints.create_thread("t").id
    t, out = _run_in_thread(r, GatedAgent(), thread_id=thread_id)
    wait_until(lambda: "w" in tools.executions)
    run_id = stores.runs.list(thread_id=thread_id)[0].id
    requested = r.cancel(run_id)
    assert requested.cancel_requested and requested.status is RunStatus.RUNNING
    gate.set()
    t.join(10)
    assert out[0].status is RunStatus.CANCELLED and out[0].ended_at is not None
    head = stores.checkpoints.latest(thread_id)
    assert head is not None and head.metadata["event"] == "cancel"
    state = RunState.from_channels(head.state)
    assert state.status is RunStatus.CANCELLED
    assert state.completed_tool_calls[0].call_id == "w"  # the result of the step before is kept


def test_cancel_of_a_crashed_run_finishes_it_at_once(stores: Stores) -> None:
    tools = LedgerTools(crash_after_effect={"s0c0"})
    agent = ScriptedAgent(appends(2))
    r = runner(stores, tools)
    with pytest.raises(Crash):
        r.start(agent)
    run = stores.runs.list()[0]
    cancelled = r.cancel(run.id)
    assert cancelled.status is RunStatus.CANCELLED
    assert final_state(stores, run.thread_id).status is RunStatus.CANCELLED
    with pytest.raises(RecoveryRefusedError):
        r.resume(run.id)
    assert r.cancel(run.id).status is RunStatus.CANCELLED  # idempotent


def test_a_thread_with_an_unfinished_run_refuses_a_new_start(stores: Stores) -> None:
    tools = LedgerTools(crash_after_effect={"s0c0"})
    r = runner(stores, tools)
    with pytest.raises(Crash):
        r.start(ScriptedAgent(appends(2)))
    run = stores.runs.list()[0]
    with pytest.raises(ConflictError, match="unfinished"):
        r.start(ScriptedAgent(["x"]), thread_id=run.thread_id)


def test_a_second_run_on_a_thread_continues_its_conversation(stores: Stores) -> None:
    r = runner(stores, LedgerTools())
    first = r.start(ScriptedAgent(["first answer"]), input="first question")
    second = r.start(ScriptedAgent(["second answer"]), thread_id=first.thread_id, input="second question")
    assert second.status is RunStatus.COMPLETED and second.id != first.id
    contents = [m.content for m in final_state(stores, first.thread_id).messages]
    assert contents == ["first question", "first answer", "second question", "second answer"]
    assert [r.id for r in stores.runs.list(thread_id=first.thread_id)] == [second.id, first.id]


def test_channels_the_runner_does_not_own_are_kept(stores: Stores) -> None:
    thread_id = stores.checkpoints.create_thread("t").id
    stores.checkpoints.save(thread_id, {"notes": {"k": "v"}, "messages": [{"role": "user", "content": "hi"}]})
    run = runner(stores, LedgerTools()).start(ScriptedAgent(["hello"]), thread_id=thread_id)
    head = stores.checkpoints.latest(run.thread_id)
    assert head is not None and head.state["notes"] == {"k": "v"}
    assert [m["content"] for m in head.state["messages"]] == ["hi", "hello"]


def test_replay_onto_a_fork_reproduces_the_run_and_leaves_the_original_untouched(stores: Stores) -> None:
    tools = LedgerTools()
    agent = ScriptedAgent(["plan", *appends(3)], final_message="done")
    original = runner(stores, tools).start(agent, input="go")
    history = stores.checkpoints.list(original.thread_id)
    original_head = history[0]
    middle = next(c for c in history if c.state["step"] == 3)  # s1c0 done, s2c0 pending
    # the world as it was at the middle checkpoint: the first append done (the facade restores
    # the workspace snapshot for this; here the ledger is our whole "workspace")
    again = LedgerTools(ledger=list(tools.ledger[:1]))
    replayed = runner(stores, again, agents=[agent]).replay(middle.id)
    assert replayed.status is RunStatus.COMPLETED and replayed.thread_id != original.thread_id
    assert replayed.metadata["replay_of"] == middle.id and replayed.metadata["source_run"] == original.id
    fork = stores.checkpoints.get_thread(replayed.thread_id)
    assert fork.forked_from == middle.id and fork.parent_thread_id == original.thread_id
    assert stores.checkpoints.latest(original.thread_id) == original_head  # untouched
    assert _comparable(final_state(stores, replayed.thread_id)) == _comparable(
        final_state(stores, original.thread_id)
    )
    # the calls pending at the middle checkpoint and after it ran again, the earlier ones did not
    assert again.executions == ["s2c0", "s3c0"]
    assert again.ledger == tools.ledger
    r = runner(stores, again, agents=[agent])
    assert r.divergence(middle.id, replayed.id) is None
    # an agent that decides differently from step 4 on diverges there
    other = ScriptedAgent(["plan", *appends(2), "something else"], final_message="done")
    different = runner(stores, LedgerTools(ledger=list(tools.ledger[:1]))).replay(middle.id, other)
    assert r.divergence(middle.id, different.id) == 4


def test_replay_without_fork_writes_a_new_head_on_the_same_thread(stores: Stores) -> None:
    tools = LedgerTools()
    r = runner(stores, tools)
    original = r.start(ScriptedAgent(appends(2)))
    first_step = next(c for c in stores.checkpoints.list(original.thread_id) if c.state["step"] == 1)
    replayed = r.replay(first_step.id, fork=False)
    assert replayed.thread_id == original.thread_id and replayed.status is RunStatus.COMPLETED
    restore = next(
        c for c in stores.checkpoints.list(original.thread_id) if c.metadata.get("event") == "replay"
    )
    assert restore.source is CheckpointSource.RESTORE and restore.metadata["replay_of"] == first_step.id


def test_replay_needs_a_known_agent(stores: Stores) -> None:
    run = runner(stores, LedgerTools()).start(ScriptedAgent(["x"], name="somebody"))
    with pytest.raises(NotFoundError):
        runner(stores, LedgerTools()).replay(stores.checkpoints.list(run.thread_id)[-1].id)


def test_telemetry_reports_start_steps_tool_calls_checkpoints_and_finish(stores: Stores) -> None:
    telemetry = StructuredTelemetry()
    run = runner(stores, LedgerTools(), telemetry=telemetry).start(ScriptedAgent(appends(2)))
    names = [e.name for e in telemetry.recent_events() if e.name.startswith("run.")]
    assert names[0] == "run.started" and names[-1] == "run.finished"
    assert names.count("run.step") == 3 and names.count("run.tool_call") == 2
    assert names.count("run.checkpoint") == 4
    for name in ("run.step", "run.checkpoint", "run.tool_call", "run.finished"):
        assert all("duration_ms" in e.fields for e in telemetry.recent_events(name)), name
    finished = telemetry.recent_events("run.finished")[0]
    assert finished.fields["status"] == "completed" and finished.fields["run_id"] == run.id


def test_input_must_be_messages(stores: Stores) -> None:
    r = runner(stores, LedgerTools())
    with pytest.raises(ValidationError):
        r.start(ScriptedAgent(["x"]), input=[1, 2])  # type: ignore[list-item]
    run = r.start(ScriptedAgent(["x"]), input=[Message("system", "be brief"), Message("user", "hi")])
    assert [m.role for m in final_state(stores, run.thread_id).messages] == ["system", "user", "assistant"]


def test_runner_options_are_checked(stores: Stores) -> None:
    with pytest.raises(ValidationError):
        runner(stores, LedgerTools(), lease_ttl=0)
    with pytest.raises(ValidationError):
        runner(stores, LedgerTools(), lease_ttl=1, heartbeat_every=2)
    with pytest.raises(ValidationError):
        runner(stores, LedgerTools()).add_agent(object())  # type: ignore[arg-type]


def _comparable(state: RunState) -> dict[str, Any]:
    channels = state.to_channels()
    for r in channels["completed_tool_calls"]:
        r.pop("duration_ms")
    return channels


def test_resume_is_refused_when_the_thread_moved_on_to_another_run(stores: Stores) -> None:
    # issue 11 (missing test): a crashed run must not continue from a head another run wrote
    tools = LedgerTools(crash_after_effect={"s1c0"})
    agent = ScriptedAgent(appends(3))
    with pytest.raises(Crash):
        runner(stores, tools).start(agent)
    (crashed,) = stores.runs.list()
    head = stores.checkpoints.latest(crashed.thread_id)
    assert head is not None and head.metadata["run_id"] == crashed.id
    moved = stores.checkpoints.save(
        crashed.thread_id, head.state, metadata={**head.metadata, "run_id": new_id()}
    )
    executed = list(tools.executions)
    with pytest.raises(RecoveryRefusedError, match="moved on"):
        runner(stores, tools, agents=[agent]).resume(crashed.id)
    assert tools.executions == executed  # nothing was run again
    latest = stores.checkpoints.latest(crashed.thread_id)
    assert latest is not None and latest.id == moved.id  # and nothing was written
