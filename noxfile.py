"""Every check Keepup runs, locally and in CI: ``uv run --locked nox -s ci`` runs them in order.

Sessions:

* ``lint``        ruff check and ruff format --check; versions agree (scripts/check_versions.py)
* ``typecheck``   mypy --strict over every package's ``src`` and the scripts
* ``arch``        lint-imports; every contract names real modules; imported siblings are declared
                  dependencies and nothing imports in a cycle; the generated facade and every
                  generated sync twin of async code (scripts/gen_sync.py) are current
* ``tests``       one session per package (``tests(runtime-core)`` …), in a virtualenv holding only
                  that package (built as a wheel, not editable), its declared dependencies and extras,
                  and the test tools: its tests cannot lean on a package it does not declare
* ``integration`` the root ``tests/`` folder (cross-package, facade, end to end), whole workspace
* ``build``       every wheel and sdist into ``dist/`` (``uv build --all-packages``)
* ``isolated``    each wheel alone in a fresh virtualenv outside the repository, with nothing but its
                  declared dependencies: it imports, its ``__all__`` resolves, the layers above it are
                  absent, and runtime-persistence opens memory, SQLite and file stores with no driver
                  library installed (scripts/isolated_check.py)
* ``graph``       the package graph into ``docs/graph/`` and ``docs/architecture.md``
* ``bench``       every ``benchmarks/bench_*.py`` script
* ``stress``      the long races and crash harnesses (tests marked ``slow``, which ``tests`` and
                  ``integration`` leave out), whole workspace, within a fixed time budget
                  (``KEEPUP_STRESS_BUDGET`` seconds, default 1500; scripts/stress_budget.py):
                  test modules in an order that rotates daily, and the tests not started when the
                  budget is spent skipped visibly; .ci/run runs it after ``ci``
* ``ci``          lint, typecheck, arch, tests, integration, build, isolated, in that order

Third-party versions come from ``uv.lock`` (exported as constraints), so sessions test what CI tests.
Tests that need servers read ``KEEPUP_TEST_*`` URLs, which the sessions pass through.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from scripts.workspace import internal_closure, load_packages, topological_order  # noqa: E402

nox.options.default_venv_backend = "uv"
nox.options.error_on_external_run = True
nox.options.sessions = ["ci"]

PACKAGES = load_packages(ROOT)
PACKAGE_NAMES = topological_order(PACKAGES)
DIST = ROOT / "dist"
TEST_TOOLS = ("pytest", "pytest-xdist", "hypothesis", "psutil")
PASSTHROUGH_PREFIXES = ("KEEPUP_TEST_", "CI")
CI_ORDER = ("lint", "typecheck", "arch", "tests", "integration", "build", "isolated")
QUICK = ("-m", "not slow")  # the slow races run in the stress session, under a time budget
# The suites long enough to gain from a worker per core (pytest-xdist); the small ones would
# spend more on starting workers than they save. Every test makes its own stores (random
# prefixes, temporary folders) and its own servers (free ports), so workers never share state.
PARALLEL = frozenset({"runtime-persistence", "keepup-runtime", "keepup-server", "integration"})


def _workers(name: str) -> tuple[str, ...]:
    """pytest-xdist's options for suite ``name``: one worker per core (``KEEPUP_TEST_WORKERS``
    overrides, ``0`` runs in one process)."""
    if name not in PARALLEL:
        return ()
    return ("-n", os.environ.get("KEEPUP_TEST_WORKERS", "auto"))


def _constraints(session: nox.Session) -> Path:
    """uv.lock as a pip constraints file, so every session installs the locked versions."""
    path = Path(session.create_tmp()) / "constraints.txt"
    session.run_install(
        "uv",
        "export",
        "--locked",
        "--all-packages",
        "--all-groups",
        "--all-extras",
        "--no-hashes",
        "--no-emit-workspace",
        "--no-header",
        "--no-annotate",
        "--quiet",
        "-o",
        str(path),
        external=True,
    )
    return path


def _sync_workspace(session: nox.Session, *groups: str) -> None:
    """Install the whole locked workspace (all packages, extras and the dev group) into the
    session's virtualenv."""
    group_args = [arg for g in groups for arg in ("--group", g)]
    session.run_install(
        "uv",
        "sync",
        "--locked",
        "--all-packages",
        "--all-extras",
        "--inexact",
        *group_args,
        env={"UV_PROJECT_ENVIRONMENT": str(session.virtualenv.location)},
        external=True,
    )


