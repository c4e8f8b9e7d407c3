"""Check that every module expression in ``.importlinter`` that decides *what is checked* matches
at least one module.

import-linter keeps a ``forbidden`` contract whose source wildcard matches nothing (there is
nothing to check), so a typo or a renamed package would turn a contract into a silent pass. This
script fails instead. It checks ``source_modules``, ``modules``, ``layers``, ``containers`` and
``ancestors`` (every one must match), and internal entries of ``forbidden_modules`` (an internal
module that does not exist is a typo). External forbidden modules (``psycopg``…) may be absent:
nothing importing them is the point. ``allowed_importers`` and ``ignore_imports`` that match
nothing only make a contract stricter, so they are allowed.

Usage: ``python scripts/check_contracts.py [--config .importlinter]``; exit status 1 on a problem.
"""

from __future__ import annotations

import argparse
import configparser
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import grimp

__all__ = ["main", "unmatched_expressions"]

_MUST_MATCH = ("source_modules", "modules", "layers", "containers", "ancestors")
_LAYER_SPLIT = re.compile(r"[|:]")


def _values(raw: str) -> list[str]:
    out: list[str] = []
    for raw_line in raw.splitlines():
        line = raw_line.split("#", 1)[0].strip()
        if line:
            out.extend(part.strip() for part in _LAYER_SPLIT.split(line) if part.strip())
    return out


def _matches(graph: grimp.ImportGraph, expression: str) -> bool:
    expression = expression.strip("()")  # optional layers are written in parentheses
    if "*" in expression:
        return bool(graph.find_matching_modules(expression))
    return expression in graph.modules


def unmatched_expressions(config_path: Path) -> list[str]:
    """Problems found in ``config_path``, one readable line each (empty when all is well)."""
    parser = configparser.ConfigParser()
    parser.read(config_path, encoding="utf-8")
    roots = _values(parser.get("importlinter", "root_packages", fallback=""))
    if not roots:
        return [f"{config_path}: no root_packages"]
    external = parser.get("importlinter", "include_external_packages", fallback="false").lower() == "true"
    graph = grimp.build_graph(*roots, include_external_packages=external)
    problems: list[str] = []
    for section in parser.sections():
        if not section.startswith("importlinter:contract:"):
            continue
        contract = section.split(":", 2)[2]
        options = parser[section]
        checks: Iterable[tuple[str, str]] = (
            (field, value) for field in _MUST_MATCH if field in options for value in _values(options[field])
        )
        containers = _values(options.get("containers", ""))
        if containers:  # layer names are relative to each container
            checks = (
                (field, f"{container}.{value}" if field == "layers" else value)
                for field, value in checks
                for container in containers
            )
        forbidden = (
            ("forbidden_modules", value)
            for value in _values(options.get("forbidden_modules", ""))
            if value.split(".")[0] in roots
        )
        for field, value in (*checks, *forbidden):
            if not _matches(graph, value):
                problems.append(f"contract {contract!r}: {field} entry {value!r} matches no module")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, default=Path(".importlinter"))
    args = parser.parse_args(argv)
    problems = unmatched_expressions(args.config)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{args.config}: every contract names modules that exist")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
