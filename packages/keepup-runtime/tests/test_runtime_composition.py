"""open_runtime: where the store and the snapshots live, and how the runner is wired."""

from __future__ import annotations

from pathlib import Path

import pytest
from keepup.runtime import TOOL_OUTPUT_SCOPE, default_store_url, keepup_home, open_runtime
from runtime_core import DriverUnavailableError, ValidationError
from runtime_execution import ScriptedAgent
from runtime_persistence.storage.stores import open_store


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("KEEPUP_HOME", str(folder))
    monkeypatch.delenv("KEEPUP_STORE_URL", raising=False)
    return folder


def test_default_store_is_sqlite_file_in_keepup_home(home: Path) -> None:
    with open_runtime() as runtime:
        assert runtime.home == home.resolve()
        assert type(runtime.driver).__name__ == "SqliteDriver"
        thread = runtime.checkpoints.create_thread("t")
    assert (home / "keepup.db").is_file()
    with open_runtime() as again:
        assert again.checkpoints.get_thread(thread.id).name == "t"


def test_keepup_home_defaults_to_the_user_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.delenv("KEEPUP_HOME", raising=False)
    assert keepup_home() == Path(platformdirs.user_state_dir("keepup")).resolve()


def test_store_url_from_the_environment_wins_over_the_home(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other.db"
    monkeypatch.setenv("KEEPUP_STORE_URL", f"sqlite:///{other}")
    with open_runtime() as runtime:
        runtime.checkpoints.create_thread("x")
    assert other.is_file()
    assert not (home / "keepup.db").exists()


def test_store_argument_wins_over_the_environment(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEPUP_STORE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    with open_runtime(f"sqlite:///{tmp_path / 'arg.db'}") as runtime:
        runtime.checkpoints.create_thread("x")
    assert (tmp_path / "arg.db").is_file()
    assert not (tmp_path / "env.db").exists()


def test_home_argument_wins_over_the_environment(home: Path, tmp_path: Path) -> None:
    with open_runtime(home=tmp_path / "elsewhere") as runtime:
        assert runtime.driver.url == default_store_url(tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / "keepup.db").is_file()


def test_a_driver_passed_in_stays_open_after_close(home: Path) -> None:
    driver = open_store("memory://")
    with open_runtime(driver) as runtime:
        thread = runtime.checkpoints.create_thread("kept")
    with open_runtime(driver) as again:  # the same in-memory store is still usable
        assert again.checkpoints.get_thread(thread.id).name == "kept"
    driver.close()


def test_malformed_store_url_is_a_validation_error(home: Path) -> None:
    with pytest.raises(ValidationError):
        open_runtime("not a url")


def test_unknown_scheme_is_driver_unavailable(home: Path) -> None:
    with pytest.raises(DriverUnavailableError):
        open_runtime("nosuch://x")


def test_snapshots_are_kept_under_home_shadow_and_shared_per_workspace(home: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("a\n")
    with open_runtime() as runtime:
        snaps = runtime.snapshots(ws)
        assert snaps is runtime.snapshots(str(ws))
        commit = snaps.snapshot("first")
        assert commit is not None
        assert Path(snaps.git_dir).is_relative_to(home.resolve() / "shadow")
        assert not (ws / ".git").exists()


def test_workspace_tools_snapshot_the_files_before_changing_them(home: Path, tmp_path: Path) -> None:
    from runtime_core import ToolCall

    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("v1\n")
    with open_runtime() as runtime:
        registry = runtime.tools(workspace=ws)
        result = registry.invoke(
            ToolCall(id="c1", name="write_file", arguments={"path": "a.txt", "content": "v2\n"})
        )
        assert result.success
        assert (ws / "a.txt").read_text() == "v2\n"
        (before,) = runtime.snapshots(ws).list()
        assert before.message.startswith("before write_file: a.txt")
        runtime.snapshots(ws).restore(before.commit)
    assert (ws / "a.txt").read_text() == "v1\n"


def test_runner_saves_every_checkpoint_with_a_snapshot_of_the_workspace(home: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.md").write_text("old\n")
    agent = ScriptedAgent(
        [
            ("edit_file", {"path": "notes.md", "old": "old", "new": "new"}),
            ("write_file", {"path": "more.md", "content": "more\n"}),
        ],
        name="composer",
    )
    with open_runtime() as runtime:
        run = runtime.runner(workspace=ws).start(agent)
        assert run.status.value == "completed"
        checkpoints = sorted(runtime.checkpoints.list(run.thread_id), key=lambda cp: cp.step)
        assert all(cp.workspace is not None for cp in checkpoints)
        first = checkpoints[0].workspace
        assert first is not None
        report = runtime.snapshots(ws).restore(first.commit)
        assert "more.md" in report.removed
    assert (ws / "notes.md").read_text() == "old\n"
    assert not (ws / "more.md").exists()


def test_registry_puts_large_tool_outputs_in_artifacts(home: Path) -> None:
    def shout(n: int) -> str:
        """Return a long string."""
        return "x" * n

    with open_runtime() as runtime:
        registry = runtime.tools([shout])
        from runtime_core import ToolCall

        result = registry.invoke(ToolCall(id="c1", name="shout", arguments={"n": 100_000}))
        assert result.success
        ref = result.output["artifact"]
        version, data = runtime.artifacts.get(ref["scope"], ref["key"], ref["version"])
        assert version.scope == TOOL_OUTPUT_SCOPE
        assert data == b"x" * 100_000


def test_prune_and_delete_thread_release_the_snapshots_of_removed_checkpoints(home: Path) -> None:
    from keepup.demo import run_demo

    with open_runtime() as runtime:
        report = run_demo(runtime)
        snaps = runtime.snapshots(report.workspace)
        ids = {cp.id for cp in report.checkpoints}
        assert ids <= set(snaps.kept())
        pruned = runtime.prune(report.thread_id, keep_last=2)
        assert len(pruned.removed) == len(ids) - 2
        kept = set(snaps.kept())
        assert not kept & set(pruned.removed)
        assert set(pruned.kept) <= kept
        runtime.delete_thread(report.thread_id)
        assert not set(snaps.kept()) & ids


def test_restore_with_workspace_keeps_the_snapshot_under_the_new_head(home: Path) -> None:
    from keepup.demo import run_demo

    with open_runtime() as runtime:
        report = run_demo(runtime)
        head, files = runtime.restore(report.last_good, workspace=True)
        assert files is not None and files.changed == ("calc.py",)
        assert head.workspace is not None
        assert runtime.snapshots(report.workspace).kept()[head.id] == head.workspace.commit


def test_a_repository_is_built_once_when_threads_race_to_its_first_use(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    import runtime_persistence

    built: list[object] = []
    real = runtime_persistence.Tasks

    def slow_tasks(*args: object, **kwargs: object) -> object:
        time.sleep(0.05)  # a wide window for a second thread to build its own
        built.append(real(*args, **kwargs))  # type: ignore[arg-type]
        return built[-1]

    monkeypatch.setattr(runtime_persistence, "Tasks", slow_tasks)
    with open_runtime() as runtime:
        start = threading.Barrier(4)
        seen: list[object] = []

        def use() -> None:
            start.wait()
            seen.append(runtime.tasks)

        workers = [threading.Thread(target=use) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert len(built) == 1
        assert all(found is built[0] for found in seen) and len(seen) == 4
        assert runtime.tasks is built[0]
