"""Check that what each package imports is what its pyproject declares, and that packages do not
depend on each other in a cycle.

* every workspace package a package imports is in its ``dependencies`` (not only an extra);
* every third-party distribution it imports is in its ``dependencies`` or one of its extras;
* the declared dependencies between workspace packages form no cycle, and neither do the imports.

Imports are read statically (grimp) from each package's ``src`` tree, so this also catches imports
inside functions. Usage: ``python scripts/check_dependencies.py``; exit status 1 on a problem.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

import grimp
from packaging.requirements import Requirement

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.workspace import load_packages, requirement_name, topological_order

__all__ = ["dependency_problems", "main"]


def _provided(requirements: Iterable[str]) -> set[str]:
    """The distributions ``requirements`` name, plus those their own extras add
    (``psycopg[pool]`` provides psycopg-pool): importing those is declaring them."""
    out: set[str] = set()
    for text in requirements:
        req = Requirement(text)
        out.add(requirement_name(req.name))
        if not req.extras:
            continue
        try:
            inner = requires(req.name) or []
        except PackageNotFoundError:
            continue
        for line in inner:
            dep = Requirement(line)
            if dep.marker is not None and any(dep.marker.evaluate({"extra": e}) for e in req.extras):
                out.add(requirement_name(dep.name))
    return out


def dependency_problems() -> list[str]:
    """One readable line per problem; empty when imports and declarations agree."""
    packages = load_packages()
    by_import = {p.import_name: p for p in packages.values()}
    problems: list[str] = []
    try:
        topological_order(packages)
    except ValueError as exc:
        problems.append(f"declared dependencies: {exc}")
    graph = grimp.build_graph(*by_import, include_external_packages=True)
    distributions = {k: {requirement_name(d) for d in v} for k, v in packages_distributions().items()}
    imported_packages: dict[str, set[str]] = {}
    for import_name, package in by_import.items():
        declared = {requirement_name(d) for d in package.dependencies}
        optional = _provided([*package.dependencies, *(d for deps in package.extras.values() for d in deps)])
        roots: dict[str, set[str]] = {}
        for module in {import_name, *graph.find_descendants(import_name)}:
            for imported in graph.find_modules_directly_imported_by(module):
                root = imported.split(".")[0]
                if root != import_name and root not in sys.stdlib_module_names:
                    roots.setdefault(root, set()).add(module)
        imported_packages[package.name] = set()
        for root, importers in sorted(roots.items()):
            where = ", ".join(sorted(importers)[:3])
            if root in by_import:
                sibling = by_import[root].name
                imported_packages[package.name].add(sibling)
                if sibling not in declared:
                    problems.append(
                        f"{package.name}: imports {root} ({where}) but does not depend on {sibling}"
                    )
                continue
            dists = distributions.get(root)
            if not dists:
                problems.append(
                    f"{package.name}: imports {root} ({where}), which no installed distribution provides"
                )
            elif not dists & (declared | optional):
                problems.append(
                    f"{package.name}: imports {root} ({where}) from {'/'.join(sorted(dists))}, "
                    "which is neither a dependency nor in an extra"
                )
    try:
        order: list[str] = []

        def visit(name: str, stack: tuple[str, ...]) -> None:
            if name in stack:
                raise ValueError(" -> ".join((*stack, name)))
            if name not in order:
                for dep in sorted(imported_packages[name]):
                    visit(dep, (*stack, name))
                order.append(name)

        for name in sorted(imported_packages):
            visit(name, ())
    except ValueError as exc:
        problems.append(f"imports between packages form a cycle: {exc}")
    return problems


def main() -> int:
    problems = dependency_problems()
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print("every imported package is a declared dependency; no cycles")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
