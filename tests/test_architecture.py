"""The architecture contracts of .importlinter are real: each one, broken on purpose in a copy of
the source tree, makes ``lint-imports`` fail on exactly that contract; and a module expression
that matches nothing is caught instead of letting a contract pass silently."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed here")

# contract id -> (module file to change, import to add, module that must be named in the report)
VIOLATIONS: dict[str, list[tuple[str, str, str]]] = {
    "layers": [
        ("runtime-core/src/runtime_core/ids.py", "import runtime_telemetry", "runtime_core.ids"),
        (
            "runtime-telemetry/src/runtime_telemetry/metrics.py",
            "import runtime_persistence",
            "runtime_telemetry.metrics",
        ),
        ("keepup-runtime/src/keepup/runtime.py", "import keepup_server", "keepup.runtime"),
    ],
    "persistence-seed-rule": [
        (
            "runtime-persistence/src/runtime_persistence/storage/stores.py",
            "import runtime_execution",
            "runtime_persistence.storage.stores",
        ),
        (
            "runtime-persistence/src/runtime_persistence/storage/serialization.py",
            "import runtime_tools",
            "runtime_persistence.storage.serialization",
        ),
        (
            "runtime-persistence/src/runtime_persistence/storage/leases.py",
            "import keepup_server.app",
            "runtime_persistence.storage.leases",
        ),
    ],
    "tools-below-persistence": [
        ("runtime-tools/src/runtime_tools/__init__.py", "import runtime_persistence", "runtime_tools"),
    ],
    "libraries-never-import-the-facade": [
        ("runtime-telemetry/src/runtime_telemetry/metrics.py", "import keepup", "runtime_telemetry.metrics"),
        (
            "runtime-execution/src/runtime_execution/__init__.py",
            "from keepup import runtime",
            "runtime_execution",
        ),
        ("runtime-tools/src/runtime_tools/registry.py", "import keepup_server", "runtime_tools.registry"),
    ],
    "core-is-stdlib-only": [
        ("runtime-core/src/runtime_core/clock.py", "import msgspec", "runtime_core.clock"),
        (
            "runtime-core/src/runtime_core/storage.py",
            "import some_library_nobody_listed",
            "runtime_core.storage",
        ),
    ],
    "execution-tools-independent": [
        ("runtime-execution/src/runtime_execution/__init__.py", "import runtime_tools", "runtime_execution"),
    ],
    "persistence-layers": [
        (
            "runtime-persistence/src/runtime_persistence/storage/leases.py",
            "import runtime_persistence.checkpoint.checkpoints",
            "runtime_persistence.storage.leases",
        ),
        (
            "runtime-persistence/src/runtime_persistence/artifact/artifacts.py",
            "import runtime_persistence.shadow_git.repository",
            "runtime_persistence.artifact.artifacts",
        ),
        (
            "runtime-persistence/src/runtime_persistence/checkpoint/gc.py",
            "import runtime_persistence.session.runs",
            "runtime_persistence.checkpoint.gc",
        ),
        (
            "runtime-persistence/src/runtime_persistence/shadow_git/repository.py",
            "import runtime_persistence.checkpoint._state",
            "runtime_persistence.shadow_git.repository",
        ),
    ],
    "driver-libraries": [
        (
            "runtime-persistence/src/runtime_persistence/storage/stores.py",
            "import psycopg",
            "runtime_persistence.storage.stores",
        ),
        (
            "runtime-persistence/src/runtime_persistence/storage/drivers/memory.py",
            "import redis",
            "runtime_persistence.storage.drivers.memory",
        ),
        (
            "runtime-persistence/src/runtime_persistence/storage/drivers/postgres.py",
            "import pymongo",
            "runtime_persistence.storage.drivers.postgres",
        ),
        ("keepup-runtime/src/keepup/__init__.py", "import pymysql", "keepup"),
        (
            "keepup-adk/src/keepup_adk/sessions.py",
            "import redis",
            "keepup_adk.sessions",
        ),
        (
            "runtime-persistence/src/runtime_persistence/storage/stores.py",
            "import zstandard",
            "runtime_persistence.storage.stores",
        ),
        (
            "runtime-telemetry/src/runtime_telemetry/recorder.py",
            "import opentelemetry.trace",
            "runtime_telemetry.recorder",
        ),
        (
            "runtime-persistence/src/runtime_persistence/session/recorder/daemon.py",
            "import zmq",
            "runtime_persistence.session.recorder.daemon",
        ),
        (
            "runtime-persistence/src/runtime_persistence/session/recorder/sources/zeromq.py",
            "import nats",
            "runtime_persistence.session.recorder.sources.zeromq",
        ),
        (
            "runtime-persistence/src/runtime_persistence/session/recorder/sources/__init__.py",
            "import paho.mqtt.client",
            "runtime_persistence.session.recorder.sources",
        ),
        (
            "runtime-execution/src/runtime_execution/broker/wire.py",
            "import zmq",
            "runtime_execution.broker.wire",
        ),
        ("keepup-runtime/src/keepup/_cli/threads.py", "import textual", "keepup._cli.threads"),
    ],
    "langgraph-adapter-apart": [
        ("keepup-langgraph/src/keepup_langgraph/_mapping.py", "import keepup", "keepup_langgraph._mapping"),
        (
            "keepup-langgraph/src/keepup_langgraph/_mapping.py",
            "import keepup_adk",
            "keepup_langgraph._mapping",
        ),
    ],
    "libraries-never-import-adapters": [
        (
            "runtime-persistence/src/runtime_persistence/storage/stores.py",
            "import keepup_langgraph",
            "runtime_persistence.storage.stores",
        ),
        ("keepup-runtime/src/keepup/__init__.py", "import keepup_langgraph.savers", "keepup"),
        (
            "runtime-persistence/src/runtime_persistence/session/messages.py",
            "import keepup_openai_agents",
            "runtime_persistence.session.messages",
        ),
        ("keepup-runtime/src/keepup/__init__.py", "import keepup_adk.sessions", "keepup"),
    ],
    "openai-agents-adapter-apart": [
        (
            "keepup-openai-agents/src/keepup_openai_agents/session.py",
            "import keepup",
            "keepup_openai_agents.session",
        ),
        (
            "keepup-openai-agents/src/keepup_openai_agents/__init__.py",
            "import keepup_adk",
            "keepup_openai_agents",
        ),
    ],
    "adk-adapter-apart": [
        ("keepup-adk/src/keepup_adk/sessions.py", "from keepup import runtime", "keepup_adk.sessions"),
        (
            "keepup-adk/src/keepup_adk/artifacts.py",
            "import keepup_openai_agents.session",
            "keepup_adk.artifacts",
        ),
    ],
    "acyclic-siblings": [
        (
            "runtime-telemetry/src/runtime_telemetry/logs.py",
            "import runtime_telemetry.recorder",
            "runtime_telemetry",
        ),
        ("runtime-core/src/runtime_core/errors.py", "import runtime_core.ids", "runtime_core"),
        ("keepup-adk/src/keepup_adk/_store.py", "import keepup_adk.sessions", "keepup_adk"),
        ("keepup-server/src/keepup_server/security.py", "import keepup_server.app", "keepup_server"),
    ],
}


def contracts() -> dict[str, str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / ".importlinter", encoding="utf-8")
    prefix = "importlinter:contract:"
    return {s[len(prefix) :]: parser[s]["name"] for s in parser.sections() if s.startswith(prefix)}


def copy_tree(dest: Path) -> Path:
    for pkg in sorted((ROOT / "packages").iterdir()):
        if (pkg / "src").is_dir():
            shutil.copytree(
                pkg / "src",
                dest / "packages" / pkg.name / "src",
                ignore=shutil.ignore_patterns("__pycache__"),
            )
    shutil.copytree(ROOT / "scripts", dest / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", dest / ".importlinter")
    return dest


def lint_imports(
    tree: Path, *contract_ids: str, config: str = ".importlinter"
) -> subprocess.CompletedProcess[str]:
    # The copies come first on the path, ahead of the installed packages.
    src_dirs = [str(p) for p in sorted((tree / "packages").glob("*/src"))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(src_dirs), "PYTHONDONTWRITEBYTECODE": "1"}
    args = [str(LINT_IMPORTS), "--no-cache", "--no-logo", "--config", config]
    for cid in contract_ids:
        args += ["--contract", cid]
    return subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True, timeout=300, check=False)


def inject(tree: Path, relative: str, statement: str) -> None:
    path = tree / "packages" / relative
    text = path.read_text(encoding="utf-8")
    # after the module docstring and `from __future__` (if any), where an import is legal
    lines = text.splitlines(keepends=True)
    insert_at = 0
    for i, line in enumerate(lines):
        if line.startswith("from __future__"):
            insert_at = i + 1
    if insert_at == 0:
        insert_at = len(lines)
    lines.insert(insert_at, f"{statement}  # injected violation\n")
    path.write_text("".join(lines), encoding="utf-8")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_tree(tmp_path_factory.mktemp("pristine"))


def test_there_are_at_least_seven_contracts_and_each_has_an_injected_violation() -> None:
    ids = contracts()
    assert len(ids) >= 7
    assert set(ids) == set(VIOLATIONS), "every contract needs a violation case here, and only those"


def test_the_real_tree_keeps_every_contract(pristine: Path) -> None:
    result = lint_imports(pristine)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in contracts().values():
        assert name.split()[0] in result.stdout


@pytest.mark.parametrize(
    ("contract_id", "case"),
    [(cid, case) for cid, cases in VIOLATIONS.items() for case in cases],
    ids=[f"{cid}:{case[1]}" for cid, cases in VIOLATIONS.items() for case in cases],
)
def test_an_injected_violation_breaks_its_contract(
    tmp_path: Path, pristine: Path, contract_id: str, case: tuple[str, str, str]
) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(pristine, tree)
    relative, statement, culprit = case
    inject(tree, relative, statement)
    result = lint_imports(tree, contract_id)
    report = result.stdout + result.stderr
    assert result.returncode == 1, report
    assert "BROKEN" in report
    assert "Contracts: 0 kept, 1 broken." in report, report
    broken_section = report.split("Broken contracts", 1)[1]
    assert culprit.split(".")[-1] in broken_section or culprit in broken_section, report


def test_a_wildcard_that_matches_nothing_is_caught(pristine: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(pristine, tree)
    config = tree / "typo.ini"
    config.write_text(
        (tree / ".importlinter").read_text(encoding="utf-8")
        + "\n[importlinter:contract:typo]\nname = A typo in a wildcard\ntype = forbidden\n"
        "source_modules =\n    runtime_persistance.*\nforbidden_modules =\n    runtime_tools\n",
        encoding="utf-8",
    )
    # import-linter alone keeps the contract: there is nothing to check...
    silent = lint_imports(tree, "typo", config="typo.ini")
    assert silent.returncode == 0, silent.stdout + silent.stderr
    # ...so the arch session also runs check_contracts, which refuses it.
    checked = subprocess.run(
        [sys.executable, "scripts/check_contracts.py", "--config", "typo.ini"],
        cwd=tree,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(str(p) for p in sorted((tree / "packages").glob("*/src"))),
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode == 1
    assert "contract 'typo': source_modules entry 'runtime_persistance.*' matches no module" in checked.stderr


def test_the_real_configuration_names_only_modules_that_exist(pristine: Path) -> None:
    checked = subprocess.run(
        [sys.executable, "scripts/check_contracts.py"],
        cwd=pristine,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(str(p) for p in sorted((pristine / "packages").glob("*/src"))),
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
