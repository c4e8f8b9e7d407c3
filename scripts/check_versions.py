"""Check that every package has the same version and that workspace packages pin each other
exactly (``runtime-core==X``), and that ``__version__`` strings, where a package has one, agree.

Usage: ``python scripts/check_versions.py``; exit status 1 listing every disagreement.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.workspace import ROOT, Package, load_packages, requirement_name

__all__ = ["VERSION_ATTR_RE", "main", "version_problems"]

VERSION_ATTR_RE = re.compile(r'^__version__\s*=\s*"([^"]*)"', re.MULTILINE)


def _internal_requirements(package: Package, names: set[str]) -> list[str]:
    every = [*package.dependencies, *(d for deps in package.extras.values() for d in deps)]
    return [r for r in every if requirement_name(r) in names]


def version_problems(root: Path = ROOT) -> list[str]:
    """One readable line per disagreement (empty when all agree)."""
    packages = load_packages(root)
    problems: list[str] = []
    versions = {p.version for p in packages.values()}
    if len(versions) != 1:
        listing = ", ".join(f"{p.name} {p.version}" for p in packages.values())
        problems.append(f"packages disagree on the version: {listing}")
    expected = next(iter(packages.values())).version
    workspace = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    if workspace != expected:
        problems.append(f"pyproject.toml (workspace root) has version {workspace}, packages have {expected}")
    for package in packages.values():
        for req in _internal_requirements(package, set(packages)):
            match = re.fullmatch(r"\s*[A-Za-z0-9._-]+(?:\[[A-Za-z0-9._,-]+\])?\s*==\s*([^\s;,]+)\s*", req)
            if not match:
                problems.append(
                    f"{package.name}: {req!r} must pin the workspace package exactly (name==version)"
                )
            elif match.group(1) != package.version:
                problems.append(f"{package.name} {package.version}: pins {req!r}")
        init = package.src / "__init__.py"
        found = VERSION_ATTR_RE.search(init.read_text(encoding="utf-8")) if init.exists() else None
        if found and found.group(1) != package.version:
            problems.append(f"{init.relative_to(root)}: __version__ {found.group(1)} != {package.version}")
    return problems


def main() -> int:
    problems = version_problems()
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"every package is at {next(iter(load_packages().values())).version}, pinned exactly")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
