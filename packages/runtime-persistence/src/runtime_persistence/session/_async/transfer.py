"""The sessions, tasks and events an export carries when asked, as sections of the checkpoint
export (:class:`runtime_persistence.checkpoint.export.AsyncExportSection`), written once as
async code; ``_sync/transfer.py`` is generated from it. The public entry points are in
:mod:`runtime_persistence.session.transfer`.

Frames (each a map with its kind ``k``, after the thread sections, in this order):

* ``session``: one session record (``session``, as :class:`runtime_core.Session`) with its
  external keys (``keys``), then its message log as ``messages`` frames (``session_id``,
  ``seq``, ``items``: one stored chunk each, bound to the session just before and in increasing
  ``seq``); then ``run`` frames (``run``) for the runs the sessions or the threads name;
* ``task``: one task (``task``), parents before children (a task's parent must come earlier in
  the file), each followed by its log lines (``task_log``, bound to a task the file carries);
* ``event``: one event (``event``).

Every frame is untrusted: it is converted to its record type with the record's own checks
(CorruptionError), bound to its place as above, and refused (ConflictError) when the target
store already holds that id or key, or when it links a thread the target holds but the file
does not carry (which would attach the file's records to the target's own thread). A link to a
thread or run that neither holds stays as a plain id, as after a purge. Nothing is written
while staging; the import writes the records only after the whole file was verified, through
the repositories' own writes (create-only), so the indexes they keep are written with them.

Memory: the ids of the records read so far (to check duplicates and bindings), one frame, and
on export the task subtree being ordered."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from pathlib import Path
from typing import IO, Any

from runtime_core import (
    AsyncDriver,
    ConflictError,
    CorruptionError,
    Event,
    Run,
    Serializer,
    Session,
    Task,
    TaskLog,
    ValidationError,
    validate_key,
)

from runtime_persistence.checkpoint._async.checkpoints import AsyncCheckpoints
from runtime_persistence.checkpoint._async.export import AsyncExportSection, export_threads, import_threads
from runtime_persistence.checkpoint._export_format import (
    ExportReport,
    Progress,
    SnapshotSource,
    to_plain,
    typed,
)
from runtime_persistence.checkpoint._records import THREAD_NS
from runtime_persistence.session._async.events import AsyncEvents
from runtime_persistence.session._async.messages import AsyncMessageLog
from runtime_persistence.session._async.runs import AsyncRunRecords
from runtime_persistence.session._async.sessions import AsyncSessions
from runtime_persistence.session._async.tasks import AsyncTasks
from runtime_persistence.session._message_records import (
    CHUNK_FORMAT,
    MESSAGE_NS,
    MESSAGE_PAGE,
    SESSION_KEY_NS,
    MessageChunk,
    SessionKey,
    decode_chunk,
    decode_session_key,
)
from runtime_persistence.session._records import (
    EVENT_NS,
    MARK,
    RUN_NS,
    SESSION_NS,
    SESSION_RUN_NS,
    SESSION_STATUS_NS,
    SESSION_THREAD_NS,
    TASK_NS,
)

__all__ = [
    "SECTION_NAMES",
    "AsyncEventsSection",
    "AsyncSessionsSection",
    "AsyncTasksSection",
    "export_all",
    "import_all",
    "sections_of",
]

SECTION_NAMES = ("sessions", "tasks", "events")
_PAGE = 512


def _plain(value: Any) -> Any:
    return to_plain(value)  # dataclasses convert like structs


def _record(frame: dict[str, Any], field: str, type_: type[Any]) -> Any:
    """The record in ``frame[field]`` as ``type_``, with the record's own checks (CorruptionError)."""
    try:
        return typed(frame.get(field), type_)
    except ValidationError as exc:
        raise CorruptionError(f"a {frame['k']} frame does not validate: {exc}") from exc


class _Links:
    """Refuses links to a thread the target store holds but the file does not carry."""

    def __init__(self, driver: AsyncDriver) -> None:
        self._driver = driver
        self._checked: set[str] = set()

    async def check(self, what: str, thread_ids: tuple[str | None, ...], carried: frozenset[str]) -> None:
        for tid in thread_ids:
            if tid is None or tid in carried or tid in self._checked:
                continue
            if await self._driver.get(THREAD_NS, tid) is not None:
                raise ConflictError(
                    f"{what} links thread {tid}, which the target store holds and the export does not "
                    "carry; nothing was imported"
                )
            self._checked.add(tid)


