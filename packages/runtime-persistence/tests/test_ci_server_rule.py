"""Issue 11 (missing tests): under ``CI=true`` a server backend whose URL is unset fails the run
instead of skipping, unless ``KEEPUP_TEST_UNAVAILABLE`` lists it as unavailable on purpose. Each
case runs a tiny test file in a pytest subprocess with a controlled environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TINY = """
from runtime_persistence.testing import store_fixture

store = store_fixture("postgres", "mongodb", modes=("sync",))


def test_uses_a_server(store):
    assert store.driver is not None
"""


def run_tiny(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_tiny.py").write_text(TINY)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KEEPUP_TEST_") and k != "CI"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "test_tiny.py"],
        cwd=tmp_path,
        # no third-party plugins: the tiny file needs none, and loading them all (hypothesis,
        # LangSmith's...) took most of each run's 5-30 s
        env={**clean, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def outcomes(stdout: str) -> dict[str, int]:
    """The counts in pytest's last line ("1 error, 1 skipped in 0.1s"); a failed set-up counts
    as ``failed`` too."""
    counts = {
        kind.rstrip("s"): int(n) for n, kind in re.findall(r"(\d+) (failed|errors?|skipped|passed)", stdout)
    }
    return {"failed": counts.get("failed", 0) + counts.get("error", 0), "skipped": counts.get("skipped", 0)}


def test_under_ci_an_unset_server_url_fails_the_run(tmp_path: Path) -> None:
    result = run_tiny(tmp_path, CI="true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert outcomes(result.stdout) == {"failed": 2, "skipped": 0}, result.stdout
    assert "KEEPUP_TEST_POSTGRES_URL is not set" in result.stdout
    assert "KEEPUP_TEST_UNAVAILABLE" in result.stdout  # the message says how to opt out


def test_under_ci_a_backend_listed_as_unavailable_still_skips_visibly(tmp_path: Path) -> None:
    result = run_tiny(tmp_path, CI="true", KEEPUP_TEST_UNAVAILABLE="mongodb")
    assert result.returncode == 1, result.stdout + result.stderr
    assert outcomes(result.stdout) == {"failed": 1, "skipped": 1}, result.stdout
    assert "KEEPUP_TEST_MONGODB_URL is not set" in result.stdout
    assert "listed in KEEPUP_TEST_UNAVAILABLE" in result.stdout
    everything = run_tiny(tmp_path, CI="true", KEEPUP_TEST_UNAVAILABLE="postgres, mongodb")
    assert everything.returncode == 0, everything.stdout
    assert outcomes(everything.stdout) == {"failed": 0, "skipped": 2}, everything.stdout


@pytest.mark.parametrize("ci", ["", "false"])
def test_outside_ci_an_unset_server_url_skips(tmp_path: Path, ci: str) -> None:
    result = run_tiny(tmp_path, CI=ci)
    assert result.returncode == 0, result.stdout + result.stderr
    assert outcomes(result.stdout) == {"failed": 0, "skipped": 2}, result.stdout
