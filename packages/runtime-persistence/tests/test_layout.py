"""The folders follow the design card, and every import path of earlier releases keeps working."""

from __future__ import annotations

import importlib

import pytest
import runtime_persistence

# every module path of the flat layout (before storage/, checkpoint/, artifact/, shadow_git/,
# session/) -> the subpackage that now holds its code
OLD_PATHS = {
    "runtime_persistence.artifact_schemas": "runtime_persistence.artifact.schemas",
    "runtime_persistence.artifacts": "runtime_persistence.artifact.artifacts",
    "runtime_persistence.checkpoints": "runtime_persistence.checkpoint.checkpoints",
    "runtime_persistence.events": "runtime_persistence.session.events",
    "runtime_persistence.export": "runtime_persistence.checkpoint.export",
    "runtime_persistence.gc": "runtime_persistence.checkpoint.gc",
    "runtime_persistence.leases": "runtime_persistence.storage.leases",
    "runtime_persistence.retention": "runtime_persistence.checkpoint.retention",
    "runtime_persistence.runs": "runtime_persistence.session.runs",
    "runtime_persistence.serialization": "runtime_persistence.storage.serialization",
    "runtime_persistence.sessions": "runtime_persistence.session.sessions",
    "runtime_persistence.shadow_git": "runtime_persistence.shadow_git.repository",
    "runtime_persistence.stores": "runtime_persistence.storage.stores",
    "runtime_persistence.tasks": "runtime_persistence.session.tasks",
    "runtime_persistence.workspaces": "runtime_persistence.checkpoint.workspaces",
    "runtime_persistence.drivers.file": "runtime_persistence.storage.drivers.file",
    "runtime_persistence.drivers.memory": "runtime_persistence.storage.drivers.memory",
    "runtime_persistence.drivers.sqlite": "runtime_persistence.storage.drivers.sqlite",
    "runtime_persistence.drivers._migrations": "runtime_persistence.storage.drivers._migrations",
}
SERVER_DRIVER_PATHS = {
    "runtime_persistence.drivers.postgres": ("runtime_persistence.storage.drivers.postgres", "psycopg"),
    "runtime_persistence.drivers.mysql": ("runtime_persistence.storage.drivers.mysql", "pymysql"),
    "runtime_persistence.drivers.redis": ("runtime_persistence.storage.drivers.redis", "redis"),
    "runtime_persistence.drivers.mongodb": ("runtime_persistence.storage.drivers.mongodb", "pymongo"),
}


def _same_names(old: str, new: str) -> None:
    old_module = importlib.import_module(old)
    new_module = importlib.import_module(new)
    public = [n for n in new_module.__all__ if not n.startswith("_")]
    assert public, new
    for name in public:
        assert getattr(old_module, name) is getattr(new_module, name), f"{old}.{name}"


@pytest.mark.parametrize(("old", "new"), sorted(OLD_PATHS.items()))
def test_an_old_module_path_still_gives_every_public_name(old: str, new: str) -> None:
    _same_names(old, new)


@pytest.mark.parametrize(("old", "target"), sorted(SERVER_DRIVER_PATHS.items()))
def test_an_old_server_driver_path_still_gives_its_driver(old: str, target: tuple[str, str]) -> None:
    pytest.importorskip(target[1], reason=f"{target[1]} is not installed (an extra)")
    _same_names(old, target[0])


def test_each_layer_re_exports_its_public_names_and_the_package_re_exports_the_layers() -> None:
    for layer in ("storage", "checkpoint", "artifact", "shadow_git", "session"):
        module = importlib.import_module(f"runtime_persistence.{layer}")
        for name in module.__all__:
            assert hasattr(module, name), f"{layer}.{name}"
    for name in runtime_persistence.__all__:
        assert hasattr(runtime_persistence, name), name