async def _absent(driver: AsyncDriver, ns: str, key: str, what: str) -> None:
    if await driver.get(ns, key) is not None:
        raise ConflictError(f"{what} already exists in the target store; nothing was imported")


class AsyncSessionsSection:
    """Sessions with their external keys and message logs, and the runs they or the exported
    threads name."""

    name = "sessions"
    kinds = frozenset({"session", "messages", "run"})

    def __init__(self, driver: AsyncDriver, serializer: Serializer) -> None:
        self._driver = driver
        self._ser = serializer
        self._sessions = AsyncSessions(driver, serializer=serializer)
        self._runs = AsyncRunRecords(driver, serializer=serializer)
        self._log = AsyncMessageLog(driver, serializer=serializer)
        self._links = _Links(driver)
        self._seen: set[str] = set()
        self._runs_seen: set[str] = set()
        self._keys_seen: set[str] = set()
        self._open: tuple[str, int] | None = None  # (session id, last seq) of the open session

    async def frames(self, thread_ids: frozenset[str] | None) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        keys: dict[str, list[str]] = {}
        async for entry in self._driver.scan(SESSION_KEY_NS):
            link = decode_session_key(self._ser, entry.key, entry.value)
            keys.setdefault(link.session_id, []).append(link.key)
        run_ids: list[str] = []
        async for session in self._selected(thread_ids):
            yield "session", {"session": _plain(session), "keys": keys.get(session.id, [])}
            after: str | None = None
            while True:
                page = [
                    e
                    async for e in self._driver.scan(
                        MESSAGE_NS, prefix=f"{session.id}/", after=after, limit=MESSAGE_PAGE
                    )
                ]
                for entry in page:
                    chunk = decode_chunk(self._ser, session.id, entry.key, entry.value)
                    yield "messages", {"session_id": session.id, "seq": chunk.seq, "items": chunk.items}
                if len(page) < MESSAGE_PAGE:
                    break
                after = page[-1].key
            run_ids.extend(session.run_ids)
        if thread_ids is None:
            async for run in self._runs._candidates(RUN_NS, "", _PAGE, reverse=False):
                yield "run", {"run": _plain(run)}
            return
        for tid in sorted(thread_ids):
            run_ids.extend(r.id for r in reversed(await self._runs.list(thread_id=tid, limit=10_000)))
        done: set[str] = set()
        for run_id in run_ids:
            if run_id in done:
                continue
            done.add(run_id)
            found = await self._driver.get(RUN_NS, run_id)
            if found is not None:  # a linked run deleted since stays a plain id
                yield "run", {"run": _plain(self._runs._decode(run_id, found.value))}

    async def _selected(self, thread_ids: frozenset[str] | None) -> AsyncIterator[Session]:
        if thread_ids is None:
            async for session in self._sessions._candidates(SESSION_NS, "", _PAGE, reverse=False):
                yield session
            return
        done: set[str] = set()
        for tid in sorted(thread_ids):
            for session in await self._sessions.of_thread(tid):
                if session.id not in done:
                    done.add(session.id)
                    yield session

    async def stage(self, frame: dict[str, Any], threads: frozenset[str]) -> None:
        kind = frame["k"]
        if kind == "session":
            session, keys = self._session(frame)
            if session.id in self._seen:
                raise CorruptionError(f"session {session.id} appears twice in the export")
            self._seen.add(session.id)
            await _absent(self._driver, SESSION_NS, session.id, f"session {session.id}")
            for key in keys:
                if key in self._keys_seen:
                    raise CorruptionError(f"two sessions of the export have the key {key!r:.80}")
                self._keys_seen.add(key)
                await _absent(self._driver, SESSION_KEY_NS, key, f"a session with the key {key!r:.80}")
            await self._links.check(f"session {session.id}", session.thread_ids, threads)
            self._open = (session.id, -1)
        elif kind == "messages":
            session_id, seq, items = self._messages(frame)
            try:
                self._ser.dumps(MessageChunk(CHUNK_FORMAT, session_id, seq, items))
            except ValidationError as exc:
                raise CorruptionError(f"a messages frame holds what a message log refuses: {exc}") from exc
            self._open = (session_id, seq)
        else:
            run: Run = _record(frame, "run", Run)
            if run.id in self._runs_seen:
                raise CorruptionError(f"run {run.id} appears twice in the export")
            self._runs_seen.add(run.id)
            await _absent(self._driver, RUN_NS, run.id, f"run {run.id}")
            await self._links.check(f"run {run.id}", (run.thread_id,), threads)

    def _session(self, frame: dict[str, Any]) -> tuple[Session, list[str]]:
        session: Session = _record(frame, "session", Session)
        keys = frame.get("keys", [])
        if not isinstance(keys, list):
            raise CorruptionError("a session frame's keys are not a list")
        try:
            return session, [validate_key(key) for key in keys]
        except ValidationError as exc:
            raise CorruptionError(f"a session frame names a bad key: {exc}") from exc

    def _messages(self, frame: dict[str, Any]) -> tuple[str, int, list[Any]]:
        session_id, seq, items = frame.get("session_id"), frame.get("seq"), frame.get("items")
        if (
            self._open is None
            or session_id != self._open[0]
            or isinstance(seq, bool)
            or not isinstance(seq, int)
            or seq <= self._open[1]
        ):
            raise CorruptionError("a messages frame does not follow its session's frame in order")
        if not isinstance(items, list) or not items:
            raise CorruptionError("a messages frame holds no items")
        return session_id, seq, items

    async def commit(self, frame: dict[str, Any]) -> None:
        kind = frame["k"]
        if kind == "session":
            session, keys = self._session(frame)
            await self._put_session(session, keys)
        elif kind == "messages":
            await self._log.append(frame["session_id"], frame["items"])
        else:
            await self._runs.create(_record(frame, "run", Run))

    async def _put_session(self, session: Session, keys: list[str]) -> None:
        """Store ``session`` as it is (ids, times, status, links), indexes first and the record
        last, as :class:`AsyncSessions` writes one; its keys before it, create-only."""
        for key in keys:
            link = SessionKey(key, session.id)
            await self._driver.put(
                SESSION_KEY_NS, key, self._ser.dumps(link, at=(SESSION_KEY_NS, key)), if_absent=True
            )
        await self._driver.put(SESSION_STATUS_NS, self._sessions._index_entry(session), MARK)
        for tid in session.thread_ids:
            await self._driver.put(SESSION_THREAD_NS, f"{tid}/{session.id}", MARK)
        for run_id in session.run_ids:
            await self._driver.put(SESSION_RUN_NS, f"{run_id}/{session.id}", MARK)
        data = self._ser.dumps(session, at=(SESSION_NS, session.id))
        await self._driver.put(SESSION_NS, session.id, data, if_absent=True)


