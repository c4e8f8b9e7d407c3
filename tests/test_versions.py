"""All packages share one version and pin each other exactly; bump_version moves everything
together and check_versions notices any disagreement."""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.bump_version import bump  # noqa: E402
from scripts.check_versions import version_problems  # noqa: E402
from scripts.workspace import load_packages  # noqa: E402


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for package in load_packages().values():
        dest = tmp_path / "packages" / package.path.name
        dest.mkdir(parents=True)
        shutil.copy(package.path / "pyproject.toml", dest / "pyproject.toml")
        init = package.src / "__init__.py"
        (dest / "src" / package.import_name).mkdir(parents=True)
        shutil.copy(init, dest / "src" / package.import_name / "__init__.py")
    return tmp_path


def test_the_repository_agrees_with_itself() -> None:
    assert version_problems() == []


def test_bump_moves_every_version_and_pin_together(tree: Path) -> None:
    changed = bump("7.8.9rc1", root=tree)
    assert changed
    assert version_problems(tree) == []
    packages = load_packages(tree)
    assert {p.version for p in packages.values()} == {"7.8.9rc1"}
    facade = tomllib.loads((tree / "packages" / "keepup-runtime" / "pyproject.toml").read_text())
    pins = [d for d in facade["project"]["dependencies"] if d.startswith("runtime-")]
    assert pins and all(d.endswith("==7.8.9rc1") for d in pins)
    core_init = (tree / "packages" / "runtime-core" / "src" / "runtime_core" / "__init__.py").read_text()
    assert '__version__ = "7.8.9rc1"' in core_init
    # third-party requirements are left alone
    persistence = (tree / "packages" / "runtime-persistence" / "pyproject.toml").read_text()
    assert '"msgspec>=0.18"' in persistence


def test_bump_refuses_a_malformed_version(tree: Path) -> None:
    with pytest.raises(ValueError, match="not a PEP 440 version"):
        bump("one.two", root=tree)


def test_a_stale_pin_is_reported(tree: Path) -> None:
    path = tree / "packages" / "runtime-telemetry" / "pyproject.toml"
    path.write_text(path.read_text().replace('"runtime-core==0.1.0"', '"runtime-core==0.0.9"'))
    assert any("runtime-telemetry 0.1.0: pins 'runtime-core==0.0.9'" in p for p in version_problems(tree))


def test_a_loose_pin_is_reported(tree: Path) -> None:
    path = tree / "packages" / "runtime-telemetry" / "pyproject.toml"
    path.write_text(path.read_text().replace('"runtime-core==0.1.0"', '"runtime-core>=0.1"'))
    assert any("must pin the workspace package exactly" in p for p in version_problems(tree))


def test_a_package_left_behind_is_reported(tree: Path) -> None:
    path = tree / "packages" / "runtime-tools" / "pyproject.toml"
    path.write_text(path.read_text().replace('version = "0.1.0"', 'version = "0.2.0"', 1))
    assert any("packages disagree on the version" in p for p in version_problems(tree))


def test_a_stale_dunder_version_is_reported(tree: Path) -> None:
    path = tree / "packages" / "runtime-core" / "src" / "runtime_core" / "__init__.py"
    path.write_text(path.read_text().replace('__version__ = "0.1.0"', '__version__ = "0.0.1"'))
    assert any("__version__ 0.0.1 != 0.1.0" in p for p in version_problems(tree))


def test_an_exact_pin_with_extras_is_accepted_and_a_stale_one_reported(tree: Path) -> None:
    path = tree / "packages" / "keepup-langgraph" / "pyproject.toml"
    assert '"runtime-persistence[postgres]==0.1.0"' in path.read_text()
    assert version_problems(tree) == []
    path.write_text(path.read_text().replace("[postgres]==0.1.0", "[postgres]==0.0.9"))
    assert any("pins 'runtime-persistence[postgres]==0.0.9'" in p for p in version_problems(tree))
