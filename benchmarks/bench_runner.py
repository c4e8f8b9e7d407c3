"""Runner overhead per step next to saving the same checkpoints directly, in the same run.

A scripted agent makes ``--steps`` steps, each calling one no-op tool, through the durable
runner: per step it saves a checkpoint, records the call as started and its result as pending
writes, checks and updates the run record, while a heartbeat thread renews the lease. The peers
save exactly the checkpoints the runner saved (same states, same order, read back from its
thread):

* ``direct saves``: ``Checkpoints.save`` of those states, nothing else (what a bare checkpointer
  pays);
* ``saves + writes``: the same saves plus the same pending writes (what any crash-safe loop that
  records tool results pays).

Each figure is the best of ``--rounds`` rounds, runner and peers interleaved so all see the same
machine load; the ratio is runner time per step / peer time per step (lower is better; 1.0
means the runner adds nothing).

    .venv/bin/python benchmarks/bench_runner.py                      # memory, sqlite (+ postgres if set)
    .venv/bin/python benchmarks/bench_runner.py --only sqlite --steps 300 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from runtime_core import Checkpoint, Driver, ToolCall, ToolCallResult, ToolDescription
from runtime_execution import Runner, ScriptedAgent
from runtime_persistence import Checkpoints, Leases, RunRecords
from runtime_persistence.storage.stores import open_store


class NoopTools:
    """A tool invoker whose one tool does nothing, so only the runner's own work is measured."""

    def describe(self) -> list[ToolDescription]:
        return [ToolDescription("noop", "does nothing", {"type": "object"})]

    def invoke(self, call: ToolCall, *, timeout: float | None = None) -> ToolCallResult:
        return ToolCallResult(call.id, call.name, call.arguments, True, output="ok", duration_ms=0.0)


def _isolated(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "prefix"]
    query.append(("prefix", f"kb{secrets.token_hex(4)}_"))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _stores(tmp: Path) -> dict[str, Callable[[], Driver]]:
    out: dict[str, Callable[[], Driver]] = {
        "memory": lambda: open_store("memory://"),
        "sqlite": lambda: open_store(f"sqlite:///{tmp / f'bench-{secrets.token_hex(4)}.db'}"),
    }
    pg = os.environ.get("KEEPUP_TEST_POSTGRES_URL")
    if pg:
        out["postgres"] = lambda: open_store(_isolated(pg))
    return out


def _destroy(driver: Driver) -> None:
    destroy = getattr(driver, "destroy", None)
    try:
        if destroy is not None:
            destroy()
    finally:
        driver.close()


def run_runner(driver: Driver, steps: int, heartbeat: float) -> tuple[float, list[Checkpoint]]:
    leases = Leases(driver)
    checkpoints = Checkpoints(driver, leases=leases)
    runner = Runner(
        checkpoints,
        leases,
        RunRecords(driver),
        NoopTools(),
        lease_ttl=timedelta(seconds=heartbeat * 3),
        heartbeat_every=heartbeat,
    )
    agent = ScriptedAgent([("noop", {"i": i}) for i in range(steps)], name="bench")
    started = time.perf_counter()
    run = runner.start(agent)
    elapsed = time.perf_counter() - started
    assert run.status.value == "completed", run
    history = checkpoints.list(run.thread_id, limit=steps + 10)
    history.reverse()
    return elapsed, history


def run_direct(driver: Driver, history: list[Checkpoint], with_writes: bool) -> float:
    checkpoints = Checkpoints(driver)
    thread_id = checkpoints.create_thread("direct").id
    started = time.perf_counter()
    parent: str | None = None
    for original in history:
        cp = checkpoints.save(thread_id, original.state, parent_id=parent, metadata=original.metadata)
        parent = cp.id
        if with_writes:
            for write in original.pending_writes:
                checkpoints.put_writes(cp.id, write.task_id, {write.channel: write.value})
    return time.perf_counter() - started


def measure(
    name: str, factory: Callable[[], Driver], steps: int, rounds: int, heartbeat: float
) -> dict[str, Any]:
    best = {"runner": float("inf"), "direct": float("inf"), "writes": float("inf")}
    renewals_seen = 0
    for _ in range(rounds):
        timings: dict[str, float] = {}
        history: list[Checkpoint] = []
        for side in ("runner", "direct", "writes"):  # each on a fresh, empty store
            driver = factory()
            try:
                if side == "runner":
                    timings[side], history = run_runner(driver, steps, heartbeat)
                else:
                    timings[side] = run_direct(driver, history, with_writes=side == "writes")
            finally:
                _destroy(driver)
        t_runner, t_direct, t_writes = timings["runner"], timings["direct"], timings["writes"]
        renewals_seen = max(renewals_seen, int(t_runner / heartbeat))
        best["runner"] = min(best["runner"], t_runner)
        best["direct"] = min(best["direct"], t_direct)
        best["writes"] = min(best["writes"], t_writes)
    per_step = {k: v / steps * 1000 for k, v in best.items()}
    return {"store": name, "steps": steps, "heartbeats": renewals_seen, **per_step}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", action="append", help="measure only this store (memory, sqlite, postgres)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--heartbeat", type=float, default=0.5, help="seconds between lease renewals")
    args, _unknown = parser.parse_known_args(argv)  # the nox session passes every script the same args
    with tempfile.TemporaryDirectory() as tmp:
        stores = _stores(Path(tmp))
        names = [n for n in stores if not args.only or n in args.only]
        print(
            f"runner overhead per step: {args.steps} steps, one no-op tool call each, best of {args.rounds}"
        )
        print(
            f"{'store':<9} {'runner ms/step':>15} {'direct saves':>13} {'ratio':>7} {'saves+writes':>13} {'ratio':>7}"
        )
        for name in names:
            row = measure(name, stores[name], args.steps, args.rounds, args.heartbeat)
            print(
                f"{row['store']:<9} {row['runner']:>15.3f} {row['direct']:>13.3f} "
                f"{row['runner'] / row['direct']:>7.2f} {row['writes']:>13.3f} {row['runner'] / row['writes']:>7.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