class AsyncTasksSection:
    """Tasks (the hierarchy: with thread ids named, the tasks linked to those threads and every
    ancestor of theirs) with their logs."""

    name = "tasks"
    kinds = frozenset({"task", "task_log"})

    def __init__(self, driver: AsyncDriver, serializer: Serializer) -> None:
        self._driver = driver
        self._tasks = AsyncTasks(driver, serializer=serializer)
        self._links = _Links(driver)
        self._seen: set[str] = set()

    async def frames(self, thread_ids: frozenset[str] | None) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        every = await self._tasks.load_all()
        by_id = {t.id: t for t in every}
        if thread_ids is None:
            chosen = set(by_id)
        else:
            chosen = set()
            for task in every:
                if task.thread_id in thread_ids:
                    node: Task | None = task
                    while node is not None and node.id not in chosen:
                        chosen.add(node.id)
                        node = by_id.get(node.parent_id) if node.parent_id is not None else None
        placed: set[str] = set()
        for task in every:  # parents first, whatever order moves left them in
            chain: list[Task] = []
            node = task
            while node is not None and node.id in chosen and node.id not in placed and node not in chain:
                chain.append(node)
                node = by_id.get(node.parent_id) if node.parent_id is not None else None
            for item in reversed(chain):
                placed.add(item.id)
                yield "task", {"task": _plain(item)}
                for line in await self._tasks.logs(item.id):
                    yield "task_log", {"log": _plain(line)}

    async def stage(self, frame: dict[str, Any], threads: frozenset[str]) -> None:
        if frame["k"] == "task":
            task: Task = _record(frame, "task", Task)
            if task.id in self._seen:
                raise CorruptionError(f"task {task.id} appears twice in the export")
            if task.parent_id is not None and task.parent_id not in self._seen:
                raise CorruptionError(f"task {task.id} names a parent the export does not carry before it")
            self._seen.add(task.id)
            await _absent(self._driver, TASK_NS, task.id, f"task {task.id}")
            await self._links.check(f"task {task.id}", (task.thread_id,), threads)
        else:
            line: TaskLog = _record(frame, "log", TaskLog)
            if line.task_id not in self._seen:
                raise CorruptionError("a task_log frame names a task the export does not carry before it")

    async def commit(self, frame: dict[str, Any]) -> None:
        if frame["k"] == "task":
            await self._tasks.save_all([_record(frame, "task", Task)])
        else:
            line: TaskLog = _record(frame, "log", TaskLog)
            await self._tasks.log(line.task_id, line.message, level=line.level, at=line.at)


