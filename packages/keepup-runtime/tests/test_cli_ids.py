"""Ids as people type them: unique prefixes of at least 6 characters in any case, everywhere an
id is taken; ambiguous prefixes list the candidates; tables show shortest unique prefixes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from keepup._cli.exit_codes import ExitCode
from keepup._cli.ids import CHECKPOINT, RUN, THREAD, abbreviate, resolve
from keepup.cli import app
from keepup.demo import DemoReport, run_demo
from keepup.runtime import open_runtime
from typer.testing import CliRunner, Result


def invoke(home: Path, *args: str) -> Result:
    env = {"KEEPUP_HOME": str(home), "KEEPUP_STORE_URL": None, "KEEPUP_DEBUG": None}
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, DemoReport]]:
    home = tmp_path_factory.mktemp("ids-home")
    with open_runtime(home=home) as runtime:
        report = run_demo(runtime)
    yield home, report


def _unique_prefix(ids: list[str], target: str) -> str:
    """The shortest prefix of ``target`` (at least 6 characters) no other id starts with."""
    for n in range(6, len(target) + 1):
        if target[n - 1] != "-" and not any(i.startswith(target[:n]) for i in ids if i != target):
            return target[:n]
    return target


def test_a_unique_upper_case_prefix_names_a_thread_checkpoint_and_run(demo: tuple[Path, DemoReport]) -> None:
    home, report = demo
    ids = [c.id for c in report.checkpoints]
    cp = _unique_prefix(ids, report.failed).upper()
    result = invoke(home, "checkpoint", "show", cp, "--json", "--no-state")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["id"] == report.failed
    tid = report.thread_id[:6].upper()
    result = invoke(home, "thread", "show", tid, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["thread"]["id"] == report.thread_id
    result = invoke(home, "checkpoint", "list", tid, "--json")
    assert result.exit_code == 0, result.stderr
    result = invoke(home, "run", "show", report.run_id[:8], "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["run"]["id"] == report.run_id
    # a prefix typed without the dashes works too
    bare = report.failed.replace("-", "")[:20]
    result = invoke(home, "checkpoint", "show", bare, "--json", "--no-state")
    assert result.exit_code == 0, result.stderr
    # and the two ids of a diff
    last_good = _unique_prefix(ids, report.last_good)
    result = invoke(home, "checkpoint", "diff", last_good, cp, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["a"] == report.last_good


def test_an_ambiguous_prefix_is_a_usage_error_listing_the_candidates(demo: tuple[Path, DemoReport]) -> None:
    home, report = demo
    ids = [c.id for c in report.checkpoints]
    # the demo's checkpoints were made within a second: they share their first characters
    shared = ids[0][:8]
    assert sum(i.startswith(shared) for i in ids) > 1
    result = invoke(home, "checkpoint", "show", shared)
    assert result.exit_code == ExitCode.USAGE, (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("keepup: ")
    assert "ambiguous" in lines[0]
    assert all(i in lines[0] for i in ids if i.startswith(shared))


def test_a_prefix_shorter_than_6_is_invalid_and_an_unknown_one_not_found(
    demo: tuple[Path, DemoReport],
) -> None:
    home, report = demo
    assert invoke(home, "thread", "show", report.thread_id[:5]).exit_code == ExitCode.INVALID
    assert invoke(home, "thread", "show", "ffffffff").exit_code == ExitCode.NOT_FOUND
    assert invoke(home, "thread", "show", "zzzzzzzz").exit_code == ExitCode.INVALID


def test_tables_show_the_shortest_unique_prefix_which_types_back(demo: tuple[Path, DemoReport]) -> None:
    home, report = demo
    with open_runtime(home=home) as runtime:
        ids = [c.id for c in runtime.checkpoints.list(report.thread_id)]
        shown = abbreviate(runtime.driver, CHECKPOINT, ids)
        for full in ids:
            prefix = str(shown[full])
            assert len(prefix) >= 8 and full.startswith(prefix) and not prefix.endswith("-")
            assert shown[full].full == full
            assert resolve(runtime.driver, CHECKPOINT, prefix.upper()) == full
            assert prefix == _unique_prefix(ids, full) or len(_unique_prefix(ids, full)) < 8
        assert (
            resolve(
                runtime.driver,
                THREAD,
                str(abbreviate(runtime.driver, THREAD, [report.thread_id])[report.thread_id]),
            )
            == report.thread_id
        )
        assert resolve(runtime.driver, RUN, report.run_id.upper()) == report.run_id


def test_an_artifact_scope_that_is_a_thread_id_may_be_typed_as_its_prefix(
    demo: tuple[Path, DemoReport],
) -> None:
    home, report = demo
    prefix = report.thread_id[:13].upper()
    for args in (
        ("artifact", "versions", prefix, "reports/tests.json", "--json"),
        ("artifact", "list", prefix, "--json"),
        ("artifact", "get", prefix, "reports/tests.json", "--json"),
    ):
        result = invoke(home, *args)
        assert result.exit_code == 0, (args, result.stderr)
        out = json.loads(result.stdout)
        assert out.get("scope", out.get("artifact", {}).get("scope")) == report.thread_id, args
    versions = json.loads(invoke(home, "artifact", "versions", prefix, "reports/tests.json", "--json").stdout)
    assert len(versions["versions"]) == 4
    # a scope that is no thread's prefix is read as typed, and holds nothing
    result = invoke(home, "artifact", "list", "ffffff-not-a-thread", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["artifacts"] == []
