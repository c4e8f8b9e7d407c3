"""``keepup checkpoint export --with sessions,tasks,events`` carries those records, and ``keepup
checkpoint import`` brings them into a fresh home with their ids; without ``--with`` they stay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from keepup.cli import app
from keepup.runtime import open_runtime
from runtime_core import Event, new_id, utc_now
from runtime_persistence.session import Events, MessageLog
from typer.testing import CliRunner


def _invoke(home: Path, *args: str) -> Any:
    env = {"KEEPUP_HOME": str(home), "KEEPUP_STORE_URL": None, "KEEPUP_DEBUG": None}
    return CliRunner().invoke(app, list(args), env=env)


def _json(home: Path, *args: str) -> Any:
    result = _invoke(home, *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_export_with_sessions_tasks_and_events_into_a_fresh_home(tmp_path: Path) -> None:
    home_a, home_b, home_c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    with open_runtime(home=home_a) as runtime:
        thread = runtime.checkpoints.create_thread("chat")
        runtime.checkpoints.save(thread.id, {"messages": ["hi"]})
        session = runtime.sessions.open("work")
        runtime.sessions.link(session.id, thread_id=thread.id)
        MessageLog(runtime.checkpoints.driver).append(session.id, ["hello", {"role": "user"}])
        parent = runtime.tasks.create("plan")
        task = runtime.tasks.create("do", parent_id=parent.id, thread_id=thread.id)
        runtime.tasks.log(task.id, "started")
        event = Events(runtime.checkpoints.driver).append(
            Event(id=new_id(), topic="chat", created_at=utc_now(), thread_id=thread.id)
        )
    file = tmp_path / "all.keepup"
    exported = _json(
        home_a, "checkpoint", "export", str(file), "--with", "sessions,tasks", "--with", "events"
    )
    assert exported["records"] == {"session": 1, "messages": 1, "task": 2, "task_log": 1, "event": 1}
    imported = _json(home_b, "checkpoint", "import", str(file))
    assert imported["records"] == exported["records"]
    with open_runtime(home=home_b) as runtime:
        assert runtime.sessions.get(session.id).thread_ids == (thread.id,)
        assert MessageLog(runtime.checkpoints.driver).last(session.id) == ["hello", {"role": "user"}]
        assert [t.id for t in runtime.tasks.children(parent.id)] == [task.id]
        assert [line.message for line in runtime.tasks.logs(task.id)] == ["started"]
        assert Events(runtime.checkpoints.driver).get(event.id).thread_id == thread.id
    text = _invoke(home_c, "checkpoint", "import", str(file))
    assert text.exit_code == 0 and "with 1 session, 1 message-log chunk, 0 runs, 2 tasks" in text.stdout
    plain = tmp_path / "plain.keepup"
    assert _json(home_a, "checkpoint", "export", str(plain))["records"] == {}
    bad = _invoke(
        home_a, "checkpoint", "export", str(tmp_path / "x.keepup"), "--with", "sessions,checkpoints"
    )
    assert bad.exit_code != 0 and "--with takes sessions, tasks, events" in bad.stderr
