# Generated from packages/runtime-persistence/src/runtime_persistence/session/_async/tasks.py by scripts/gen_sync.py: edit that file and rerun the script.
"""The task repository (:class:`Tasks`): a hierarchy of work items with checked status
transitions, progress, append-only logs, assignees and links to threads and runs, stored through
the driver. Written once as async code in ``session/_async/``; the sync twin in
``session/_sync/`` is generated from it.

Layout::

    task          {task_id}                 the task record; changed by compare-and-set
    task.child    {parent_id}/{task_id}     index: children of a task; ``root/{task_id}`` for a
                                            task without a parent. Written before the record
                                            names the parent and removed after it stops naming
                                            it (a move); readers check the record, so an entry
                                            whose record is missing or names another parent is
                                            skipped, never believed
    task.log      {task_id}/{log_id}        log lines, create-only; log ids are UUIDv7, so a
                                            prefix scan returns them in time order
    task.external {source}/{external_id}    index: the task an import created for a task of
                                            another tool (the value is the task id), so a second
                                            import of the same file changes nothing
    task.index    roots                     present once every root task has its ``root/`` entry

Stores written before the ``root/`` entries existed (only a task with a parent had a child
index entry then) are migrated forward by :meth:`Tasks.index_roots`: one scan of the task
records that adds the missing entries, then the ``task.index/roots`` marker. Listing the roots
runs it once per store (any process; running it twice, or in two processes at once, only writes
entries that are already there), so after that, listing root tasks costs the roots, not the store.

Task ids are UUIDv7 too, so children come back in creation order without sorting. A tree is
read through the child index one level at a time, so listing a subtree costs the subtree, not
the store.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from runtime_core import (
    ConflictError,
    ImportedTask,
    NotFoundError,
    StorageError,
    Task,
    TaskImportItem,
    TaskLog,
    TaskStatus,
    TaskTreeNode,
    ValidationError,
    check_transition,
    new_id,
    validate_id,
)

from runtime_persistence.session._records import (
    MARK,
    MAX_TRIES,
    TASK_CHILD_NS,
    TASK_EXTERNAL_NS,
    TASK_INDEX_NS,
    TASK_LOG_NS,
    TASK_NS,
    TASK_ROOT,
    TASK_ROOTS_INDEXED,
    check_limit,
)
from runtime_persistence.session._sync._repository import Repository, Unchanged

__all__ = ["Tasks"]

_PAGE = 511
_FINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.CANCELLED})
_MAX_DEPTH = 10_000
_KEEP: Any = object()


def _child_key(parent_id: str | None, task_id: str) -> str:
    return f"{parent_id or TASK_ROOT}/{task_id}"


class Tasks(Repository[Task]):
    """Tasks over any driver (the sync class implements :class:`runtime_core.TaskRepository`;
    the async one has the same methods, guarantees and errors).

    A status change is checked by :func:`runtime_core.check_transition` against the status it was
    read with and written by compare-and-set, so of two concurrent transitions of one task exactly
    one wins and the other raises ConflictError: a process never moves a task from a status it did
    not see. Other changes (title, progress, assignee, parent) retry on a lost race. Every write is
    as durable as the driver (durable by default) when the call returns. ``clock`` stamps
    ``created_at``, ``updated_at`` and log times."""

    _record = Task
    _ns = TASK_NS
    _what = "task"
    _roots_indexed = False  # this object saw the ``task.index/roots`` marker

    def create(
        self,
        title: str,
        *,
        parent_id: str | None = None,
        assignee: str | None = None,
        metadata: dict[str, Any] | None = None,
        description: str = "",
        thread_id: str | None = None,
        run_id: str | None = None,
    ) -> Task:
        """Store a new pending task, under ``parent_id`` if given. Raises ValidationError (nothing
        written) on bad input, NotFoundError if the parent does not exist."""
        now = self._clock.now()
        task = Task(
            id=new_id(),
            title=title,
            created_at=now,
            updated_at=now,
            parent_id=parent_id,
            assignee=assignee,
            metadata=metadata if metadata is not None else {},
            description=description,
            thread_id=thread_id,
            run_id=run_id,
        )
        data = self._ser.dumps(task, at=(TASK_NS, task.id))
        if parent_id is not None:
            self._read(parent_id, "parent task id")
        self._ensure_roots_indexed()  # an old store is migrated before it grows
        self._driver.put(TASK_CHILD_NS, _child_key(parent_id, task.id), MARK)
        self._driver.put(TASK_NS, task.id, data, if_absent=True)
        return task

    def get(self, task_id: str) -> Task:
        """The task. Raises NotFoundError, ValidationError for a malformed id."""
        return (self._read(task_id))[0]

    def transition(self, task_id: str, status: TaskStatus) -> Task:
        """Move the task to ``status`` (completing it also sets its progress to 1). Raises
        ValidationError if the move is not allowed from the status read, ConflictError if another
        process changed the task's status in the meantime (re-read and decide again),
        NotFoundError."""
        for _ in range(MAX_TRIES):
            current, version = self._read(task_id)
            check_transition(current.status, status)
            new_status = TaskStatus(status)
            new = replace(
                current,
                status=new_status,
                updated_at=self._now(current),
                progress=1.0 if new_status is TaskStatus.COMPLETED else current.progress,
            )
            try:
                self._driver.put(
                    TASK_NS, task_id, self._ser.dumps(new, at=(TASK_NS, task_id)), if_version=version
                )
            except ConflictError:
                latest, _ = self._read(task_id)
                if latest.status is current.status:
                    continue  # only other fields moved: the transition is still the one we checked
                raise ConflictError(
                    f"task {task_id} became {latest.status.value} while moving it from "
                    f"{current.status.value} to {new_status.value}; re-read and decide again"
                ) from None
            return new
        raise ConflictError(f"task {task_id} kept changing; try again")

    def set_progress(self, task_id: str, progress: float) -> Task:
        """Set the task's progress (0 to 1). Raises ValidationError on a bad value, ConflictError
        if the task is completed or cancelled, NotFoundError."""

        def change(current: Task) -> Task:
            if current.status in _FINAL:
                raise ConflictError(f"task {task_id} is {current.status.value}; its progress is final")
            return replace(current, progress=progress, updated_at=self._now(current))

        return (self._change(task_id, change))[0]

    def update(
        self,
        task_id: str,
        *,
        title: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Task:
        """Change the title, description and/or metadata (those given; metadata is replaced
        whole). Raises ValidationError (nothing written) on bad values, NotFoundError."""

        def change(current: Task) -> Task:
            new = replace(
                current,
                title=current.title if title is None else title,
                description=current.description if description is None else description,
                metadata=current.metadata if metadata is None else metadata,
            )
            if new == current:
                raise Unchanged
            return replace(new, updated_at=self._now(current))

        return (self._change(task_id, change))[0]

    def assign(self, task_id: str, assignee: str | None) -> Task:
        """Give the task to ``assignee`` (None: nobody). Raises ValidationError, NotFoundError."""

        def change(current: Task) -> Task:
            if current.assignee == assignee:
                raise Unchanged
            return replace(current, assignee=assignee, updated_at=self._now(current))

        return (self._change(task_id, change))[0]

    def unassign(self, task_id: str) -> Task:
        """Take the task away from its assignee. Raises NotFoundError."""
        return self.assign(task_id, None)

    def link(self, task_id: str, *, thread_id: str | None = _KEEP, run_id: str | None = _KEEP) -> Task:
        """Link the task to a thread and/or a run (None removes a link; an argument not given
        keeps the link as it is). Raises ValidationError for a malformed id, NotFoundError."""

        def change(current: Task) -> Task:
            new = replace(
                current,
                thread_id=current.thread_id if thread_id is _KEEP else thread_id,
                run_id=current.run_id if run_id is _KEEP else run_id,
            )
            if new == current:
                raise Unchanged
            return replace(new, updated_at=self._now(current))

        return (self._change(task_id, change))[0]

    def move(self, task_id: str, parent_id: str | None) -> Task:
        """Re-parent the task under ``parent_id`` (None: make it a root task), with its whole
        subtree. Raises ValidationError when that would make a task its own ancestor (a cycle),
        NotFoundError for a missing task or parent."""
        current = self.get(task_id)
        if parent_id is not None:
            self._check_not_below(task_id, parent_id)
        if current.parent_id == parent_id:
            return current
        self._driver.put(TASK_CHILD_NS, _child_key(parent_id, task_id), MARK)
        old_parent: list[str | None] = []

        def change(current: Task) -> Task:
            if current.parent_id == parent_id:
                raise Unchanged
            old_parent[:] = [current.parent_id]
            return replace(current, parent_id=parent_id, updated_at=self._now(current))

        moved, changed = self._change(task_id, change)
        if changed:
            self._driver.delete(TASK_CHILD_NS, _child_key(old_parent[0], task_id))
        return moved

    def _check_not_below(self, task_id: str, parent_id: str) -> None:
        """ValidationError if ``parent_id`` is ``task_id`` or lies below it; NotFoundError if the
        parent does not exist."""
        seen: set[str] = set()
        node: str | None = parent_id
        while node is not None:
            if node == task_id:
                raise ValidationError(
                    f"cannot move task {task_id} under {parent_id}: it would become its own ancestor"
                )
            if node in seen or len(seen) > _MAX_DEPTH:
                raise ValidationError(
                    f"the ancestors of task {parent_id} form a loop; move one of them first"
                )
            seen.add(node)
            node = (self._read(node, "parent task id"))[0].parent_id

    def _now(self, current: Task) -> datetime:
        return max(current.updated_at, self._clock.now())

    def children(self, task_id: str) -> builtins.list[Task]:
        """The direct children of the task, in creation order, read through the parent index
        (never a scan of every task). Raises NotFoundError if the task does not exist."""
        self._read(task_id)
        return [task for task in self._children_of(task_id)]

    def _children_of(self, parent_id: str | None) -> Iterator[Task]:
        return self._filtered(
            self._candidates(TASK_CHILD_NS, f"{parent_id or TASK_ROOT}/", _PAGE, reverse=False), parent_id
        )

    def _filtered(self, tasks: Iterator[Task], parent_id: str | None) -> Iterator[Task]:
        for task in tasks:
            if task.parent_id == parent_id:  # an entry left by a move names the old parent
                yield task

    def index_roots(self, *, dry_run: bool = False) -> int:
        """Migrate a store written before root tasks were indexed: give every task without a
        parent its ``root/`` child index entry, then record that the store has the index. Returns
        how many entries were (with ``dry_run``: would be) added. Safe while others use the store
        and in several processes at once: each entry is written create-only, a task moved
        meanwhile leaves at most an entry that readers skip (they check the record), and tasks
        created meanwhile index themselves. Runs by itself the first time roots are listed."""
        added = 0
        cursor: str | None = None
        while True:
            page = [e for e in self._driver.scan(TASK_NS, after=cursor, limit=_PAGE)]
            for entry in page:
                task = self._decode(entry.key, entry.value)
                if task.parent_id is not None:
                    continue
                key = _child_key(None, task.id)
                if self._driver.get(TASK_CHILD_NS, key) is not None:
                    continue
                added += 1
                if not dry_run:
                    with contextlib.suppress(ConflictError):  # another process indexed it first
                        self._driver.put(TASK_CHILD_NS, key, MARK, if_absent=True)
            if len(page) < _PAGE:
                break
            cursor = page[-1].key
        if not dry_run:
            self._driver.put(TASK_INDEX_NS, TASK_ROOTS_INDEXED, MARK)
            self._roots_indexed = True
        return added

    def _ensure_roots_indexed(self) -> bool:
        """Run :meth:`index_roots` once per store (the marker says it ran). False when the store
        refuses the writes (opened read-only): the roots are then found by a scan this time."""
        if self._roots_indexed:
            return True
        if self._driver.get(TASK_INDEX_NS, TASK_ROOTS_INDEXED) is not None:
            self._roots_indexed = True
            return True
        try:
            self.index_roots()
        except StorageError:
            return False
        return True

    def _roots(self, indexed: bool) -> Iterator[Task]:
        """The root tasks in creation order: through the index, or by a scan of every task."""
        if indexed:
            return self._children_of(None)
        return self._scanned_roots()

    def _scanned_roots(self) -> Iterator[Task]:
        for task in self._candidates(TASK_NS, "", _PAGE, reverse=False):
            if task.parent_id is None:
                yield task

    def roots(self, *, limit: int = 10_000) -> builtins.list[Task]:
        """The tasks without a parent, in creation order (through the index; a store written
        before roots were indexed is migrated first, once: see :meth:`index_roots`)."""
        check_limit(limit)
        out: builtins.list[Task] = []
        if limit == 0:
            return out
        for task in self._roots(self._ensure_roots_indexed()):
            out.append(task)
            if len(out) == limit:
                break
        return out

    def tree(
        self, task_id: str | None = None, *, max_depth: int | None = None
    ) -> builtins.list[TaskTreeNode]:
        """The subtree under ``task_id`` (every root task's when None), depth first, children in
        creation order; each node with its depth (the given task is depth 0; roots are depth 0).
        Reads only the subtree, through the child index. Raises NotFoundError."""
        if max_depth is not None and (
            isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0
        ):
            raise ValidationError(f"max_depth must be a non-negative integer or None, got {max_depth!r:.40}")
        out: builtins.list[TaskTreeNode] = []
        seen: set[str] = set()
        stack: builtins.list[tuple[int, Task]]
        if task_id is None:
            roots = self._roots(self._ensure_roots_indexed())
            stack = [(0, t) for t in reversed([t for t in roots])]
        else:
            stack = [(0, self.get(task_id))]
        while stack:
            depth, task = stack.pop()
            if task.id in seen:
                continue
            seen.add(task.id)
            out.append(TaskTreeNode(depth, task))
            if max_depth is not None and depth >= max_depth:
                continue
            kids = [t for t in self._children_of(task.id)]
            stack.extend((depth + 1, t) for t in reversed(kids))
        return out

    def list(
        self,
        *,
        status: TaskStatus | None = None,
        assignee: str | None = None,
        parent_id: str | None = None,
        limit: int = 50,
    ) -> builtins.list[Task]:
        """Tasks newest first, filtered by status, assignee and/or parent (with ``parent_id``
        read through the child index; otherwise a scan of the task records)."""
        check_limit(limit)
        wanted = TaskStatus(status) if status is not None else None
        out: builtins.list[Task] = []
        if limit == 0:
            return out
        if parent_id is not None:
            source = self._filtered(
                self._candidates(TASK_CHILD_NS, f"{parent_id}/", _PAGE, reverse=True), parent_id
            )
        else:
            source = self._candidates(TASK_NS, "", min(limit, _PAGE), reverse=True)
        for task in source:
            if (wanted is None or task.status is wanted) and (assignee is None or task.assignee == assignee):
                out.append(task)
                if len(out) == limit:
                    break
        return out

    def load_all(self) -> builtins.list[Task]:
        """Every task in the store, oldest first (bulk load)."""
        return [task for task in self._candidates(TASK_NS, "", _PAGE, reverse=False)]

    def save_all(self, tasks: Sequence[Task]) -> builtins.list[Task]:
        """Store tasks as given (ids, times, statuses and all; bulk save, e.g. from
        :meth:`load_all` of another store). A task whose id is stored already is left as it is;
        returns the tasks this call stored. Parents are stored before their children whatever the
        order given; a parent that is neither stored nor given raises NotFoundError before
        anything is written."""
        given = {t.id: t for t in tasks}
        for task in tasks:
            if not isinstance(task, Task):
                raise ValidationError(f"save_all takes tasks, got {type(task).__name__}")
        ordered: builtins.list[Task] = []
        placed: set[str] = set()
        for task in tasks:
            chain: builtins.list[Task] = []
            node: Task | None = task
            while node is not None and node.id not in placed:
                if node in chain:
                    raise ValidationError(f"the tasks given form a parent loop at {node.id}")
                chain.append(node)
                parent = node.parent_id
                node = given.get(parent) if parent is not None else None
                if parent is not None and node is None and self._driver.get(TASK_NS, parent) is None:
                    raise NotFoundError(
                        f"parent task {parent} of task {chain[-1].id} is neither stored nor given"
                    )
            for item in reversed(chain):
                placed.add(item.id)
                ordered.append(item)
        stored: builtins.list[Task] = []
        for task in ordered:
            data = self._ser.dumps(task, at=(TASK_NS, task.id))
            self._driver.put(TASK_CHILD_NS, _child_key(task.parent_id, task.id), MARK)
            try:
                self._driver.put(TASK_NS, task.id, data, if_absent=True)
            except ConflictError:
                continue
            stored.append(task)
        return stored

    def delete(
        self, task_id: str, *, recursive: bool = False, dry_run: bool = False
    ) -> builtins.list[TaskTreeNode]:
        """Delete the task with its logs; with ``recursive`` its whole subtree too (children
        first, so a crash leaves a smaller tree, never an orphan). Returns the tree that was
        (with ``dry_run``: would be) deleted, depth first. Raises ValidationError when the task
        has children and ``recursive`` is not set (nothing deleted), NotFoundError."""
        tree = self.tree(task_id)
        if len(tree) > 1 and not recursive:
            raise ValidationError(
                f"task {task_id} has {len(tree) - 1} task(s) below it; delete them too with recursive=True "
                "(keepup task delete --recursive), or move them first"
            )
        if dry_run:
            return tree
        for node in reversed(tree):
            task = node.task
            while True:
                logs = [e.key for e in self._driver.scan(TASK_LOG_NS, prefix=f"{task.id}/", limit=_PAGE)]
                for key in logs:
                    self._driver.delete(TASK_LOG_NS, key)
                if len(logs) < _PAGE:
                    break
            self._driver.delete(TASK_NS, task.id)
            self._driver.delete(TASK_CHILD_NS, _child_key(task.parent_id, task.id))
        return tree

    def log(self, task_id: str, message: str, *, level: str = "info", at: datetime | None = None) -> TaskLog:
        """Append a log line to the task (create-only; never rewritten), stamped now unless
        ``at`` is given (imports keep their times). Raises ValidationError on a bad message or
        level, NotFoundError if the task does not exist."""
        validate_id(task_id, "task id")
        line = TaskLog(
            task_id=task_id, at=at if at is not None else self._clock.now(), message=message, level=level
        )
        key = f"{task_id}/{new_id()}"
        data = self._ser.dumps(line, at=(TASK_LOG_NS, key))
        self._read(task_id)
        self._driver.put(TASK_LOG_NS, key, data, if_absent=True)
        return line

    def logs(self, task_id: str, *, limit: int | None = None) -> builtins.list[TaskLog]:
        """The task's log lines oldest first (time order of their UUIDv7 keys, to the
        millisecond across processes), at most ``limit`` (all when None). Raises NotFoundError."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValidationError(f"limit must be a non-negative integer or None, got {limit!r:.40}")
        self._read(task_id)
        return [
            self._ser.loads(entry.value, TaskLog, at=(TASK_LOG_NS, entry.key))
            for entry in self._driver.scan(TASK_LOG_NS, prefix=f"{task_id}/", limit=limit)
        ]

    def imported(self, source: str, external_id: str) -> Task | None:
        """The task an earlier import from ``source`` made of ``external_id``, if it still exists."""
        entry = self._driver.get(TASK_EXTERNAL_NS, f"{source}/{external_id}")
        if entry is None:
            return None
        task_id = bytes(entry.value).decode("ascii")
        found = self._driver.get(TASK_NS, task_id)
        return None if found is None else self._decode(task_id, found.value)

    def import_tasks(
        self, source: str, items: Iterable[ImportedTask], *, dry_run: bool = False
    ) -> builtins.list[TaskImportItem]:
        """Import tasks of another tool (``source`` names it, e.g. ``kilocode``): each becomes a
        task with a new id, its times, status, progress, assignee, metadata (plus
        ``{source}_id``) and logs kept, under the task its parent became. A task imported before
        (by any process) is skipped, so importing the same data twice changes nothing; a task
        whose parent is missing or was skipped as invalid is skipped, with the reason. Parents
        are imported before their children whatever the order given."""
        if not source or "/" in source:
            raise ValidationError(f"an import source is a non-empty name without '/', got {source!r:.40}")
        pending = {item.external_id: item for item in items}
        report: builtins.list[TaskImportItem] = []
        done: dict[str, str | None] = {}  # external id -> task id (None: skipped)

        def place(item: ImportedTask, path: builtins.list[str]) -> str | None:
            if item.external_id in done:
                return done[item.external_id]
            if item.external_id in path:
                done[item.external_id] = None
                report.append(
                    TaskImportItem(item.external_id, "skipped", "its parents form a loop", None, item.title)
                )
                return None
            parent_id: str | None = None
            if item.parent_external_id is not None:
                parent_item = pending.get(item.parent_external_id)
                if parent_item is not None:
                    parent_id = place(parent_item, [*path, item.external_id])
                else:
                    earlier = self.imported(source, item.parent_external_id)
                    parent_id = None if earlier is None else earlier.id
                if parent_id is None:
                    done[item.external_id] = None
                    report.append(
                        TaskImportItem(
                            item.external_id,
                            "skipped",
                            f"its parent {item.parent_external_id!r} is missing or was skipped",
                            None,
                            item.title,
                        )
                    )
                    return None
            earlier = self.imported(source, item.external_id)
            if earlier is not None:
                done[item.external_id] = earlier.id
                report.append(
                    TaskImportItem(item.external_id, "skipped", "already imported", earlier.id, item.title)
                )
                return earlier.id
            try:
                task = Task(
                    id=new_id(),
                    title=item.title,
                    created_at=item.created_at,
                    updated_at=max(item.updated_at, item.created_at),
                    status=item.status,
                    parent_id=parent_id,
                    progress=item.progress,
                    assignee=item.assignee,
                    metadata={**item.metadata, f"{source}_id": item.external_id},
                    description=item.description,
                )
                lines = [
                    TaskLog(task_id=task.id, at=at, message=msg, level=level) for at, level, msg in item.logs
                ]
                data = self._ser.dumps(task, at=(TASK_NS, task.id))
            except ValidationError as exc:
                done[item.external_id] = None
                report.append(
                    TaskImportItem(item.external_id, "skipped", f"invalid: {exc}", None, item.title)
                )
                return None
            if dry_run:
                done[item.external_id] = task.id
                report.append(TaskImportItem(item.external_id, "imported", "", task.id, item.title))
                return task.id
            try:
                self._driver.put(
                    TASK_EXTERNAL_NS, f"{source}/{item.external_id}", task.id.encode("ascii"), if_absent=True
                )
            except ConflictError:  # another import claimed it first, or a crashed one left its claim
                claimed = self._driver.get(TASK_EXTERNAL_NS, f"{source}/{item.external_id}")
                assert claimed is not None
                claimed_id = bytes(claimed.value).decode("ascii")
                if self._driver.get(TASK_NS, claimed_id) is not None:
                    done[item.external_id] = claimed_id
                    report.append(
                        TaskImportItem(
                            item.external_id, "skipped", "already imported", claimed_id, item.title
                        )
                    )
                    return claimed_id
                task = replace(task, id=claimed_id)  # finish what a crashed import started
                lines = [replace(line, task_id=claimed_id) for line in lines]
                data = self._ser.dumps(task, at=(TASK_NS, task.id))
            self._driver.put(TASK_CHILD_NS, _child_key(parent_id, task.id), MARK)
            for line in lines:
                log_key = f"{task.id}/{new_id()}"
                self._driver.put(
                    TASK_LOG_NS, log_key, self._ser.dumps(line, at=(TASK_LOG_NS, log_key)), if_absent=True
                )
            with contextlib.suppress(ConflictError):  # a concurrent import of a crashed claim stored it
                self._driver.put(TASK_NS, task.id, data, if_absent=True)
            done[item.external_id] = task.id
            report.append(TaskImportItem(item.external_id, "imported", "", task.id, item.title))
            return task.id

        for item in pending.values():
            place(item, [])
        return report
