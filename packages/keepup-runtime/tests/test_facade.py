"""The facade re-exports every public name of every library package, as the identical object,
and keeps the legacy module paths working."""

from __future__ import annotations

import importlib
import re
from importlib.metadata import requires, version
from types import ModuleType

import keepup
import pytest

LEGACY = {
    "keepup.checkpoint": "runtime_persistence",
    "keepup.artifacts": "runtime_persistence",
    "keepup.shadow_git": "runtime_persistence",
    "keepup.telemetry": "runtime_telemetry",
    "keepup.execution": "runtime_execution",
    "keepup.tools": "runtime_tools",
}
LEGACY_CORE = {
    "keepup.checkpoint": ("runtime_core.checkpoints", "runtime_core.threads"),
    "keepup.artifacts": ("runtime_core.artifacts",),
    "keepup.shadow_git": ("runtime_core.workspace",),
    "keepup.telemetry": ("runtime_core.telemetry",),
    "keepup.execution": ("runtime_core.runs", "runtime_core.sessions"),
    "keepup.tools": ("runtime_core.tools",),
}


def library_packages() -> list[str]:
    """The import names of the workspace packages the facade depends on, read from the installed
    metadata: the requirements pinned exactly to the facade's own version. (Every workspace
    distribution ``runtime-x`` is imported as ``runtime_x``.)"""
    own = version("keepup-runtime")
    dists = set()
    for line in requires("keepup-runtime") or []:
        pinned = re.fullmatch(r"([A-Za-z0-9._-]+)\s*==\s*(\S+)", line.strip())
        if pinned and pinned.group(2) == own:
            dists.add(pinned.group(1))
    return sorted(name.replace("-", "_") for name in dists)


LIBRARIES = library_packages()


def test_the_facade_depends_on_every_library_package() -> None:
    assert (
        sorted(
            ["runtime_core", "runtime_telemetry", "runtime_persistence", "runtime_execution", "runtime_tools"]
        )
        == LIBRARIES
    )


@pytest.mark.parametrize("package_name", LIBRARIES)
def test_every_public_name_of_a_library_is_the_same_object_in_keepup(package_name: str) -> None:
    package = importlib.import_module(package_name)
    missing = [n for n in package.__all__ if n not in keepup.__all__ or not hasattr(keepup, n)]
    assert missing == [], f"keepup lacks {missing} from {package_name}: run scripts/gen_facade.py"
    different = [n for n in package.__all__ if getattr(keepup, n) is not getattr(package, n)]
    assert different == []


def test_keepup_exports_only_names_that_exist_and_are_public() -> None:
    assert len(set(keepup.__all__)) == len(keepup.__all__)
    for name in keepup.__all__:
        assert not name.startswith("_")
        assert hasattr(keepup, name), name


def test_every_name_of_keepup_comes_from_a_library_or_the_composition_root() -> None:
    sources: list[ModuleType] = [importlib.import_module(p) for p in LIBRARIES]
    sources.append(importlib.import_module("keepup.runtime"))
    known = {n for module in sources for n in module.__all__}
    assert set(keepup.__all__) - known == set()


def test_the_composition_root_is_exported() -> None:
    runtime = importlib.import_module("keepup.runtime")
    assert keepup.open_runtime is runtime.open_runtime


@pytest.mark.parametrize("legacy", sorted(LEGACY))
def test_legacy_module_paths_reexport_their_package(legacy: str) -> None:
    module = importlib.import_module(legacy)
    sources = [LEGACY[legacy], *LEGACY_CORE[legacy]]
    for source_name in sources:
        source = importlib.import_module(source_name)
        for name in source.__all__:
            assert name in module.__all__, f"{legacy} lacks {name} from {source_name}"
            assert getattr(module, name) is getattr(source, name)
    for name in module.__all__:
        assert getattr(module, name) is getattr(keepup, name), f"{legacy}.{name} differs from keepup.{name}"


def test_typed_marker_is_shipped() -> None:
    from importlib.resources import files

    assert files("keepup").joinpath("py.typed").is_file()
