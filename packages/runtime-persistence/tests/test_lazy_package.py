"""The package ``__init__`` files (and the pure re-export modules) are lazy: importing the package,
or one module deep inside it, loads no sibling it does not use, and every re-exported name still
resolves, to the very object its module defines, through every old import path."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys

import pytest

LAZY = [
    "runtime_persistence",
    "runtime_persistence.artifact",
    "runtime_persistence.checkpoint",
    "runtime_persistence.checkpoint.checkpoints",
    "runtime_persistence.checkpoints",
    "runtime_persistence.runs",
    "runtime_persistence.session",
    "runtime_persistence.session.recorder",
    "runtime_persistence.session.runs",
    "runtime_persistence.shadow_git",
    "runtime_persistence.storage",
    "runtime_persistence.testing",
]


def _loaded_by(statement: str) -> list[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('runtime_persistence'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return list(json.loads(out))


def test_importing_the_package_loads_none_of_its_subpackages() -> None:
    assert _loaded_by("import runtime_persistence") == ["runtime_persistence"]


def test_a_sync_repository_loads_neither_its_async_twin_nor_its_siblings() -> None:
    loaded = _loaded_by("from runtime_persistence import Checkpoints")
    assert "runtime_persistence.checkpoint._sync.checkpoints" in loaded
    unwanted = ("._async", ".export", ".encryption", ".recorder", ".shadow_git", ".artifact", ".gc")
    assert [m for m in loaded if any(part in m for part in unwanted)] == []


@pytest.mark.parametrize("module_name", LAZY)
def test_every_reexported_name_resolves_to_its_source(module_name: str) -> None:
    module = importlib.import_module(module_name)
    sources: dict[str, str] = module._SOURCES
    # a name that is also a submodule's (testing.blocking) is bound at import instead
    eager = sorted(set(module.__all__) - set(sources))
    assert all(not inspect.ismodule(getattr(module, name)) for name in eager), eager
    assert set(sources) <= set(module.__all__)
    for name, source in sources.items():
        assert getattr(module, name) is getattr(importlib.import_module(source), name), name
        assert name in dir(module)
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        module.no_such_name  # noqa: B018


def test_old_import_paths_and_submodule_attributes_keep_working() -> None:
    code = (
        "import runtime_persistence as rp\n"
        "from runtime_persistence.checkpoints import THREAD_NS, Checkpoints\n"
        "from runtime_persistence.drivers.sqlite import SqliteDriver\n"
        "from runtime_persistence.runs import RUN_NS, RunRecords\n"
        "print(rp.checkpoint.Checkpoints is Checkpoints, rp.storage.drivers.sqlite.SqliteDriver is SqliteDriver,\n"
        "      rp.session.runs.RunRecords is RunRecords, THREAD_NS, RUN_NS)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "True", "thread", "run"]


def test_a_name_that_is_also_a_submodule_stays_the_name_after_the_submodule_is_imported() -> None:
    code = (
        "import runtime_persistence.testing.blocking\n"
        "from runtime_persistence.testing import blocking\n"
        "print(callable(blocking), type(blocking).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "function"]


def test_a_spawned_conformance_worker_does_not_import_pytest() -> None:
    # each multi-process conformance test spawns eight of them: pytest would cost ~0.4 s each
    loaded = _loaded_by("import runtime_persistence.testing._processes")
    code = "import sys, runtime_persistence.testing._processes; print('pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    assert "runtime_persistence.testing.conformance" not in loaded
