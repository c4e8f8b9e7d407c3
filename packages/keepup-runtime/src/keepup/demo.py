"""``keepup demo``: a scripted agent (no model, no network) builds a tiny Python module in a
scratch workspace on the durable runner, runs its tests after every change, and then breaks them.

Every step leaves a checkpoint (the conversation), a shadow-git snapshot (the files) and a typed
artifact (the test report, ``test_report@1``, a new version of ``reports/tests.json`` in the
thread's scope). The run ends failed, non-recoverably, so the newcomer's next move is the one Keepup
exists for: find the last good checkpoint, diff it against the failure, restore it (files and
conversation) or fork a new thread from it. :func:`next_commands` gives those commands, exactly.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime_core import (
    ArtifactVersion,
    Checkpoint,
    RunState,
    RunStatus,
    ToolCallResult,
    TypedArtifact,
    ValidationError,
)
from runtime_execution import ScriptedAgent, Step
from runtime_persistence import redact_url
from runtime_persistence.storage.private import PRIVATE_DIR
from runtime_tools import ToolContext, ToolError, ToolSpec

from keepup.runtime import Runtime

__all__ = [
    "DEMO_AGENT_NAME",
    "DEMO_FIXED_AGENT_NAME",
    "REPORT_KEY",
    "DemoCommand",
    "DemoReport",
    "demo_agent",
    "demo_fixed_agent",
    "demo_tools",
    "last_good_checkpoint",
    "next_commands",
    "run_demo",
    "tests_passed",
]

DEMO_AGENT_NAME = "keepup-demo"
DEMO_FIXED_AGENT_NAME = "keepup-demo-fixed"
REPORT_KEY = "reports/tests.json"
_TEST_TIMEOUT = 120.0

_CALC = '''"""A tiny calculator, written by the Keepup demo agent."""


def add(a, b):
    return a + b
'''

_TESTS = """import unittest

from calc import add


class CalcTest(unittest.TestCase):
    def test_add(self):
        self.assertEqual(add(2, 3), 5)


if __name__ == "__main__":
    unittest.main()
"""


def _edit(path: str, old: str, new: str) -> tuple[str, dict[str, Any]]:
    return ("edit_file", {"path": path, "old": old, "new": new})


_RUN_TESTS: tuple[str, dict[str, Any]] = ("run_tests", {})


def demo_agent() -> ScriptedAgent:
    """The demo's agent: four steps that each change files and run the tests, then a failure.

    Step 3 "refactors" ``add`` with an off-by-one bug, its tests fail, and step 4 gives up with a
    non-recoverable error: the run cannot be resumed, only restored or forked from a good point."""
    return ScriptedAgent(
        [
            [
                ("write_file", {"path": "calc.py", "content": _CALC}),
                ("write_file", {"path": "test_calc.py", "content": _TESTS}),
                _RUN_TESTS,
            ],
            [
                _edit(
                    "calc.py",
                    "    return a + b\n",
                    "    return a + b\n\n\ndef subtract(a, b):\n    return a - b\n",
                ),
                _edit("test_calc.py", "from calc import add\n", "from calc import add, subtract\n"),
                _edit(
                    "test_calc.py",
                    "        self.assertEqual(add(2, 3), 5)\n",
                    "        self.assertEqual(add(2, 3), 5)\n\n"
                    "    def test_subtract(self):\n        self.assertEqual(subtract(5, 3), 2)\n",
                ),
                _RUN_TESTS,
            ],
            [
                _edit(
                    "calc.py",
                    "    return a - b\n",
                    "    return a - b\n\n\ndef multiply(a, b):\n    return a * b\n",
                ),
                _edit("test_calc.py", "import add, subtract\n", "import add, multiply, subtract\n"),
                _edit(
                    "test_calc.py",
                    "        self.assertEqual(subtract(5, 3), 2)\n",
                    "        self.assertEqual(subtract(5, 3), 2)\n\n"
                    "    def test_multiply(self):\n        self.assertEqual(multiply(4, 3), 12)\n",
                ),
                _RUN_TESTS,
            ],
            [
                _edit("calc.py", "    return a + b\n", "    return sum((a, b), 1)  # refactored\n"),
                _RUN_TESTS,
            ],
            Step.fail(
                "the refactor of add() broke its test; giving up (restore the last good checkpoint or fork from it)",
                code="tests_failed",
                recoverable=False,
            ),
        ],
        name=DEMO_AGENT_NAME,
    )


def demo_fixed_agent() -> ScriptedAgent:
    """The demo's retry: run from the last good checkpoint, it makes the refactor of ``add``
    without the bug, runs the tests (they pass) and finishes, so the story ends with a passing
    run (``keepup run start --from LAST_GOOD --agent keepup-demo-fixed``)."""
    return ScriptedAgent(
        [[_edit("calc.py", "    return a + b\n", "    return sum((a, b))  # refactored\n"), _RUN_TESTS]],
        name=DEMO_FIXED_AGENT_NAME,
        final_message="The refactor of add() passes its tests.",
    )


def demo_tools(runtime: Runtime, scope: str, workspace: str) -> list[ToolSpec]:
    """The demo's own tool, ``run_tests``: runs the unit tests of ``workspace`` and stores the
    outcome as a typed ``test_report@1`` artifact, a new version of ``reports/tests.json`` in
    ``scope`` (the thread id). A failing test is a successful call whose report says so."""

    def run_tests(context: ToolContext) -> dict[str, Any]:
        """Run the workspace's unit tests (python -m unittest) and store a test report artifact."""
        report = _unittest_report(workspace, context.remaining())
        stored = runtime.artifacts.put_typed(
            scope,
            REPORT_KEY,
            TypedArtifact("test_report@1", report),
            metadata={"call_id": context.call_id},
        )
        summary = report["summary"]
        return {
            "passed": summary["passed"],
            "failed": summary["failed"],
            "errors": summary["errors"],
            "total": summary["total"],
            "artifact": {"scope": stored.scope, "key": stored.key, "version": stored.version},
        }

    return [ToolSpec.from_function(run_tests, timeout=_TEST_TIMEOUT)]


