"""The workspace's packages as the maintenance scripts and the noxfile see them: read from each
``packages/*/pyproject.toml``, never from a hand-kept list, so a new package is picked up alone."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROOT", "Package", "internal_closure", "load_packages", "requirement_name", "topological_order"]

ROOT = Path(__file__).resolve().parent.parent
_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirement_name(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement (``psycopg[binary]>=3`` → ``psycopg``)."""
    match = _NAME_RE.match(requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


@dataclass(frozen=True)
class Package:
    """One workspace member."""

    name: str  # distribution name, e.g. runtime-core
    version: str
    path: Path  # the folder holding pyproject.toml
    import_name: str  # e.g. runtime_core
    dependencies: tuple[str, ...]  # PEP 508 strings, as written
    extras: dict[str, tuple[str, ...]]
    test_requirements: tuple[str, ...]  # the optional [dependency-groups] test group

    @property
    def src(self) -> Path:
        return self.path / "src" / self.import_name

    @property
    def tests(self) -> Path:
        return self.path / "tests"


def load_packages(root: Path = ROOT) -> dict[str, Package]:
    """Every member under ``root/packages``, keyed by distribution name, in folder order."""
    out: dict[str, Package] = {}
    for pyproject in sorted((root / "packages").glob("*/pyproject.toml")):
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        project = data["project"]
        wheel_packages = data.get("tool", {}).get("hatch", {}).get("build", {}).get("targets", {})
        targets = wheel_packages.get("wheel", {}).get("packages", [])
        if len(targets) != 1:
            raise ValueError(f"{pyproject}: expected one [tool.hatch.build.targets.wheel] package")
        name = requirement_name(project["name"])
        out[name] = Package(
            name=name,
            version=project["version"],
            path=pyproject.parent,
            import_name=Path(targets[0]).name,
            dependencies=tuple(project.get("dependencies", [])),
            extras={k: tuple(v) for k, v in project.get("optional-dependencies", {}).items()},
            test_requirements=tuple(data.get("dependency-groups", {}).get("test", [])),
        )
    return out


def internal_closure(name: str, packages: dict[str, Package]) -> list[str]:
    """``name`` and every workspace package it depends on, transitively, dependencies first."""
    order: list[str] = []

    def visit(current: str, stack: tuple[str, ...]) -> None:
        if current in stack:
            raise ValueError("dependency cycle: " + " -> ".join((*stack, current)))
        if current in order:
            return
        for dep in packages[current].dependencies:
            dep_name = requirement_name(dep)
            if dep_name in packages:
                visit(dep_name, (*stack, current))
        order.append(current)

    visit(name, ())
    return order


def topological_order(packages: dict[str, Package]) -> list[str]:
    """Every package, each after its workspace dependencies; ValueError on a cycle."""
    order: list[str] = []
    for name in packages:
        for item in internal_closure(name, packages):
            if item not in order:
                order.append(item)
    return order
