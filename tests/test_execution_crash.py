"""A runner process SIGKILLed at random points, again and again, resumes each time and finishes
with every tool effect applied exactly once (SQLite, and PostgreSQL when configured).

Each child process opens the store by URL, takes the thread (waiting out the dead runner's
lease), resumes the run (or starts it) and is killed: by itself at the n-th occurrence of a chosen
point (inside a tool right after its effect and before it returns — the window where an effect
exists without a recorded result —, right after a result was recorded, right after a checkpoint,
right after an agent step) or from outside after a random delay. One append-only log holds, in
order, every tool start and every recorded result, so the test proves both that every effect
happened exactly once and that no call ever started again after its result was recorded."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from runtime_core import RunState, RunStatus
from runtime_persistence import Checkpoints, RunRecords
from runtime_persistence.testing import TestStore, store_fixture

crash_store = store_fixture("sqlite", "postgres")

KILLS_REQUIRED = 50
STEPS = 24

CHILD = r'''
import os, signal, sys, time
from pathlib import Path
from typing import Any

from runtime_core import NullTelemetry, RecoveryRefusedError, RuntimeBusyError
from runtime_execution import Runner, ScriptedAgent
from runtime_persistence import Checkpoints, Leases, RunRecords
from runtime_persistence.storage.stores import open_store
from runtime_tools import ToolContext, ToolRegistry, WorkspaceTools

url, workspace, thread_id, kill_point, kill_n, steps = sys.argv[1:7]
kill_n = int(kill_n)
ws = Path(workspace)
journal = os.open(str(ws.parent / "journal.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
seen: dict[str, int] = {}


def note(line: str) -> None:
    os.write(journal, (line + "\n").encode())


def point(name: str) -> None:
    seen[name] = seen.get(name, 0) + 1
    if name == kill_point and seen[name] == kill_n:
        os.kill(os.getpid(), signal.SIGKILL)


class KillingTelemetry(NullTelemetry):
    def event(self, name: str, **fields: Any) -> None:
        if name == "run.tool_call":
            note(f"recorded {fields['call_id']} {os.getpid()}")
        point(name)

    def span(self, name: str, **fields: Any):
        outer = self

        class _Span:
            def __enter__(self) -> dict[str, Any]:
                return {}

            def __exit__(self, *exc: object) -> None:
                outer.event(name)

        return _Span()


registry = ToolRegistry()
WorkspaceTools(ws).register(registry)


@registry.register
def append_line(line: str, context: ToolContext) -> int:
    """Append a line to the ledger once per call id (idempotent by call id)."""
    note(f"start {context.call_id} {os.getpid()}")
    ledger = ws / "ledger.txt"
    done = ledger.read_text().splitlines() if ledger.exists() else []
    if not any(entry.split(" ", 1)[0] == context.call_id for entry in done):
        fd = os.open(str(ledger), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, f"{context.call_id} {line}\n".encode())
        os.close(fd)
    point("tool_effect")
    return len(done) + 1


def script(n: int) -> list[Any]:
    items: list[Any] = []
    for i in range(n):
        if i % 5 == 4:
            items.append([("write_file", {"path": f"files/f{i}.txt", "content": f"file {i}\n"}), ("append_line", {"line": f"L{i}"})])
        else:
            items.append(("append_line", {"line": f"L{i}"}))
    return items


driver = open_store(url)
leases = Leases(driver)
runner = Runner(
    Checkpoints(driver, leases=leases), leases, RunRecords(driver), registry,
    telemetry=KillingTelemetry(), lease_ttl=0.4, heartbeat_every=0.1,
)
agent = ScriptedAgent(script(int(steps)), name="crash-test")
while True:
    try:
        try:
            run = runner.resume(thread_id, agent)
        except RecoveryRefusedError:
            sys.exit(0)  # already completed
        except LookupError:  # no run on the thread yet
            run = runner.start(agent, thread_id)
        break
    except RuntimeBusyError:
        time.sleep(0.05)  # the killed runner's lease has not expired yet
sys.exit(0 if run.status.value == "completed" else 3)
'''


def _script_calls(steps: int) -> list[str]:
    ids: list[str] = []
    for i in range(steps):
        if i % 5 == 4:
            ids += [f"s{i}c0", f"s{i}c1"]
        else:
            ids.append(f"s{i}c0")
    return ids


def _append_ids(steps: int) -> list[str]:
    return [f"s{i}c1" if i % 5 == 4 else f"s{i}c0" for i in range(steps)]


def _plan(rng: random.Random, index: int) -> tuple[str, int, float | None]:
    """(self-kill point, n, external kill delay): every fourth kill lands in the effect window."""
    if index % 4 == 0:
        return "tool_effect", rng.randint(1, 2), None
    choice = rng.random()
    if choice < 0.5:
        return (
            rng.choice(["run.tool_call", "run.checkpoint", "run.step", "tool_effect"]),
            rng.randint(1, 4),
            None,
        )
    return "none", 0, rng.uniform(0.3, 1.2)


@pytest.mark.slow
def test_sigkilled_runner_resumes_and_applies_every_effect_exactly_once(
    crash_store: TestStore, tmp_path: Path
) -> None:
    assert crash_store.url is not None
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    rng = random.Random(int(os.environ.get("KEEPUP_CRASH_SEED", "20250101")))
    checkpoints = Checkpoints(crash_store.driver)
    runs = RunRecords(crash_store.driver)
    kills = 0
    scenarios = 0
    reruns = 0
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    while kills < KILLS_REQUIRED:
        scenarios += 1
        root = tmp_path / f"scenario{scenarios}"
        ws = root / "ws"
        ws.mkdir(parents=True)
        thread_id = checkpoints.create_thread(f"crash {scenarios}").id
        launches = 0
        while True:
            launches += 1
            assert launches < 400, "the run makes no progress"
            point, n, delay = _plan(rng, kills)
            args = [
                sys.executable,
                str(child),
                crash_store.url,
                str(ws),
                thread_id,
                point,
                str(n),
                str(STEPS),
            ]
            proc = subprocess.Popen(args, env=env)
            if delay is not None:
                try:
                    proc.wait(timeout=delay)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
            code = proc.wait(timeout=120)
            if code == -signal.SIGKILL:
                kills += 1
                continue
            assert code == 0, f"the runner exited with {code}"
            break
        reruns += _check_scenario(root, thread_id, checkpoints, runs)
    assert kills >= KILLS_REQUIRED
    assert reruns > 0, "no kill landed between a tool's effect and its recorded result"


def _check_scenario(root: Path, thread_id: str, checkpoints: Checkpoints, runs: RunRecords) -> int:
    """Check one finished scenario; return how many calls were started more than once (each
    one interrupted between its effect and its recorded result, and made exactly-once by
    idempotency)."""
    ws = root / "ws"
    # the workspace: every append applied exactly once, in script order; every file written
    ledger = [line.split(" ", 1)[0] for line in (ws / "ledger.txt").read_text().splitlines()]
    assert ledger == _append_ids(STEPS)
    for i in range(4, STEPS, 5):
        assert (ws / "files" / f"f{i}.txt").read_text() == f"file {i}\n"
    # the recorded calls: each exactly once, in order, all successful
    head = checkpoints.latest(thread_id)
    assert head is not None
    state = RunState.from_channels(head.state)
    assert state.status is RunStatus.COMPLETED
    assert [r.call_id for r in state.completed_tool_calls] == _script_calls(STEPS)
    assert all(r.success for r in state.completed_tool_calls)
    (run,) = runs.list(thread_id=thread_id)
    assert run.status is RunStatus.COMPLETED and run.steps == STEPS + 1
    # never run again once recorded: no 'start' of a call after its 'recorded' line
    journal = [line.split() for line in (root / "journal.log").read_text().splitlines()]
    recorded: set[str] = set()
    starts: Counter[str] = Counter()
    for kind, call_id, _pid in journal:
        if kind == "recorded":
            recorded.add(call_id)
        else:
            assert call_id not in recorded, f"{call_id} started again after its result was recorded"
            starts[call_id] += 1
    assert set(starts) == set(_append_ids(STEPS))
    return sum(1 for n in starts.values() if n > 1)


def test_the_crash_plan_exercises_the_effect_window() -> None:
    rng = random.Random(1)
    plans = [_plan(rng, i) for i in range(KILLS_REQUIRED)]
    assert sum(1 for p in plans if p[0] == "tool_effect") >= KILLS_REQUIRED // 4
    assert any(p[2] is not None for p in plans)
