"""The ``/api`` routes. Bodies are the JSON shapes of ``keepup ... --json``
(:mod:`keepup.shapes`); errors are answered by :mod:`keepup_server.errors`, in one place.

Every route awaits Keepup's async repositories (:class:`keepup_server.services.Services`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import StreamingResponse
from keepup import (
    AsyncWorkspaceCheckpoints,
    FileChange,
    NotFoundError,
    RunStatus,
    SessionStatus,
    TaskStatus,
    Thread,
    ValidationError,
)
from keepup.shapes import (
    artifact_json,
    checkpoint_json,
    diff_entry_json,
    file_change_json,
    lease_json,
    restore_report_json,
    run_json,
    thread_json,
)
from pydantic import BaseModel, ConfigDict, Field

from keepup_server.errors import PROBLEM_MEDIA_TYPE
from keepup_server.live import Broadcaster, sse_stream
from keepup_server.records import session_json, task_json
from keepup_server.services import Services

__all__ = ["MAX_SEARCH_SCAN", "router"]

_PROBLEM = {"content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or wrong bearer token", **_PROBLEM},
    404: {"description": "No such record", **_PROBLEM},
    422: {"description": "Invalid input; nothing was written", **_PROBLEM},
    503: {"description": "The store is unavailable", **_PROBLEM},
}

router = APIRouter(prefix="/api", responses=_ERRORS)

MAX_SEARCH_SCAN = 10_000
"""A thread search reads at most this many threads (newest first) before it stops."""

Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many.")]
ThreadId = Annotated[str, Path(max_length=200, description="A thread id.")]
CheckpointId = Annotated[str, Path(max_length=200, description="A checkpoint id.")]


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


@router.get("/threads", summary="List threads, newest first; search by name, id or metadata")
async def list_threads(
    request: Request,
    limit: Limit = 50,
    before: Annotated[
        str | None, Query(max_length=200, description="Page: threads older than this one.")
    ] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Only threads whose name, id or metadata contain this.")
    ] = None,
) -> dict[str, Any]:
    checkpoints = _services(request).checkpoints
    if not q:
        threads = await checkpoints.list_threads(limit=limit, before=before)
        return {"threads": [thread_json(t) for t in threads]}
    needle = q.casefold()
    found: list[Thread] = []
    scanned = 0
    cursor = before
    while len(found) < limit and scanned < MAX_SEARCH_SCAN:
        page = await checkpoints.list_threads(limit=200, before=cursor)
        if not page:
            break
        scanned += len(page)
        found.extend(t for t in page if needle in _searchable(t))
        cursor = page[-1].id
    return {"threads": [thread_json(t) for t in found[:limit]]}


def _searchable(thread: Thread) -> str:
    return " ".join([thread.id, thread.name, *(f"{k} {v}" for k, v in thread.metadata.items())]).casefold()


@router.get("/threads/{thread_id}", summary="A thread, its head and the run holding it")
async def get_thread(request: Request, thread_id: ThreadId) -> dict[str, Any]:
    services = _services(request)
    thread = await services.checkpoints.get_thread(thread_id)
    head = await services.checkpoints.latest(thread_id)
    lease = await services.leases.current(thread_id)
    return {
        "thread": thread_json(thread),
        "head": None if head is None else checkpoint_json(head),
        "lease": lease_json(lease),
    }


@router.get("/threads/{thread_id}/checkpoints", summary="A thread's checkpoints, newest first")
async def list_checkpoints(
    request: Request,
    thread_id: ThreadId,
    limit: Limit = 50,
    before: Annotated[
        str | None, Query(max_length=200, description="Page: checkpoints older than this one.")
    ] = None,
) -> dict[str, Any]:
    checkpoints = _services(request).checkpoints
    thread = await checkpoints.get_thread(thread_id)
    found = await checkpoints.list(thread_id, limit=limit, before=before)
    return {"thread": thread_json(thread), "checkpoints": [checkpoint_json(c) for c in found]}


@router.get("/checkpoints/{checkpoint_id}", summary="One checkpoint, with its state")
async def get_checkpoint(
    request: Request,
    checkpoint_id: CheckpointId,
    state: Annotated[bool, Query(description="Include the state channels and pending writes.")] = True,
) -> dict[str, Any]:
    return checkpoint_json(await _services(request).checkpoints.get(checkpoint_id), state=state)


@router.get("/checkpoints/{a}/diff/{b}", summary="What changed from checkpoint A to B: state and files")
async def diff(
    request: Request,
    a: CheckpointId,
    b: CheckpointId,
    patch: Annotated[bool, Query(description="Include unified diffs of changed files.")] = False,
) -> dict[str, Any]:
    services = _services(request)
    old, new = await services.checkpoints.get(a), await services.checkpoints.get(b)
    entries = await services.checkpoints.diff(a, b)
    files: list[FileChange] | None = None
    if (
        old.workspace is not None
        and new.workspace is not None
        and old.workspace.workspace == new.workspace.workspace
    ):
        snaps = await services.snapshots(old.workspace.workspace)
        files = await snaps.diff(old.workspace.commit, new.workspace.commit, content=patch)
    return {
        "a": a,
        "b": b,
        "changes": [diff_entry_json(e) for e in entries],
        "files": None if files is None else [file_change_json(f) for f in files],
    }


class RestoreRequest(BaseModel):
    """What to restore: the conversation always; the workspace files too with ``workspace``."""

    model_config = ConfigDict(extra="forbid")
    workspace: bool = Field(default=False, description="Restore the files of the checkpoint's snapshot too.")
    dry_run: bool = Field(default=False, description="Change nothing; report what the restore would do.")


@router.post(
    "/checkpoints/{checkpoint_id}/restore",
    summary="Make a checkpoint the head again (and its files); refused with 409 while a run holds the thread",
    responses={409: {"description": "A run holds the thread (the body names it)", **_PROBLEM}},
)
async def restore(
    request: Request,
    checkpoint_id: CheckpointId,
    body: Annotated[RestoreRequest | None, Body()] = None,
) -> dict[str, Any]:
    wanted = body or RestoreRequest()
    services = _services(request)
    cp = await services.checkpoints.get(checkpoint_id)
    await services.leases.check_free(cp.thread_id, "restore")  # the CLI's rule: before anything else
    if wanted.workspace and cp.workspace is None:
        raise ValidationError(f"checkpoint {cp.id} has no workspace snapshot; restore it without workspace")
    if cp.workspace is not None and wanted.workspace:
        snaps = await services.snapshots(cp.workspace.workspace)
        done = await AsyncWorkspaceCheckpoints(
            services.checkpoints, snaps.sync, leases=services.leases
        ).restore(checkpoint_id, workspace=True, dry_run=wanted.dry_run)
        new, report = done.checkpoint, done.files
    else:
        new = None if wanted.dry_run else await services.checkpoints.restore(checkpoint_id)
        report = None
    return {
        "restored_from": cp.id,
        "dry_run": wanted.dry_run,
        "checkpoint": None if new is None else checkpoint_json(new),
        "workspace": None if report is None else restore_report_json(report),
    }


class ForkRequest(BaseModel):
    """The new thread's name (default: "fork of THREAD at step N")."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)


