"""Every record validates at construction with a clear, typed message, and is immutable."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from runtime_core import (
    ArtifactRef,
    ArtifactVersion,
    Checkpoint,
    CheckpointSource,
    Event,
    Lease,
    Message,
    PendingWrite,
    Run,
    RunError,
    RunStatus,
    Session,
    SessionStatus,
    SnapshotInfo,
    Task,
    TaskLog,
    TaskStatus,
    Thread,
    ToolCall,
    ToolCallResult,
    TypedArtifact,
    ValidationError,
    WorkspaceRef,
    blob_digest,
    new_id,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NAIVE = datetime(2025, 3, 1, 12, 0)
DIGEST = blob_digest(b"report")
COMMIT = "a" * 40


def checkpoint(**changes: Any) -> Checkpoint:
    fields: dict[str, Any] = {
        "id": new_id(),
        "thread_id": new_id(),
        "parent_id": None,
        "step": 0,
        "source": CheckpointSource.INPUT,
        "created_at": NOW,
    }
    fields.update(changes)
    return Checkpoint(**fields)


# --- threads -------------------------------------------------------------------------------------


def test_thread_holds_its_fields() -> None:
    tid, parent, cp = new_id(), new_id(), new_id()
    thread = Thread(
        tid, NOW, NOW, name="main", metadata={"user": "ann"}, parent_thread_id=parent, forked_from=cp, head=cp
    )
    assert (thread.id, thread.name, thread.metadata, thread.parent_thread_id, thread.forked_from) == (
        tid,
        "main",
        {"user": "ann"},
        parent,
        cp,
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": "nope"}, "thread id must be a UUIDv7"),
        ({"created_at": NAIVE}, "created_at must be a timezone-aware datetime"),
        ({"updated_at": "2025-01-01"}, "updated_at must be a timezone-aware datetime"),
        ({"name": "x" * 201}, "thread name is 201 characters; the limit is 200"),
        ({"name": "a\nb"}, "thread name must not contain control characters"),
        ({"name": 5}, "thread name must be a string, got int"),
        ({"metadata": {1: "x"}}, "thread metadata keys must be strings"),
        ({"metadata": ["x"]}, "thread metadata must be a mapping"),
        ({"metadata": {"f": float("nan")}}, "NaN or infinity"),
        ({"metadata": {"b": b"x"}}, "thread metadata must hold plain data"),
        ({"parent_thread_id": "p"}, "parent thread id must be a UUIDv7"),
        ({"forked_from": "f"}, "forked_from checkpoint id must be a UUIDv7"),
        ({"head": "h"}, "head checkpoint id must be a UUIDv7"),
    ],
)
def test_thread_validation(changes: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"id": new_id(), "created_at": NOW, "updated_at": NOW, **changes}
    with pytest.raises(ValidationError, match=message):
        Thread(**fields)


def test_metadata_size_and_depth_are_limited() -> None:
    with pytest.raises(ValidationError, match="the limit is 65536"):
        Thread(new_id(), NOW, NOW, metadata={"big": "x" * 70_000})
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(20):
        node["d"] = {}
        node = node["d"]
    with pytest.raises(ValidationError, match="nested deeper than 16"):
        Thread(new_id(), NOW, NOW, metadata=deep)


def test_records_are_frozen() -> None:
    thread = Thread(new_id(), NOW, NOW)
    with pytest.raises(dataclasses.FrozenInstanceError):
        thread.name = "other"  # type: ignore[misc]


def test_metadata_is_copied_so_later_changes_to_the_input_do_not_leak_in() -> None:
    meta = {"k": "v"}
    thread = Thread(new_id(), NOW, NOW, metadata=meta)
    meta["k"] = "changed"
    assert thread.metadata == {"k": "v"}


# --- checkpoints ---------------------------------------------------------------------------------


def test_checkpoint_accepts_plain_state_and_coerces_its_source() -> None:
    cp = checkpoint(
        source="loop",
        state={"messages": [{"role": "user", "content": "hi"}], "blob": b"\x00", "at": NOW, "u": UUID(int=1)},
        label="before refactor",
    )
    assert cp.source is CheckpointSource.LOOP
    assert cp.pinned
    assert not checkpoint().pinned


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": "x"}, "checkpoint id must be a UUIDv7"),
        ({"thread_id": "x"}, "thread id must be a UUIDv7"),
        ({"parent_id": "x"}, "parent checkpoint id must be a UUIDv7"),
        ({"step": -1}, "step must be a non-negative integer"),
        ({"step": True}, "step must be a non-negative integer"),
        ({"step": 1.0}, "step must be a non-negative integer"),
        (
            {"source": "dream"},
            "checkpoint source must be one of input, loop, update, fork, restore; got 'dream'",
        ),
        ({"created_at": NAIVE}, "created_at must be a timezone-aware"),
        ({"state": [1, 2]}, "checkpoint state must be a mapping"),
        ({"state": {"": 1}}, "channel name must not be empty"),
        ({"state": {"c": {1, 2}}}, "checkpoint state must hold plain data"),
        ({"state": {"c": object()}}, "got object"),
        ({"state": {"c": float("inf")}}, "NaN or infinity"),
        ({"label": ""}, "checkpoint label must not be empty"),
        ({"metadata": {"when": NOW}}, "checkpoint metadata must hold plain data"),
        ({"pending_writes": [1]}, "pending_writes must be a tuple"),
        ({"workspace": "/tmp/x"}, "workspace must be a WorkspaceRef"),
        ({"artifacts": (("s", "k", 0),)}, "artifacts must be a tuple of ArtifactRef"),
    ],
)
def test_checkpoint_validation(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        checkpoint(**changes)


def test_checkpoint_cannot_be_its_own_parent() -> None:
    cid = new_id()
    with pytest.raises(ValidationError, match="its own parent"):
        checkpoint(id=cid, parent_id=cid)


def test_checkpoint_channel_count_is_limited() -> None:
    with pytest.raises(ValidationError, match="4097 channels; the limit is 4096"):
        checkpoint(state={f"c{i}": i for i in range(4097)})


def test_checkpoint_carries_its_own_pending_writes_only() -> None:
    cid = new_id()
    mine = PendingWrite(cid, "task-1", "tool_result", {"ok": True}, NOW)
    cp = checkpoint(
        id=cid,
        pending_writes=(mine,),
        workspace=WorkspaceRef("/home/u/project", COMMIT),
        artifacts=(ArtifactRef("thread", "report.md", 0),),
    )
    assert cp.pending_writes == (mine,)
    other = PendingWrite(new_id(), "task-1", "tool_result", 1, NOW)
    with pytest.raises(ValidationError, match="this checkpoint's PendingWrite"):
        checkpoint(id=cid, pending_writes=(other,))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("x", "t", "c", 1, NOW), "checkpoint id must be a UUIDv7"),
        ((None, "", "c", 1, NOW), "pending write task id must not be empty"),
        ((None, "t", "", 1, NOW), "pending write channel must not be empty"),
        ((None, "t", "c", {1: 2}, NOW), "pending write value keys must be strings"),
        ((None, "t", "c", 1, NAIVE), "created_at must be a timezone-aware"),
    ],
)
def test_pending_write_validation(args: tuple[Any, ...], message: str) -> None:
    args = (args[0] or new_id(), *args[1:])
    with pytest.raises(ValidationError, match=message):
        PendingWrite(*args)


# --- workspace refs --------------------------------------------------------------------------------


def test_workspace_ref_and_snapshot_info() -> None:
    assert WorkspaceRef("/w", "b" * 64).commit == "b" * 64
    with pytest.raises(ValidationError, match="absolute path"):
        WorkspaceRef("relative/dir", COMMIT)
    with pytest.raises(ValidationError, match="full hex git object id"):
        WorkspaceRef("/w", "abc123")
    with pytest.raises(ValidationError, match="full hex git object id"):
        WorkspaceRef("/w", "A" * 40)
    assert SnapshotInfo(COMMIT, "msg", NOW, files=3).files == 3
    with pytest.raises(ValidationError, match="created_at"):
        SnapshotInfo(COMMIT, "msg", NAIVE)


# --- artifacts -----------------------------------------------------------------------------------


def artifact(**changes: Any) -> ArtifactVersion:
    fields: dict[str, Any] = {
        "scope": "thread-1",
        "key": "reports/summary.md",
        "version": 0,
        "digest": DIGEST,
        "size": 6,
        "media_type": "text/markdown",
        "created_at": NOW,
    }
    fields.update(changes)
    return ArtifactVersion(**fields)


def test_artifact_version_and_its_ref() -> None:
    v = artifact(version=2, artifact_type="report@1")
    assert v.ref == ArtifactRef("thread-1", "reports/summary.md", 2)
    q = artifact(quarantined=True, quarantine_reason="body.title: required")
    assert q.quarantined


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scope": ""}, "artifact scope must not be empty"),
        ({"key": ""}, "artifact key must not be empty"),
        ({"version": -1}, "artifact version must be a non-negative integer"),
        ({"digest": "abc"}, "64 lowercase hex"),
        ({"size": -5}, "artifact size must be a non-negative integer"),
        ({"media_type": ""}, "media type must not be empty"),
        ({"created_at": NAIVE}, "created_at"),
        ({"artifact_type": "report"}, "name@version"),
        ({"artifact_type": "@1"}, "name@version"),
        ({"artifact_type": "report@"}, "name@version"),
        ({"quarantine_reason": "why"}, "only a quarantined artifact version"),
    ],
)
def test_artifact_version_validation(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        artifact(**changes)


def test_artifact_ref_and_typed_artifact_validation() -> None:
    with pytest.raises(ValidationError, match="artifact version"):
        ArtifactRef("s", "k", -1)
    assert TypedArtifact("report@2", {"title": "t"}).body == {"title": "t"}
    for bad in ("report", "report@", "@2", "a@b@c"):
        with pytest.raises(ValidationError, match="name@version"):
            TypedArtifact(bad, {})
    with pytest.raises(ValidationError, match="typed artifact body must be a mapping"):
        TypedArtifact("report@1", [])  # type: ignore[arg-type]


# --- events, sessions, leases ----------------------------------------------------------------------


def test_event_validation() -> None:
    e = Event(new_id(), "agent.message", NOW, payload={"text": "hi", "raw": b"\x01"}, thread_id=new_id())
    assert e.topic == "agent.message"
    with pytest.raises(ValidationError, match="event id"):
        Event("x", "t", NOW)
    with pytest.raises(ValidationError, match="event topic must not be empty"):
        Event(new_id(), "", NOW)
    with pytest.raises(ValidationError, match="event payload must hold plain data"):
        Event(new_id(), "t", NOW, payload=object())
    with pytest.raises(ValidationError, match="thread id"):
        Event(new_id(), "t", NOW, thread_id="nope")


def test_session_validation_and_status_coercion() -> None:
    s = Session(new_id(), NOW, NOW, name="cli", status="closed")  # type: ignore[arg-type]
    assert s.status is SessionStatus.CLOSED
    with pytest.raises(ValidationError, match="session status must be one of active, closed, stale"):
        Session(new_id(), NOW, NOW, status="asleep")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="last_seen_at"):
        Session(new_id(), NOW, NAIVE)


def test_lease_validation_and_liveness() -> None:
    lease = Lease(
        new_id(), holder=new_id(), owner="host:123", acquired_at=NOW, expires_at=NOW + timedelta(seconds=30)
    )
    assert lease.is_live(NOW + timedelta(seconds=29))
    assert not lease.is_live(NOW + timedelta(seconds=30))
    with pytest.raises(ValidationError, match="cannot expire before it was acquired"):
        Lease(new_id(), "run", "host", NOW, NOW - timedelta(seconds=1))
    with pytest.raises(ValidationError, match="lease holder must not be empty"):
        Lease(new_id(), "", "host", NOW, NOW)


# --- runs and their parts --------------------------------------------------------------------------


def test_run_validation_and_status_coercion() -> None:
    run = Run(new_id(), new_id(), "coder", "running", NOW)  # type: ignore[arg-type]
    assert run.status is RunStatus.RUNNING
    with pytest.raises(ValidationError, match="run status must be one of pending, running"):
        Run(new_id(), new_id(), "coder", "exploded", NOW)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="agent name must not be empty"):
        Run(new_id(), new_id(), "", RunStatus.PENDING, NOW)
    with pytest.raises(ValidationError, match="ended_at"):
        Run(new_id(), new_id(), "a", RunStatus.PENDING, NOW, ended_at=NAIVE)
    with pytest.raises(ValidationError, match="steps must be a non-negative"):
        Run(new_id(), new_id(), "a", RunStatus.PENDING, NOW, steps=-1)
    with pytest.raises(ValidationError, match="run error must be a RunError"):
        Run(new_id(), new_id(), "a", RunStatus.FAILED, NOW, error="boom")  # type: ignore[arg-type]


def test_message_validation() -> None:
    assert Message("tool", "42", tool_call_id="call-1").tool_call_id == "call-1"
    with pytest.raises(ValidationError, match="message role must be one of"):
        Message("robot", "hi")
    with pytest.raises(ValidationError, match="message content must be a string"):
        Message("user", 5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="lone surrogates"):
        Message("user", "\ud800")
    with pytest.raises(ValidationError, match="message tool call id must not be empty"):
        Message("tool", "x", tool_call_id="")


def test_tool_call_and_result_validation() -> None:
    assert ToolCall("c1", "read", {"path": "a.txt"}).arguments == {"path": "a.txt"}
    with pytest.raises(ValidationError, match="tool name must not be empty"):
        ToolCall("c1", "")
    with pytest.raises(ValidationError, match="tool arguments must be a mapping"):
        ToolCall("c1", "read", ["a"])  # type: ignore[arg-type]
    ok = ToolCallResult("c1", "read", {}, True, output="text", duration_ms=3.5)
    assert ok.success
    with pytest.raises(ValidationError, match="must carry an error message"):
        ToolCallResult("c1", "read", {}, False)
    with pytest.raises(ValidationError, match="duration_ms must be a non-negative number"):
        ToolCallResult("c1", "read", {}, True, duration_ms=-1)
    with pytest.raises(ValidationError, match="success must be a bool"):
        ToolCallResult("c1", "read", {}, 1)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="tool output must hold plain data"):
        ToolCallResult("c1", "read", {}, True, output=object())


def test_run_error_validation() -> None:
    assert not RunError("quota", code="rate_limit", recoverable=False).recoverable
    with pytest.raises(ValidationError, match="recoverable must be a bool"):
        RunError("x", recoverable="no")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="run error code must not be empty"):
        RunError("x", code="")
    with pytest.raises(ValidationError, match="message must be a string"):
        RunError(None)  # type: ignore[arg-type]


# --- tasks -----------------------------------------------------------------------------------------


def test_task_validation() -> None:
    task = Task(new_id(), "write tests", NOW, NOW, status="running", progress=0.5, assignee="ann")  # type: ignore[arg-type]
    assert task.status is TaskStatus.RUNNING
    for bad_progress in (-0.1, 1.1, float("nan"), True, "half"):
        with pytest.raises(ValidationError, match="task progress must be between 0 and 1"):
            Task(new_id(), "t", NOW, NOW, progress=bad_progress)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="task status must be one of pending"):
        Task(new_id(), "t", NOW, NOW, status="lost")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="task title must not be empty"):
        Task(new_id(), "", NOW, NOW)
    with pytest.raises(ValidationError, match="parent task id"):
        Task(new_id(), "t", NOW, NOW, parent_id="p")
    with pytest.raises(ValidationError, match="assignee must not be empty"):
        Task(new_id(), "t", NOW, NOW, assignee="")


def test_task_log_validation() -> None:
    assert TaskLog(new_id(), NOW, "started", "debug").level == "debug"
    with pytest.raises(ValidationError, match="task log level must be one of"):
        TaskLog(new_id(), NOW, "x", "loud")
    with pytest.raises(ValidationError, match="task id"):
        TaskLog("t", NOW, "x")
    with pytest.raises(ValidationError, match="at must be a timezone-aware"):
        TaskLog(new_id(), NAIVE, "x")
