"""Every route of the HTTP API and every error it answers, over real HTTP on loopback against the
demo's store. Bodies must be the shapes of ``keepup ... --json`` (keepup.shapes)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from keepup import RunStatus, Sessions, Tasks, open_runtime
from keepup.demo import REPORT_KEY, DemoReport, last_good_checkpoint
from keepup.shapes import artifact_json, checkpoint_json, run_json, thread_json
from keepup_server import PROBLEM_MEDIA_TYPE

Demo = tuple[Path, DemoReport]


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["type"].startswith("/problems/")
    assert "Traceback" not in response.text
    return body


def test_healthz_answers_without_a_token(demo_server: Any) -> None:
    response = httpx.get(f"{demo_server.url}/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_threads_are_listed_in_the_shape_of_thread_list_json(demo_server: Any, demo_home: Demo) -> None:
    home, report = demo_home
    with demo_server.client() as client, open_runtime(home=home) as runtime:
        body = client.get("/api/threads").json()
        assert body == {"threads": [thread_json(t) for t in runtime.checkpoints.list_threads()]}
    assert report.thread_id in [t["id"] for t in body["threads"]]


def test_threads_page_with_before_and_limit(fresh_server: Any) -> None:
    with open_runtime(home=fresh_server.home) as runtime:
        made = [runtime.checkpoints.create_thread(f"t{i}").id for i in range(5)]
    with fresh_server.client() as client:
        first = client.get("/api/threads", params={"limit": 2}).json()["threads"]
        second = client.get("/api/threads", params={"limit": 2, "before": first[-1]["id"]}).json()["threads"]
    assert [t["id"] for t in first + second] == list(reversed(made))[:4]


def test_threads_search_matches_name_id_and_metadata(fresh_server: Any) -> None:
    with open_runtime(home=fresh_server.home) as runtime:
        cats = runtime.checkpoints.create_thread("Cats and dogs")
        meta = runtime.checkpoints.create_thread("other", metadata={"team": "Platypus"})
        runtime.checkpoints.create_thread("nothing here")
    with fresh_server.client() as client:
        by_name = client.get("/api/threads", params={"q": "CATS"}).json()["threads"]
        by_meta = client.get("/api/threads", params={"q": "platypus"}).json()["threads"]
        by_id = client.get("/api/threads", params={"q": cats.id[-12:]}).json()["threads"]
        none = client.get("/api/threads", params={"q": "zebra"}).json()["threads"]
    assert [t["id"] for t in by_name] == [cats.id]
    assert [t["id"] for t in by_meta] == [meta.id]
    assert [t["id"] for t in by_id] == [cats.id]
    assert none == []


def test_a_thread_shows_its_head_and_no_lease(demo_server: Any, demo_home: Demo) -> None:
    home, report = demo_home
    with demo_server.client() as client, open_runtime(home=home) as runtime:
        body = client.get(f"/api/threads/{report.thread_id}").json()
        head = runtime.checkpoints.latest(report.thread_id)
    assert head is not None
    assert body["thread"]["id"] == report.thread_id
    assert body["head"] == checkpoint_json(head)
    assert body["lease"] is None


def test_a_thread_held_by_a_run_shows_the_lease(fresh_server: Any, hold: Any) -> None:
    with open_runtime(home=fresh_server.home) as runtime:
        thread = runtime.checkpoints.create_thread("held")
    with hold(fresh_server.home, thread.id) as run, fresh_server.client() as client:
        lease = client.get(f"/api/threads/{thread.id}").json()["lease"]
    assert lease["holder"].startswith(run.id + "+")


def test_unknown_ids_are_404_and_malformed_ones_422(demo_server: Any) -> None:
    unknown = "01a00000-0000-7000-8000-000000000000"
    with demo_server.client() as client:
        assert "no" in problem(client.get(f"/api/threads/{unknown}"), 404)["detail"].lower()
        problem(client.get(f"/api/threads/{unknown}/checkpoints"), 404)
        problem(client.get(f"/api/checkpoints/{unknown}"), 404)
        problem(client.post(f"/api/checkpoints/{unknown}/restore", json={}), 404)
        problem(client.post(f"/api/checkpoints/{unknown}/fork", json={}), 404)
        problem(client.post(f"/api/runs/{unknown}/cancel"), 404)
        body = problem(client.get("/api/threads/not an id"), 422)
        assert body["error"] == "ValidationError"


def test_bad_query_parameters_are_422_problems(demo_server: Any) -> None:
    with demo_server.client() as client:
        body = problem(client.get("/api/threads", params={"limit": 0}), 422)
        assert "limit" in body["detail"]
        problem(client.get("/api/runs", params={"status": "sleeping"}), 422)
        problem(client.get("/api/artifacts/x/versions"), 422)  # key is required


def test_checkpoints_page_newest_first(demo_server: Any, demo_home: Demo) -> None:
    home, report = demo_home
    with demo_server.client() as client, open_runtime(home=home) as runtime:
        body = client.get(f"/api/threads/{report.thread_id}/checkpoints", params={"limit": 2}).json()
        expected = runtime.checkpoints.list(report.thread_id, limit=4)
        older = client.get(
            f"/api/threads/{report.thread_id}/checkpoints",
            params={"limit": 2, "before": body["checkpoints"][-1]["id"]},
        ).json()
    assert body["thread"]["id"] == report.thread_id
    assert body["checkpoints"] + older["checkpoints"] == [checkpoint_json(c) for c in expected]


def test_a_checkpoint_comes_with_its_state_unless_asked_not_to(demo_server: Any, demo_home: Demo) -> None:
    home, report = demo_home
    cp = report.checkpoints[-1]
    with demo_server.client() as client, open_runtime(home=home) as runtime:
        full = client.get(f"/api/checkpoints/{cp.id}").json()
        bare = client.get(f"/api/checkpoints/{cp.id}", params={"state": "false"}).json()
        assert full == checkpoint_json(runtime.checkpoints.get(cp.id), state=True)
    assert "state" not in bare and full["state"]["messages"]


def test_a_diff_has_state_changes_and_file_patches(demo_server: Any, demo_home: Demo) -> None:
    _, report = demo_home
    good = last_good_checkpoint(report.checkpoints)
    assert good is not None
    bad = report.checkpoints[-1]
    with demo_server.client() as client:
        body = client.get(f"/api/checkpoints/{good.id}/diff/{bad.id}", params={"patch": "true"}).json()
    assert body["a"] == good.id and body["b"] == bad.id
    assert any(c["path"].startswith("messages") for c in body["changes"])
    assert body["files"], "the demo edits files between the two"
    assert all(f["patch"] for f in body["files"] if f["status"] == "modified")


def test_a_diff_of_checkpoints_without_snapshots_has_no_files(fresh_server: Any) -> None:
    with open_runtime(home=fresh_server.home) as runtime:
        thread = runtime.checkpoints.create_thread("plain")
        a = runtime.checkpoints.save(thread.id, {"x": 1})
        b = runtime.checkpoints.save(thread.id, {"x": 2})
    with fresh_server.client() as client:
        body = client.get(f"/api/checkpoints/{a.id}/diff/{b.id}").json()
    assert body["files"] is None
    assert body["changes"] == [{"path": "x", "kind": "changed", "old": 1, "new": 2}]


def test_restore_makes_a_new_head_from_the_old_state(fresh_server: Any) -> None:
    with open_runtime(home=fresh_server.home) as runtime:
        thread = runtime.checkpoints.create_thread("r")
        first = runtime.checkpoints.save(thread.id, {"x": 1})
        runtime.checkpoints.save(thread.id, {"x": 2})
    with fresh_server.client() as client:
        body = client.post(f"/api/checkpoints/{first.id}/restore", json={}).json()
    with open_runtime(home=fresh_server.home) as runtime:
        head = runtime.checkpoints.latest(thread.id)
    assert head is not None and head.state == {"x": 1} and head.source.value == "restore"
    assert body == {
        "restored_from": first.id,
        "dry_run": False,
        "checkpoint": checkpoint_json(head),
        "workspace": None,
    }


def test_restore_with_workspace_brings_the_files_back(tmp_path: Path, serve: Any) -> None:
    with open_runtime(home=tmp_path) as runtime:
        report = run_demo_in(runtime, tmp_path)
    good = last_good_checkpoint(report.checkpoints)
    assert good is not None and good.workspace is not None
    workspace = Path(report.workspace)
    before = {p.name: p.read_text() for p in workspace.glob("*.py")}
    with serve(tmp_path) as server, server.client() as client:
        dry = client.post(
            f"/api/checkpoints/{good.id}/restore", json={"workspace": True, "dry_run": True}
        ).json()
        assert (
            dry["checkpoint"] is None and dry["workspace"]["dry_run"] is True and dry["workspace"]["changed"]
        )
        assert {p.name: p.read_text() for p in workspace.glob("*.py")} == before  # a dry run changes nothing
        done = client.post(f"/api/checkpoints/{good.id}/restore", json={"workspace": True}).json()
    assert done["workspace"]["rescue_commit"] and done["checkpoint"]["source"] == "restore"
    assert {p.name: p.read_text() for p in workspace.glob("*.py")} != before


def run_demo_in(runtime: Any, home: Path) -> DemoReport:
    from keepup.demo import run_demo

    return run_demo(runtime, home / "workspace")


def test_restore_with_workspace_of_a_checkpoint_without_snapshot_is_422(fresh_server: Any) -> None:
    with open_runtime(home=fresh_server.home) as runtime:
        thread = runtime.checkpoints.create_thread("r")
        cp = runtime.checkpoints.save(thread.id, {"x": 1})
    with fresh_server.client() as client:
        body = problem(client.post(f"/api/checkpoints/{cp.id}/restore", json={"workspace": True}), 422)
    assert "no workspace snapshot" in body["detail"]


def test_restore_refuses_unknown_fields_and_oversized_bodies(fresh_server: Any) -> None:
    with open_runtime(home=fresh_server.home) as runtime:
        thread = runtime.checkpoints.create_thread("r")
        cp = runtime.checkpoints.save(thread.id, {"x": 1})
    with fresh_server.client() as client:
        problem(client.post(f"/api/checkpoints/{cp.id}/restore", json={"workspac": True}), 422)
        problem(client.post(f"/api/checkpoints/{cp.id}/restore", content=b"{not json"), 422)
        big = b'{"workspace": false, "pad": "' + b"x" * 100_000 + b'"}'
        problem(client.post(f"/api/checkpoints/{cp.id}/restore", content=big), 413)


def test_restore_is_refused_with_409_naming_the_run_while_a_run_holds_the_thread(
    fresh_server: Any, hold: Any
) -> None:
    with open_runtime(home=fresh_server.home) as runtime:
        thread = runtime.checkpoints.create_thread("busy")
        first = runtime.checkpoints.save(thread.id, {"x": 1})
        last = runtime.checkpoints.save(thread.id, {"x": 2})
    with hold(fresh_server.home, thread.id) as run, fresh_server.client() as client:
        body = problem(client.post(f"/api/checkpoints/{first.id}/restore", json={"workspace": False}), 409)
        dry = client.post(f"/api/checkpoints/{first.id}/restore", json={"dry_run": True})
    assert body["run_id"] == run.id and run.id in body["detail"]
    assert body["thread_id"] == thread.id and body["error"] == "RuntimeBusyError"
    assert dry.status_code == 409  # even a dry run: the CLI's rule is checked first
    with open_runtime(home=fresh_server.home) as runtime:
        head = runtime.checkpoints.latest(thread.id)
    assert head is not None and head.id == last.id  # nothing was written


def test_fork_starts_a_new_thread_from_the_checkpoint(fresh_server: Any) -> None:
    with open_runtime(home=fresh_server.home) as runtime:
        thread = runtime.checkpoints.create_thread("origin")
        cp = runtime.checkpoints.save(thread.id, {"x": 1})
    with fresh_server.client() as client:
        named = client.post(f"/api/checkpoints/{cp.id}/fork", json={"name": "retry"}).json()["thread"]
        default = client.post(f"/api/checkpoints/{cp.id}/fork").json()["thread"]
    assert named["name"] == "retry" and named["forked_from"] == cp.id
    assert named["parent_thread_id"] == thread.id
    assert default["name"] == "fork of origin at step 0"


def test_artifact_versions_and_streamed_content(demo_server: Any, demo_home: Demo) -> None:
    home, report = demo_home
    with demo_server.client() as client, open_runtime(home=home) as runtime:
        versions = client.get(
            f"/api/artifacts/{report.thread_id}/versions", params={"key": REPORT_KEY}
        ).json()
        assert [v["version"] for v in versions["versions"]] == [v.version for v in report.reports]
        with client.stream(
            "GET", f"/api/artifacts/{report.thread_id}/content", params={"key": REPORT_KEY, "version": 1}
        ) as response:
            data = b"".join(response.iter_bytes())
            headers = response.headers
        info, expected = runtime.artifacts.get(report.thread_id, REPORT_KEY, 1)
    assert data == expected
    assert headers["content-type"].startswith(info.media_type)
    assert headers["x-keepup-artifact-version"] == "1" and headers["content-length"] == str(info.size)
    assert headers["content-disposition"] == 'attachment; filename="tests.json"'


def test_a_scope_lists_its_artifacts_latest_versions(demo_server: Any, demo_home: Demo) -> None:
    home, report = demo_home
    with demo_server.client() as client, open_runtime(home=home) as runtime:
        body = client.get(f"/api/artifacts/{report.thread_id}").json()
        keys = runtime.artifacts.keys(report.thread_id)
        expected = [artifact_json(runtime.artifacts.info(report.thread_id, k)) for k in keys]
        empty = client.get(f"/api/artifacts/{report.thread_id}", params={"prefix": "nothing/"}).json()
    assert body == {"scope": report.thread_id, "artifacts": expected}
    assert REPORT_KEY in [a["key"] for a in body["artifacts"]]
    assert empty["artifacts"] == []


def test_unknown_artifacts_are_404(demo_server: Any, demo_home: Demo) -> None:
    _, report = demo_home
    with demo_server.client() as client:
        problem(client.get(f"/api/artifacts/{report.thread_id}/versions", params={"key": "nope.txt"}), 404)
        problem(client.get(f"/api/artifacts/{report.thread_id}/content", params={"key": "nope.txt"}), 404)
        problem(
            client.get(
                f"/api/artifacts/{report.thread_id}/content", params={"key": REPORT_KEY, "version": 999}
            ),
            404,
        )
        problem(client.get("/api/artifacts/x/content", params={"key": "../../etc/passwd"}), 422)


def test_runs_are_listed_and_filtered(demo_server: Any, demo_home: Demo) -> None:
    home, report = demo_home
    with demo_server.client() as client, open_runtime(home=home) as runtime:
        every = client.get("/api/runs").json()
        failed = client.get("/api/runs", params={"status": "failed", "thread": report.thread_id}).json()
        assert every == {"runs": [run_json(r) for r in runtime.runs.list()]}
    assert [r["thread_id"] for r in failed["runs"]] == [report.thread_id]
    assert failed["runs"][0]["status"] == "failed"


def test_cancel_leaves_a_finished_run_and_asks_a_running_one(fresh_server: Any, hold: Any) -> None:
    with open_runtime(home=fresh_server.home) as runtime:
        thread = runtime.checkpoints.create_thread("c")
    with hold(fresh_server.home, thread.id) as run, fresh_server.client() as client:
        body = client.post(f"/api/runs/{run.id}/cancel").json()
    assert body["run"]["status"] == "running" and body["run"]["cancel_requested"] is True


def test_cancel_of_a_run_whose_runner_died_cancels_it_at_once(fresh_server: Any, hold: Any) -> None:
    with open_runtime(home=fresh_server.home) as runtime:
        thread = runtime.checkpoints.create_thread("c")
    with hold(fresh_server.home, thread.id) as run:
        pass  # the runner "died": the run says running, nobody holds the lease
    with fresh_server.client() as client:
        body = client.post(f"/api/runs/{run.id}/cancel").json()
        again = client.post(f"/api/runs/{run.id}/cancel").json()
    assert body["run"]["status"] == RunStatus.CANCELLED.value
    assert again == body


def test_sessions_are_listed(fresh_server: Any) -> None:
    with open_runtime(home=fresh_server.home) as runtime:
        sessions = Sessions(runtime.driver)
        a = sessions.open("first")
        b = sessions.open("second")
        sessions.close(a.id)
    with fresh_server.client() as client:
        every = client.get("/api/sessions").json()["sessions"]
        active = client.get("/api/sessions", params={"status": "active"}).json()["sessions"]
    assert [s["id"] for s in every] == [b.id, a.id]
    assert [s["id"] for s in active] == [b.id]
    assert set(every[0]) == {"id", "name", "status", "created_at", "last_seen_at", "metadata"}


def test_tasks_by_parent_and_by_id(fresh_server: Any) -> None:
    with open_runtime(home=fresh_server.home) as runtime:
        tasks = Tasks(runtime.driver)
        root = tasks.create("build it")
        child = tasks.create("write tests", parent_id=root.id, assignee="bob")
    with fresh_server.client() as client:
        children = client.get("/api/tasks", params={"parent": root.id}).json()["tasks"]
        one = client.get("/api/tasks", params={"id": child.id}).json()["tasks"]
        problem(client.get("/api/tasks", params={"id": "01a00000-0000-7000-8000-000000000000"}), 404)
        listing = client.get("/api/tasks").json()["tasks"]
        bobs = client.get("/api/tasks", params={"assignee": "bob"}).json()["tasks"]
        pending = client.get("/api/tasks", params={"status": "pending", "limit": 1}).json()["tasks"]
        problem(client.get("/api/tasks", params={"status": "nosuch"}), 422)
    assert [t["id"] for t in children] == [child.id]
    assert one[0]["assignee"] == "bob" and one[0]["parent_id"] == root.id
    assert [t["id"] for t in listing] == [child.id, root.id]  # newest first
    assert [t["id"] for t in bobs] == [child.id]
    assert [t["id"] for t in pending] == [child.id]


def test_message_search_finds_recorded_messages_best_first(fresh_server: Any) -> None:
    import json as _json

    from keepup import Incoming, MessageStore

    now = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)

    def wire(seq: int, text: str, conversation: str) -> Incoming:
        body = {"id": f"m{seq}", "sender": "alice", "seq": seq, "text": text, "conversation": conversation}
        return Incoming("agents.ops", _json.dumps(body).encode(), now, "zmq")

    with open_runtime(home=fresh_server.home) as runtime:
        store = MessageStore(runtime.driver)
        store.append(
            [
                wire(1, "the deploy failed on staging", "ops"),
                wire(2, "rolling back now", "ops"),
                wire(3, "deploy fixed and done", "dev"),
            ]
        )
        store.close()
    with fresh_server.client() as client:
        found = client.get("/api/messages/search", params={"q": "deploy"}).json()
        dev = client.get("/api/messages/search", params={"q": "deploy", "conversation": "dev"}).json()
        none = client.get("/api/messages/search", params={"q": "nothing-like-this"}).json()
        problem(client.get("/api/messages/search"), 422)  # q is required
        # a query is words, never syntax or SQL; one of over 32 words is a typed error
        for hostile in ("'); DROP TABLE kv; --", '"deploy" OR x', "deploy:* & !x", "NEAR(a b)", "\\"):
            assert client.get("/api/messages/search", params={"q": hostile}).json()["hits"] == []
        assert len(client.get("/api/messages/search", params={"q": "DEPLOY*"}).json()["hits"]) == 2
        problem(client.get("/api/messages/search", params={"q": " ".join(["w"] * 33)}), 422)
    assert found["query"] == "deploy"
    assert sorted(h["message"]["id"] for h in found["hits"]) == ["m1", "m3"]
    assert all("[deploy]" in h["snippet"].lower() for h in found["hits"])
    assert [h["message"]["id"] for h in dev["hits"]] == ["m3"]
    assert none["hits"] == []


def test_unknown_paths_and_methods_are_problems(demo_server: Any) -> None:
    with demo_server.client() as client:
        problem(client.get("/api/nothing"), 404)
        problem(client.delete("/api/threads"), 405)
        problem(client.get("/static/secret.py"), 404)


def test_openapi_describes_every_route(demo_server: Any) -> None:
    paths = httpx.get(f"{demo_server.url}/openapi.json").json()["paths"]
    assert set(paths) >= {
        "/api/threads",
        "/api/threads/{thread_id}",
        "/api/threads/{thread_id}/checkpoints",
        "/api/checkpoints/{checkpoint_id}",
        "/api/checkpoints/{a}/diff/{b}",
        "/api/checkpoints/{checkpoint_id}/restore",
        "/api/checkpoints/{checkpoint_id}/fork",
        "/api/artifacts/{scope}",
        "/api/artifacts/{scope}/versions",
        "/api/artifacts/{scope}/content",
        "/api/runs",
        "/api/runs/{run_id}/cancel",
        "/api/sessions",
        "/api/tasks",
        "/api/messages/search",
        "/api/events",
        "/healthz",
    }


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/static/app.css"])
def test_the_web_page_is_served_without_a_build_step(demo_server: Any, path: str) -> None:
    response = httpx.get(f"{demo_server.url}{path}")
    assert response.status_code == 200 and len(response.content) > 500


def test_a_damaged_record_is_a_500_corrupt_problem_and_is_never_decoded(fresh_server: Any) -> None:
    import sqlite3

    with open_runtime(home=fresh_server.home) as runtime:
        thread = runtime.checkpoints.create_thread("to damage")
    with sqlite3.connect(fresh_server.home / "keepup.db") as db:
        (value,) = db.execute("SELECT value FROM kv WHERE ns = 'thread'").fetchone()
        damaged = bytes(value[:-3]) + bytes([value[-3] ^ 0xFF]) + bytes(value[-2:])
        db.execute("UPDATE kv SET value = ? WHERE ns = 'thread'", (damaged,))
    with fresh_server.client() as client:
        body = problem(client.get(f"/api/threads/{thread.id}"), 500)
    assert body["type"] == "/problems/corrupt" and body["error"] == "CorruptionError"


def test_a_store_that_refuses_writes_is_a_503_storage_problem(tmp_path: Path, serve: Any) -> None:
    with open_runtime(home=tmp_path) as runtime:
        thread = runtime.checkpoints.create_thread("read only")
        first = runtime.checkpoints.save(thread.id, {"x": 1})
        runtime.checkpoints.save(thread.id, {"x": 2})
    with (
        serve(tmp_path, store=f"sqlite:///{tmp_path / 'keepup.db'}?read_only=1") as server,
        server.client() as client,
    ):
        response = client.post(f"/api/checkpoints/{first.id}/restore", json={})
    body = problem(response, 503)
    assert body["type"] == "/problems/storage" and "readonly" in body["detail"]
