"""Move every package to a new version together: each ``packages/*/pyproject.toml`` version, every
exact pin between workspace packages (``runtime-core==X``), each ``__version__`` string, and the
workspace root's version; then refresh ``uv.lock`` (skip with ``--no-lock``).

Edits are made on the text, so comments and formatting stay as they are. Afterwards it runs the
same check as ``scripts/check_versions.py`` and fails if anything still disagrees.

Usage: ``python scripts/bump_version.py 0.2.0 [--no-lock]``
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

from packaging.version import InvalidVersion, Version

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.check_versions import VERSION_ATTR_RE, version_problems
from scripts.workspace import ROOT, load_packages

__all__ = ["bump", "main"]

_PROJECT_VERSION_RE = re.compile(r'^(version\s*=\s*")([^"]*)(")', re.MULTILINE)


def _set_project_version(text: str, new: str, path: Path) -> str:
    # the first `version = "…"` line after [project] is the project's version
    start = text.find("[project]")
    if start < 0:
        raise ValueError(f"{path}: no [project] table")
    head, tail = text[:start], text[start:]
    tail, count = _PROJECT_VERSION_RE.subn(rf"\g<1>{new}\g<3>", tail, count=1)
    if count != 1:
        raise ValueError(f"{path}: no version line under [project]")
    return head + tail


def bump(new: str, root: Path = ROOT) -> list[Path]:
    """Rewrite the version everywhere under ``root``; return the files changed."""
    try:
        Version(new)
    except InvalidVersion:
        raise ValueError(f"{new!r} is not a PEP 440 version") from None
    packages = load_packages(root)
    names = "|".join(re.escape(n).replace(r"\-", "[-_.]") for n in packages)
    pin_re = re.compile(rf'("(?:{names})(?:\[[^\]]*\])?\s*==\s*)([^";,\s]+)', re.IGNORECASE)
    changed: list[Path] = []
    for path in [root / "pyproject.toml", *(p.path / "pyproject.toml" for p in packages.values())]:
        text = path.read_text(encoding="utf-8")
        new_text = pin_re.sub(rf"\g<1>{new}", _set_project_version(text, new, path))
        if new_text != text:
            path.write_text(new_text, encoding="utf-8")
            changed.append(path)
    for package in packages.values():
        init = package.src / "__init__.py"
        if not init.exists():
            continue
        text = init.read_text(encoding="utf-8")
        new_text = VERSION_ATTR_RE.sub(f'__version__ = "{new}"', text)
        if new_text != text:
            init.write_text(new_text, encoding="utf-8")
            changed.append(init)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Bump every Keepup package version together.")
    parser.add_argument("version", help="the new version, e.g. 0.2.0")
    parser.add_argument("--no-lock", action="store_true", help="do not run `uv lock` afterwards")
    args = parser.parse_args(argv)
    try:
        changed = bump(args.version)
    except ValueError as exc:
        print(f"bump_version: {exc}", file=sys.stderr)
        return 2
    for path in changed:
        print(f"updated {path.relative_to(ROOT)}")
    problems = version_problems()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    if not args.no_lock:
        uv = shutil.which("uv")
        if uv is None:
            print("bump_version: uv not found; run `uv lock` yourself", file=sys.stderr)
            return 1
        subprocess.run([uv, "lock"], cwd=ROOT, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