def _test_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(PASSTHROUGH_PREFIXES)}


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, and one shared version with exact pins."""
    session.install("-c", str(_constraints(session)), "ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("python", "scripts/check_versions.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every package's src, the scripts and this file."""
    _sync_workspace(session, "dev")
    sources = [str(PACKAGES[name].src.relative_to(ROOT)) for name in PACKAGE_NAMES]
    session.run("mypy", *sources, "scripts", "noxfile.py")


@nox.session
def arch(session: nox.Session) -> None:
    """The architecture contracts, the dependency, version and facade checks, and that every
    serializer call binds its record to its place (scripts/check_unbound_records.py)."""
    _sync_workspace(session, "dev")
    session.run("lint-imports", "--no-cache")
    session.run("python", "scripts/check_contracts.py")
    session.run("python", "scripts/check_dependencies.py")
    session.run("python", "scripts/check_versions.py")
    session.run("python", "scripts/check_unbound_records.py")
    session.run("python", "scripts/gen_facade.py", "--check")
    session.run("python", "scripts/gen_sync.py", "--check")
    session.run("python", "scripts/gen_cli_help.py", "--check")  # the fast path's --help


@nox.session
@nox.parametrize("package", PACKAGE_NAMES, ids=PACKAGE_NAMES)
def tests(session: nox.Session, package: str) -> None:
    """One package's tests, with only that package, its declared dependencies and the test tools."""
    pkg = PACKAGES[package]
    closure = internal_closure(package, PACKAGES)
    extras = ",".join(sorted(pkg.extras))
    own = f"{package}[{extras}] @ {pkg.path.as_uri()}" if extras else str(pkg.path)
    requirements = [str(PACKAGES[n].path) for n in closure if n != package] + [own]
    # uv caches wheels built from a folder by pyproject.toml's mtime: rebuild ours every time
    refresh = [arg for n in closure for arg in ("--refresh-package", n)]
    session.install(
        *refresh,
        "-c",
        str(_constraints(session)),
        *requirements,
        *TEST_TOOLS,
        *pkg.test_requirements,
    )
    others = sorted(PACKAGES[n].import_name for n in PACKAGES if n not in closure)
    session.run(
        "python",
        "-c",
        "import importlib.util, sys; present = [m for m in sys.argv[1:] if importlib.util.find_spec(m)]; "
        "sys.exit(f'packages outside the declared dependencies are importable: {present}' if present else 0)",
        *others,
    )
    session.run(
        "python",
        "-m",
        "pytest",
        str(pkg.tests.relative_to(ROOT)),
        "-p",
        "no:cacheprovider",
        *QUICK,
        *_workers(package),
        *session.posargs,
        env=_test_env(),
    )


@nox.session
def integration(session: nox.Session) -> None:
    """The root tests/ folder against the whole workspace."""
    _sync_workspace(session, "dev")
    session.run(
        "python",
        "-m",
        "pytest",
        "tests",
        "-p",
        "no:cacheprovider",
        *QUICK,
        *_workers("integration"),
        *session.posargs,
        env=_test_env(),
    )


@nox.session
def stress(session: nox.Session) -> None:
    """The slow tests of every package and of tests/, within ``KEEPUP_STRESS_BUDGET`` seconds
    (scripts/stress_budget.py: modules in an order that rotates daily; the tests not started when
    the budget is spent are skipped, visibly, and run first on another day)."""
    _sync_workspace(session, "dev")
    budget = os.environ.get("KEEPUP_STRESS_BUDGET", "1500")
    folders = [str(PACKAGES[n].tests.relative_to(ROOT)) for n in PACKAGE_NAMES] + ["tests"]
    session.log(f"stress: the slow tests, within {budget} s")
    session.run(
        "timeout",  # a safety net for a test that hangs: the budget plus 15 minutes
        "--signal=INT",
        "--kill-after=30",
        str(int(float(budget)) + 900),
        "python",
        "-m",
        "pytest",
        *folders,
        "-p",
        "scripts.stress_budget",
        "-p",
        "no:cacheprovider",
        "-m",
        "slow",
        *session.posargs,
        env=_test_env(),
        external=True,
    )