_CASE_RE = re.compile(r"^(\w+) \(([^)]*)\)[^\n]*? \.\.\. (ok|FAIL|ERROR|skipped\b.*)$", re.MULTILINE)
_RAN_RE = re.compile(r"^Ran (\d+) tests? in ([\d.]+)s", re.MULTILINE)


def _unittest_report(workspace: str, budget: float | None) -> dict[str, Any]:
    command = [sys.executable, "-B", "-m", "unittest", "discover", "-v", "-s", ".", "-p", "test_*.py"]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        done = subprocess.run(
            command,
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=budget if budget is not None else _TEST_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ToolError("the tests did not finish in time") from None
    output = done.stderr + done.stdout
    statuses = {"ok": "passed", "FAIL": "failed", "ERROR": "error"}
    cases = [
        {"name": f"{m.group(2)}", "status": statuses.get(m.group(3), "skipped")}
        for m in _CASE_RE.finditer(output)
    ]
    ran = _RAN_RE.search(output)
    total = int(ran.group(1)) if ran else len(cases)
    failed = sum(1 for c in cases if c["status"] == "failed")
    errors = sum(1 for c in cases if c["status"] == "error")
    skipped = sum(1 for c in cases if c["status"] == "skipped")
    if done.returncode != 0 and not failed and not errors:
        errors = max(1, total - skipped)  # the run itself broke (an import error, say)
    return {
        "framework": "unittest",
        "command": shlex.join(["python", *command[1:]]),
        "duration_s": float(ran.group(2)) if ran else 0.0,
        "summary": {
            "total": total,
            "passed": max(0, total - failed - errors - skipped),
            "failed": failed,
            "errors": errors,
            "skipped": skipped,
        },
        "cases": cases,
    }


@dataclass(frozen=True, slots=True)
class DemoCommand:
    """One command the demo suggests, and what it shows."""

    purpose: str
    command: str


@dataclass(frozen=True, slots=True)
class DemoReport:
    """What the demo did: the thread, its checkpoints (oldest first), the stored test reports,
    the last good checkpoint and the failed one."""

    thread_id: str
    run_id: str
    status: RunStatus
    error: str | None
    workspace: str
    store_url: str
    checkpoints: tuple[Checkpoint, ...]
    reports: tuple[ArtifactVersion, ...]
    last_good: str
    failed: str


def _latest_test_result(state: RunState) -> ToolCallResult | None:
    for result in reversed(state.completed_tool_calls):
        if result.name == "run_tests" and result.success:
            return result
    return None


def tests_passed(checkpoint: Checkpoint) -> bool | None:
    """Whether the newest test report recorded in ``checkpoint``'s conversation passed (None when
    there is none yet)."""
    try:
        state = RunState.from_channels(checkpoint.state)
    except ValidationError:
        return None
    result = _latest_test_result(state)
    if result is None or not isinstance(result.output, dict):
        return None
    out = result.output
    return bool(out.get("total")) and not out.get("failed") and not out.get("errors")


def last_good_checkpoint(checkpoints: Sequence[Checkpoint]) -> Checkpoint | None:
    """The newest checkpoint (of ``checkpoints``, oldest first) whose files have a snapshot, whose
    latest test report passed and whose run had not failed."""
    good: Checkpoint | None = None
    for cp in checkpoints:
        if cp.workspace is not None and tests_passed(cp) and cp.state.get("status") != RunStatus.FAILED.value:
            good = cp
    return good


def run_demo(runtime: Runtime, workspace: str | os.PathLike[str] | None = None) -> DemoReport:
    """Run the demo on ``runtime``: a new thread, a scratch workspace (``<home>/demo/<thread id>``
    unless given; it must be empty or not exist), the scripted agent on the durable runner with the
    workspace tools and ``run_tests``. Returns what happened; raises ValidationError when the
    workspace is not empty."""
    thread = runtime.checkpoints.create_thread("keepup demo", metadata={"agent": DEMO_AGENT_NAME})
    folder = Path(workspace) if workspace is not None else runtime.home / "demo" / thread.id
    folder = folder.expanduser().absolute()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        runtime.checkpoints.delete_thread(thread.id)
        raise ValidationError(f"the demo needs an empty folder for its workspace; {folder} is not empty")
    if workspace is None:  # <home>/demo/<thread>: private like the rest of the home
        folder.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        folder.mkdir(exist_ok=True, mode=PRIVATE_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    ws = str(folder.resolve())
    runner = runtime.runner(demo_tools(runtime, thread.id, ws), ws, tool_timeout=_TEST_TIMEOUT)
    run = runner.start(
        demo_agent(),
        thread.id,
        input="Write calc.py with add, subtract and multiply, with unit tests; run the tests after every change.",
        metadata={"demo": True},
    )
    checkpoints = tuple(reversed(runtime.checkpoints.list(thread.id, limit=1000)))
    good = last_good_checkpoint(checkpoints)
    if good is None:  # the script guarantees one; say so loudly if a change breaks that
        raise ValidationError("the demo found no checkpoint with passing tests; this is a bug in the demo")
    return DemoReport(
        thread_id=thread.id,
        run_id=run.id,
        status=run.status,
        error=None if run.error is None else run.error.message,
        workspace=ws,
        store_url=runtime.driver.url,
        checkpoints=checkpoints,
        reports=tuple(runtime.artifacts.versions(thread.id, REPORT_KEY)),
        last_good=good.id,
        failed=checkpoints[-1].id,
    )


def next_commands(
    report: DemoReport, store: str | None = None, program: Sequence[str] = ("keepup",)
) -> list[DemoCommand]:
    """The commands a newcomer runs next, verbatim: ``program`` (``keepup``, or ``uv run keepup``
    when the demo itself ran under ``uv run``) with ``--store`` when the demo was given one.
    A password in that URL is shown as ``***`` (the commands are printed, and may be pasted into
    logs): give it with ``PGPASSWORD``, ``.pgpass`` or a password file instead (docs/stores.md)."""
    prefix = [*program] + (["--store", redact_url(store)] if store else [])

    def cmd(*args: str) -> str:
        return shlex.join([*prefix, *args])

    good, failed, thread = report.last_good, report.failed, report.thread_id
    return [
        DemoCommand("list the checkpoints of the thread", cmd("checkpoint", "list", thread)),
        DemoCommand(
            "see what changed from the last good checkpoint to the failure (conversation and files)",
            cmd("checkpoint", "diff", good, failed),
        ),
        DemoCommand(
            "see the test reports, one version per step", cmd("artifact", "versions", thread, REPORT_KEY)
        ),
        DemoCommand(
            "restore the last good checkpoint: its conversation and its files",
            cmd("checkpoint", "restore", good, "--workspace"),
        ),
        DemoCommand("or start a new thread from it", cmd("checkpoint", "fork", good, "--name", "retry")),
        DemoCommand(
            "run the agent again from the last good checkpoint, with the bug fixed: the tests pass",
            cmd("run", "start", "--from", good, "--agent", DEMO_FIXED_AGENT_NAME),
        ),
    ]
