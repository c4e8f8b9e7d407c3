"""``--since``/``--until`` on the list verbs: an ISO 8601 time or an age, by each record's time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from keepup._cli.exit_codes import ExitCode
from keepup.cli import app
from keepup.demo import REPORT_KEY, DemoReport, run_demo
from keepup.runtime import open_runtime
from typer.testing import CliRunner


def data(home: Path, *args: str) -> Any:
    env = {"KEEPUP_HOME": str(home), "KEEPUP_STORE_URL": None, "KEEPUP_DEBUG": None}
    result = CliRunner().invoke(app, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, DemoReport]]:
    home = tmp_path_factory.mktemp("window-home")
    with open_runtime(home=home) as runtime:
        report = run_demo(runtime)
    yield home, report


def test_since_and_until_filter_every_list_verb(demo: tuple[Path, DemoReport]) -> None:
    home, report = demo
    tid = report.thread_id
    workspace = report.workspace
    lists = [
        (("thread", "list"), "threads"),
        (("checkpoint", "list", tid), "checkpoints"),
        (("run", "list"), "runs"),
        (("artifact", "versions", tid, REPORT_KEY), "versions"),
        (("snapshot", "list", workspace), "snapshots"),
    ]
    for args, field in lists:
        assert data(home, *args, "--since", "1h")[field], args
        assert data(home, *args, "--until", "1h")[field] == [], args
        assert data(home, *args, "--since", "2999-01-01")[field] == [], args
        assert data(home, *args, "--until", "2999-01-01T00:00+00:00")[field], args


def test_since_a_checkpoint_s_time_keeps_it_and_the_newer_ones(demo: tuple[Path, DemoReport]) -> None:
    home, report = demo
    listed = data(home, "checkpoint", "list", report.thread_id)["checkpoints"]
    middle = listed[len(listed) // 2]
    kept = data(home, "checkpoint", "list", report.thread_id, "--since", middle["created_at"])["checkpoints"]
    assert [c["id"] for c in kept] == [c["id"] for c in listed if c["created_at"] >= middle["created_at"]]
    before = data(home, "checkpoint", "list", report.thread_id, "--until", middle["created_at"])[
        "checkpoints"
    ]
    assert len(kept) + len(before) == len(listed)


def test_a_malformed_time_is_invalid(demo: tuple[Path, DemoReport]) -> None:
    home, _ = demo
    env = {"KEEPUP_HOME": str(home), "KEEPUP_STORE_URL": None, "KEEPUP_DEBUG": None}
    result = CliRunner().invoke(app, ["thread", "list", "--since", "yesterday-ish"], env=env)
    assert result.exit_code == ExitCode.INVALID, result.stderr
    assert result.stderr.strip().startswith("keepup: error:")
