"""``import runtime_core`` is lazy (PEP 562): it loads a record module when one of its names is
first used, and every name of ``__all__`` resolves to the object its module defines."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


def test_importing_the_package_loads_none_of_its_modules() -> None:
    code = "import sys, runtime_core; print(sorted(m for m in sys.modules if m.startswith('runtime_core.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    code = "import sys, runtime_core; runtime_core.Thread; print('runtime_core.tasks' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_every_name_resolves_to_its_module() -> None:
    import runtime_core

    assert runtime_core.__version__
    sources: dict[str, str] = runtime_core._SOURCES
    assert sorted(runtime_core.__all__) == sorted(sources)
    for name in runtime_core.__all__:
        assert getattr(runtime_core, name) is getattr(importlib.import_module(sources[name]), name), name
    assert runtime_core.tasks is importlib.import_module("runtime_core.tasks")  # submodules too
    with pytest.raises(AttributeError):
        runtime_core.no_such_name  # noqa: B018