@router.post("/checkpoints/{checkpoint_id}/fork", summary="Start a new thread from a checkpoint")
async def fork(
    request: Request, checkpoint_id: CheckpointId, body: Annotated[ForkRequest | None, Body()] = None
) -> dict[str, Any]:
    checkpoints = _services(request).checkpoints
    name = body.name if body is not None else None
    if name is None or not name.strip():
        cp = await checkpoints.get(checkpoint_id)
        source = await checkpoints.get_thread(cp.thread_id)
        name = f"fork of {source.name or source.id} at step {cp.step}"
    thread = await checkpoints.fork(checkpoint_id, name=name)
    return {"thread": thread_json(thread)}


Scope = Annotated[str, Path(max_length=200, description="The artifact scope (usually a thread id).")]
Key = Annotated[
    str, Query(min_length=1, max_length=1024, description="The artifact key, e.g. reports/tests.json.")
]


@router.get("/artifacts/{scope}", summary="The artifacts of a scope with their latest version")
async def list_artifacts(
    request: Request,
    scope: Scope,
    prefix: Annotated[str, Query(max_length=1024, description="Only keys starting with this.")] = "",
    limit: Limit = 200,
) -> dict[str, Any]:
    artifacts = _services(request).artifacts
    keys = (await artifacts.keys(scope, prefix))[:limit]
    return {"scope": scope, "artifacts": [artifact_json(await artifacts.info(scope, k)) for k in keys]}


