"""`keepup messages recent/show/search/export/stats` over a recorded store: tables, `--json` in the
shapes documented in docs/cli.md, typed exit codes, and never a write (they open the store
read-only)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from keepup.cli import app
from runtime_persistence import Incoming, MessageStore, open_store
from typer.testing import CliRunner

DOC = Path(__file__).resolve().parents[3] / "docs" / "cli.md"
_SCHEMA_RE = re.compile(r"<!-- recorder-schema: (.+?) -->\s*```json\n(.*?)```", re.DOTALL)
NOW = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)


def shapes() -> dict[str, Any]:
    return {name.strip(): json.loads(body) for name, body in _SCHEMA_RE.findall(DOC.read_text())}


@pytest.fixture
def store_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path}/messages.db"
    driver = open_store(url)
    store = MessageStore(driver)

    def wire(seq: int, text: str, conversation: str = "ops") -> Incoming:
        body = {"id": f"m{seq}", "sender": "alice", "seq": seq, "text": text, "conversation": conversation}
        return Incoming("agents.ops", json.dumps(body).encode(), NOW, "zmq")

    store.append(
        [
            wire(1, "the deploy failed on staging"),
            wire(2, "rolling back now"),
            wire(4, "deploy fixed and done", "dev"),
            Incoming("raw", b"\xff\xfe", NOW, "zmq"),
        ]
    )
    store.close()
    driver.close()
    yield url


def run(url: str, *args: str) -> Any:
    result = CliRunner().invoke(app, ["--store", url, "messages", *args])
    return result


def json_of(url: str, command: str, *args: str) -> Any:
    result = run(url, command, *args, "--json")
    assert result.exit_code == 0, result.stderr
    output = json.loads(result.stdout)
    schema = shapes()[f"messages {command}"]
    errors = list(Draft202012Validator(schema).iter_errors(output))
    assert not errors, [e.message for e in errors[:3]]
    return output


def test_recent_lists_messages_and_gaps_oldest_first(store_url: str) -> None:
    out = json_of(store_url, "recent")
    assert [m["kind"] for m in out["messages"]] == ["message", "message", "gap", "message", "message"]
    assert out["messages"][2]["gap_from"] == 3 and out["messages"][2]["gap_to"] == 3
    assert "body_base64" in out["messages"][-1]
    table = run(store_url, "recent", "-n", "2")
    assert table.exit_code == 0 and "deploy fixed and done" in table.stdout


def test_show_by_offset_or_by_id(store_url: str) -> None:
    assert json_of(store_url, "show", "2")["message"]["text"] == "rolling back now"
    assert json_of(store_url, "show", "m4")["message"]["offset"] == 4
    missing = run(store_url, "show", "99")
    assert missing.exit_code == 4 and "no message at offset 99" in missing.stderr
    assert run(store_url, "show", "nope").exit_code == 4
    gap = run(store_url, "show", "3").stdout
    assert "seq 3-3" in gap and "body" not in gap


def test_search_ranks_and_highlights(store_url: str) -> None:
    out = json_of(store_url, "search", "deploy")
    assert {h["message"]["offset"] for h in out["hits"]} == {1, 4}
    assert all("[deploy]" in h["snippet"] for h in out["hits"])
    assert (
        json_of(store_url, "search", "deploy", "--conversation", "dev")["hits"][0]["message"]["offset"] == 4
    )
    table = run(store_url, "search", "staging")
    assert table.exit_code == 0 and "[staging]" in table.stdout
    assert "no message matches" in run(store_url, "search", "zebra").stdout


def test_export_writes_every_record_in_order(store_url: str, tmp_path: Path) -> None:
    lines = run(store_url, "export").stdout.splitlines()
    assert [json.loads(line)["offset"] for line in lines] == [1, 2, 3, 4, 5]
    assert [m["offset"] for m in json_of(store_url, "export", "--after", "3")["messages"]] == [4, 5]
    target = tmp_path / "out.jsonl"
    assert run(store_url, "export", "--conversation", "ops", "-o", str(target)).exit_code == 0
    assert [json.loads(line)["seq"] for line in target.read_text().splitlines()] == [1, 2]


def test_stats_report_the_recorder_state(store_url: str) -> None:
    stats = json_of(store_url, "stats")["stats"]
    assert (stats["messages"], stats["gaps"], stats["senders"], stats["next_offset"]) == (4, 1, 1, 6)


def test_reading_commands_never_create_a_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/absent.db"
    result = run(url, "recent")
    assert result.exit_code == 4 and "no store" in result.stderr
    assert not (tmp_path / "absent.db").exists()


def test_every_messages_command_has_a_documented_shape() -> None:
    assert set(shapes()) == {f"messages {c}" for c in ("recent", "show", "search", "export", "stats")}
