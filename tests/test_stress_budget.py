"""The stress session's time budget (scripts/stress_budget.py): tests not started when the budget
is spent are skipped visibly, a started test runs to its end, and the module order rotates daily."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scripts.stress_budget import rotation_key

ROOT = Path(__file__).resolve().parent.parent


def run_with_budget(tmp_path: Path, budget: str) -> subprocess.CompletedProcess[str]:
    for name in ("a", "b", "c"):
        (tmp_path / f"test_{name}.py").write_text(
            "import time\n\ndef test_slow():\n    time.sleep(1.5)\n", encoding="utf-8"
        )
    env = {**os.environ, "KEEPUP_STRESS_BUDGET": budget, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "scripts.stress_budget",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rs",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
        timeout=120,
    )


def test_tests_not_started_within_the_budget_are_skipped_visibly(tmp_path: Path) -> None:
    done = run_with_budget(tmp_path, "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 2 skipped" in done.stdout
    assert "stress budget spent" in done.stdout
    assert "2 left for another day's rotation" in done.stdout


def test_within_the_budget_every_test_runs(tmp_path: Path) -> None:
    done = run_with_budget(tmp_path, "600")
    assert "3 passed" in done.stdout and "skipped" not in done.stdout.split("stress budget:")[0]


def test_the_module_order_is_stable_for_a_day_and_rotates_across_days() -> None:
    modules = [f"packages/p/tests/test_{n}.py" for n in range(20)]
    today = sorted(modules, key=lambda m: rotation_key(m, "2026-11-29"))
    assert today == sorted(modules, key=lambda m: rotation_key(m, "2026-11-29"))
    assert today != sorted(modules, key=lambda m: rotation_key(m, "2026-11-30"))