@router.get("/artifacts/{scope}/versions", summary="Every version of an artifact, oldest first")
async def artifact_versions(request: Request, scope: Scope, key: Key) -> dict[str, Any]:
    found = await _services(request).artifacts.versions(scope, key)
    if not found:
        raise NotFoundError(f"no artifact {key!r} in scope {scope!r}")
    return {"scope": scope, "key": key, "versions": [artifact_json(v) for v in found]}


@router.get(
    "/artifacts/{scope}/content",
    summary="An artifact's bytes (streamed; the latest version unless one is given)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The bytes"}},
)
async def artifact_content(
    request: Request,
    scope: Scope,
    key: Key,
    version: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> StreamingResponse:
    info, stream = await _services(request).artifacts.open(scope, key, version)
    filename = key.rsplit("/", 1)[-1].replace('"', "") or "artifact"
    return StreamingResponse(
        _chunks(stream),
        media_type=info.media_type or "application/octet-stream",
        headers={
            "Content-Length": str(info.size),
            "Content-Disposition": f'attachment; filename="{filename.encode("ascii", "replace").decode()}"',
            "X-Keepup-Artifact-Version": str(info.version),
            "X-Keepup-Digest": info.digest,
        },
    )


async def _chunks(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield chunk


@router.get("/runs", summary="Runs, newest first")
async def list_runs(
    request: Request,
    limit: Limit = 50,
    thread: Annotated[str | None, Query(max_length=200, description="Only runs of this thread.")] = None,
    status: Annotated[RunStatus | None, Query(description="Only runs in this status.")] = None,
) -> dict[str, Any]:
    runs = await _services(request).runs.list(thread_id=thread, status=status, limit=limit)
    return {"runs": [run_json(r) for r in runs]}


@router.post(
    "/runs/{run_id}/cancel",
    summary="Ask a run to stop (a run whose runner died is cancelled at once)",
)
async def cancel_run(
    request: Request, run_id: Annotated[str, Path(max_length=200, description="A run id.")]
) -> dict[str, Any]:
    return {"run": run_json(await _services(request).cancel_run(run_id))}


@router.get("/sessions", summary="Sessions, newest first")
async def list_sessions(
    request: Request,
    limit: Limit = 50,
    status: Annotated[SessionStatus | None, Query(description="Only sessions in this status.")] = None,
) -> dict[str, Any]:
    sessions = await _services(request).sessions.list(status=status, limit=limit)
    return {"sessions": [session_json(s) for s in sessions]}


@router.get("/tasks", summary="Tasks newest first: every task, a parent task's children, or one task by id")
async def list_tasks(
    request: Request,
    limit: Limit = 50,
    parent: Annotated[str | None, Query(max_length=200, description="The children of this task.")] = None,
    id: Annotated[str | None, Query(max_length=200, description="This one task.")] = None,
    status: Annotated[TaskStatus | None, Query(description="Only tasks in this status.")] = None,
    assignee: Annotated[str | None, Query(max_length=200, description="Only tasks given to NAME.")] = None,
) -> dict[str, Any]:
    tasks = _services(request).tasks
    if id is not None:
        return {"tasks": [task_json(await tasks.get(id))]}
    found = await tasks.list(status=status, assignee=assignee, parent_id=parent, limit=limit)
    return {"tasks": [task_json(t) for t in found]}


@router.get("/messages/search", summary="Full-text search of the recorded messages, best match first")
async def search_messages(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=500)],
    limit: Limit = 50,
    conversation: Annotated[
        str | None, Query(max_length=500, description="Only the messages of this conversation.")
    ] = None,
) -> dict[str, Any]:
    """The shape of ``keepup messages search --json``: hits with their rank, a snippet with each
    match in ``[`` ``]``, and the message (the same matches on every store: FTS5 on SQLite, a
    tsvector on PostgreSQL, FULLTEXT on MySQL, a scan elsewhere; see docs/recorder.md). A query is words only, at
    most 32 of them (422 otherwise)."""
    hits = await _services(request).messages.search(q, limit=limit, conversation=conversation)
    return {
        "query": q,
        "hits": [{"rank": h.rank, "snippet": h.snippet, "message": h.message.to_json()} for h in hits],
    }


@router.get(
    "/events",
    summary="Server-sent events: new checkpoints, runs and restores",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An endless event stream"}},
)
async def events(request: Request) -> StreamingResponse:
    broadcaster: Broadcaster = request.app.state.broadcaster
    return StreamingResponse(
        sse_stream(broadcaster),
        media_type="text/event-stream",
        headers={"X-Accel-Buffering": "no"},
    )
