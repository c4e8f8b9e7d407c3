"""The README and CI agree: .ci/run runs exactly the README's set-up and test commands, and the
test command runs at least the sessions the issue requires."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nox  # noqa: E402

import noxfile  # noqa: E402


def _readme_command(label: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    for block in blocks:
        for line in block.splitlines():
            if label in line:
                return str(line).split("#", 1)[0].strip()
    raise AssertionError(f"README has no command marked {label!r}")


def _ci_commands() -> list[str]:
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    return [line.replace('"${uv[@]}"', "uv").strip() for line in lines if line.startswith('"${uv[@]}"')]


def test_ci_runs_the_readme_setup_and_test_commands_in_that_order() -> None:
    setup = _readme_command("# set up")
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    test_command = re.search(r"\*\*Run the tests\*\*.*?```bash\n(.*?)\n```", text, flags=re.DOTALL)
    assert test_command is not None
    stress = "uv run --locked nox -s stress"  # the slow tests, after the test command, within a budget
    assert _ci_commands() == [setup, test_command.group(1).strip(), stress]
    assert f"`{stress}`" in " ".join(text.split()), "the README says CI runs the stress session too"


def test_the_test_command_runs_every_required_session() -> None:
    assert set(noxfile.CI_ORDER) >= {"lint", "typecheck", "arch", "tests", "integration", "build", "isolated"}
    assert nox.options.sessions == ["ci"]


def test_ci_sets_the_server_urls_and_never_downloads_python() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert script.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script
    assert "UV_PYTHON_DOWNLOADS=never" in script
    for name in ("KEEPUP_TEST_POSTGRES_URL", "KEEPUP_TEST_MYSQL_URL", "KEEPUP_TEST_REDIS_URL"):
        assert f"export {name}=" in script
    assert "python3 -m pip install uv" in script


def test_the_readme_python_quick_start_runs_against_the_cli_store(tmp_path: Path) -> None:
    import json
    import os
    import subprocess

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"\*\*From Python\*\*.*?```python\n(.*?)```", text, flags=re.DOTALL)
    assert block is not None, "README has no Python quick start"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPUP_")}
    env["KEEPUP_HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", block.group(1)], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    thread_id, count, version, last = done.stdout.split()
    assert (count, version, last) == ("3", "0", "hi")
    keepup = Path(sys.executable).parent / "keepup"
    listed = subprocess.run(
        [str(keepup), "checkpoint", "list", thread_id, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)["checkpoints"]) == 3