@nox.session(venv_backend="none")
def build(session: nox.Session) -> None:
    """Every package's wheel and sdist into dist/."""
    shutil.rmtree(DIST, ignore_errors=True)
    session.run("uv", "build", "--all-packages", "--out-dir", str(DIST), external=True)
    wheels = sorted(p.name for p in DIST.glob("*.whl"))
    sdists = sorted(p.name for p in DIST.glob("*.tar.gz"))
    if len(wheels) != len(PACKAGES) or len(sdists) != len(PACKAGES):
        session.error(f"expected a wheel and an sdist per package ({len(PACKAGES)}), got {wheels} {sdists}")
    session.log(f"built {len(wheels)} wheels and {len(sdists)} sdists in {DIST}")


def _wheel(name: str) -> Path:
    found = sorted(DIST.glob(f"{name.replace('-', '_')}-{PACKAGES[name].version}-*.whl"))
    if len(found) != 1:
        raise FileNotFoundError(f"no single wheel of {name} in {DIST}: run `nox -s build` first")
    return found[0]


@nox.session(venv_backend="none")
def isolated(session: nox.Session) -> None:
    """Each wheel alone in a fresh virtualenv outside the repository, with only its declared
    dependencies (from dist/ for workspace packages, from the index for the rest)."""
    if not all(any(DIST.glob(f"{n.replace('-', '_')}-*.whl")) for n in PACKAGE_NAMES):
        build(session)
    constraints = _constraints(session)
    checker = ROOT / "scripts" / "isolated_check.py"
    import_names = {n: PACKAGES[n].import_name for n in PACKAGE_NAMES}
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="keepup-isolated-") as tmp:
        for name in PACKAGE_NAMES:
            venv = Path(tmp) / name
            session.run("uv", "venv", "--quiet", "--python", python, str(venv), external=True)
            venv_python = venv / "bin" / "python"
            wheels = [str(_wheel(dep)) for dep in internal_closure(name, PACKAGES)]
            session.run(
                "uv",
                "pip",
                "install",
                "--quiet",
                "--python",
                str(venv_python),
                "-c",
                str(constraints),
                *wheels,
                external=True,
            )
            closure = internal_closure(name, PACKAGES)
            absent = [import_names[n] for n in PACKAGE_NAMES if n not in closure]
            session.run(
                str(venv_python),
                "-I",
                str(checker),
                "--package",
                import_names[name],
                "--absent",
                ",".join(absent),
                external=True,
            )


@nox.session
def graph(session: nox.Session) -> None:
    """Write the package graph (DOT and Mermaid) into docs/ and refresh docs/architecture.md."""
    _sync_workspace(session, "dev")
    session.run("python", "scripts/package_graph.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmarks/bench_*.py script (each prints ratios against its peers)."""
    scripts = sorted((ROOT / "benchmarks").glob("bench_*.py"))
    if not scripts:
        session.skip("no benchmarks/bench_*.py scripts yet")
    _sync_workspace(session, "dev", "bench")
    for script in scripts:
        session.run("python", str(script.relative_to(ROOT)), *session.posargs, env=_test_env())


@nox.session(venv_backend="none")
def ci(session: nox.Session) -> None:
    """Queue lint, typecheck, arch, every package's tests, integration, build and isolated (the
    slow tests run in ``stress``, which .ci/run runs after ``ci``)."""
    for name in CI_ORDER:
        if name == "tests":
            for package in PACKAGE_NAMES:
                session.notify(f"tests({package})")
        else:
            session.notify(name)