class AsyncEventsSection:
    """Events of the event log (with thread ids named: those linked to the threads)."""

    name = "events"
    kinds = frozenset({"event"})

    def __init__(self, driver: AsyncDriver, serializer: Serializer) -> None:
        self._driver = driver
        self._events = AsyncEvents(driver, serializer=serializer)
        self._links = _Links(driver)
        self._seen: set[str] = set()

    async def frames(self, thread_ids: frozenset[str] | None) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        after: str | None = None
        while True:
            page = [e async for e in self._driver.scan(EVENT_NS, after=after, limit=_PAGE)]
            for entry in page:
                event = self._events._decode(entry.key, entry.value)
                if thread_ids is None or event.thread_id in thread_ids:
                    yield "event", {"event": _plain(event)}
            if len(page) < _PAGE:
                return
            after = page[-1].key

    async def stage(self, frame: dict[str, Any], threads: frozenset[str]) -> None:
        event: Event = _record(frame, "event", Event)
        if event.id in self._seen:
            raise CorruptionError(f"event {event.id} appears twice in the export")
        self._seen.add(event.id)
        await _absent(self._driver, EVENT_NS, event.id, f"event {event.id}")
        await self._links.check(f"event {event.id}", (event.thread_id,), threads)

    async def commit(self, frame: dict[str, Any]) -> None:
        await self._events.append(_record(frame, "event", Event))


def sections_of(checkpoints: AsyncCheckpoints, include: Collection[str]) -> list[AsyncExportSection]:
    """The sections named in ``include`` (some of :data:`SECTION_NAMES`), over ``checkpoints``'
    store and serializer. ValidationError for another name."""
    if isinstance(include, str):
        include = [include]
    unknown = sorted(set(include) - set(SECTION_NAMES))
    if unknown:
        raise ValidationError(
            f"an export carries {', '.join(SECTION_NAMES)} besides threads; got {', '.join(map(repr, unknown))}"
        )
    made: dict[str, AsyncExportSection] = {
        "sessions": AsyncSessionsSection(checkpoints.driver, checkpoints._ser),
        "tasks": AsyncTasksSection(checkpoints.driver, checkpoints._ser),
        "events": AsyncEventsSection(checkpoints.driver, checkpoints._ser),
    }
    return [made[name] for name in SECTION_NAMES if name in include]


async def export_all(
    checkpoints: AsyncCheckpoints,
    dest: str | Path | IO[bytes],
    *,
    include: Collection[str] = SECTION_NAMES,
    thread_ids: Sequence[str] | None = None,
    progress: Progress | None = None,
    snapshots: SnapshotSource | None = None,
    artifacts: bool = True,
) -> ExportReport:
    """:func:`~runtime_persistence.checkpoint.export.export_threads`, plus the records named in
    ``include`` (``"sessions"``, ``"tasks"``, ``"events"``): with ``thread_ids``, those linked
    to the threads (sessions that worked on them with their message logs, the runs they or the
    threads name, the tasks linked to them with every ancestor task, the events that name
    them); without, every one in the store. The report's ``records`` counts them by frame kind."""
    return await export_threads(
        checkpoints,
        dest,
        thread_ids=thread_ids,
        progress=progress,
        snapshots=snapshots,
        artifacts=artifacts,
        sections=sections_of(checkpoints, include),
    )


async def import_all(
    checkpoints: AsyncCheckpoints, src: str | Path | IO[bytes], *, progress: Progress | None = None
) -> ExportReport:
    """:func:`~runtime_persistence.checkpoint.export.import_threads`, with whatever sessions,
    tasks and events the file carries. The whole file is verified first (every record's own
    checks, the bindings described in this module, and that the target holds none of its ids or
    keys); a damaged, truncated or forged file raises CorruptionError and a clash ConflictError
    before any record is written."""
    return await import_threads(
        checkpoints, src, progress=progress, sections=sections_of(checkpoints, SECTION_NAMES)
    )
