"""Import Kilocode's task store (``tasks.json``, the ``StorageData`` format of its
TaskRepository) into :class:`~runtime_persistence.Tasks`.

``StorageData`` is ``{"version": str, "tasks": [StoredTask...], "metadata": {"lastUpdated",
"totalTasks"}}``; a ``StoredTask`` has ``id``, ``title``, ``description``, ``status``,
``parentId``, ``assignedTo``, ``progress``, ``metadata``, ``createdAt``, ``updatedAt`` (epoch
milliseconds), ``children`` (ids) and ``logs``. A bare list of tasks (the legacy layout before
``StorageData``) is read too.

* When ``tasks.json`` is missing, unreadable, not JSON or not task data, ``tasks.backup.json``
  beside it is read instead and the report says so; when both are damaged nothing is imported
  (CorruptionError naming both problems).
* Each task is checked on its own: one without an id or a title, with an unknown status, or a
  duplicate id, is skipped with the reason, and so are the tasks below it; the rest import.
* Every imported task remembers its Kilocode id (``metadata["kilocode_id"]``, and an index), so
  importing the same file again changes nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runtime_core import (
    CorruptionError,
    ImportedTask,
    NotFoundError,
    TaskImportItem,
    TaskImportReport,
    TaskStatus,
    ValidationError,
    utc_now,
)

from runtime_persistence.session._sync.tasks import Tasks

__all__ = ["BACKUP_FILE", "MAIN_FILE", "MAX_FILE_BYTES", "SOURCE", "import_kilocode", "parse_storage_data"]

SOURCE = "kilocode"
MAIN_FILE = "tasks.json"
BACKUP_FILE = "tasks.backup.json"
MAX_FILE_BYTES = 64 << 20

_STATUSES = {
    "pending": TaskStatus.PENDING,
    "todo": TaskStatus.PENDING,
    "queued": TaskStatus.PENDING,
    "in_progress": TaskStatus.RUNNING,
    "in-progress": TaskStatus.RUNNING,
    "inprogress": TaskStatus.RUNNING,
    "running": TaskStatus.RUNNING,
    "active": TaskStatus.RUNNING,
    "blocked": TaskStatus.BLOCKED,
    "paused": TaskStatus.BLOCKED,
    "waiting": TaskStatus.BLOCKED,
    "completed": TaskStatus.COMPLETED,
    "complete": TaskStatus.COMPLETED,
    "done": TaskStatus.COMPLETED,
    "failed": TaskStatus.FAILED,
    "error": TaskStatus.FAILED,
    "cancelled": TaskStatus.CANCELLED,
    "canceled": TaskStatus.CANCELLED,
}
_LEVELS = {
    "debug": "debug",
    "trace": "debug",
    "info": "info",
    "log": "info",
    "warn": "warning",
    "warning": "warning",
    "error": "error",
    "fatal": "error",
}


def _moment(value: object, fallback: datetime) -> datetime:
    """Epoch milliseconds (Kilocode's ``Date.now()``) or an ISO 8601 string; ``fallback`` when
    absent or unreadable."""
    if isinstance(value, bool):
        return fallback
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            return fallback
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return fallback
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return fallback


def _progress(value: object) -> float:
    """A number (a fraction, or a percentage when above 1) or an object with ``percentage`` or
    ``completed``/``current`` and ``total``; 0 when unreadable."""
    ratio: float = 0.0
    if isinstance(value, bool):
        return 0.0
    if isinstance(value, (int, float)):
        ratio = value / 100 if value > 1 else float(value)
    elif isinstance(value, dict):
        pct = value.get("percentage", value.get("percent"))
        done = value.get("completed", value.get("current", value.get("completedSteps")))
        total = value.get("total", value.get("totalSteps"))
        if isinstance(pct, (int, float)) and not isinstance(pct, bool):
            ratio = pct / 100
        elif isinstance(done, (int, float)) and isinstance(total, (int, float)) and total > 0:
            ratio = done / total
    if math.isnan(ratio):
        return 0.0
    return min(1.0, max(0.0, float(ratio)))


def _logs(value: object, fallback: datetime) -> tuple[tuple[datetime, str, str], ...]:
    if not isinstance(value, list):
        return ()
    out: list[tuple[datetime, str, str]] = []
    for entry in value:
        if isinstance(entry, str):
            out.append((fallback, "info", entry))
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("message"), str):
            continue
        level = _LEVELS.get(str(entry.get("level", "info")).lower(), "info")
        out.append((_moment(entry.get("timestamp", entry.get("time")), fallback), level, entry["message"]))
    return tuple(out)


def _tasks_of(data: object) -> tuple[list[Any], list[str]]:
    """The task list of a StorageData document (or a legacy bare list), and notes.
    CorruptionError when it is neither."""
    if isinstance(data, list):
        return data, ["the file is a bare list of tasks (the legacy layout before StorageData)"]
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), list):
        raise CorruptionError("it is not Kilocode task data (no 'tasks' list)")
    notes = []
    version = data.get("version")
    if not isinstance(version, str):
        notes.append("the file has no format version; read as StorageData")
    meta = data.get("metadata")
    if (
        isinstance(meta, dict)
        and isinstance(meta.get("totalTasks"), int)
        and meta["totalTasks"] != len(data["tasks"])
    ):
        notes.append(
            f"the file says it holds {meta['totalTasks']} tasks but lists {len(data['tasks'])} (a partial write?)"
        )
    return data["tasks"], notes


def parse_storage_data(
    raw: bytes, *, now: datetime | None = None
) -> tuple[list[ImportedTask], list[TaskImportItem], list[str]]:
    """The tasks of a ``tasks.json`` document: those that can be imported, those refused (as
    skipped items with the reason) and notes. CorruptionError when the document is not JSON or
    not task data. Does no I/O."""
    now = now or utc_now()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptionError(f"it is not valid JSON ({exc})") from None
    entries, notes = _tasks_of(data)
    refused: list[TaskImportItem] = []
    good: list[ImportedTask] = []
    parent_of: dict[str, str] = {}
    for entry in entries:
        if (
            isinstance(entry, dict)
            and isinstance(entry.get("id"), str)
            and isinstance(entry.get("children"), list)
        ):
            for child in entry["children"]:
                if isinstance(child, str):
                    parent_of.setdefault(child, entry["id"])
    seen: set[str] = set()
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict):
            refused.append(TaskImportItem(f"#{n}", "skipped", "not a task object"))
            continue
        ext = entry.get("id")
        title = entry.get("title")
        shown = title if isinstance(title, str) else ""
        if not isinstance(ext, str) or not ext.strip():
            refused.append(TaskImportItem(f"#{n}", "skipped", "it has no id", None, shown[:200]))
            continue
        if ext in seen:
            refused.append(
                TaskImportItem(
                    ext, "skipped", "a task with this id came earlier in the file", None, shown[:200]
                )
            )
            continue
        seen.add(ext)
        if not isinstance(title, str) or not title.strip():
            refused.append(TaskImportItem(ext, "skipped", "it has no title"))
            continue
        raw_status = entry.get("status", "pending")
        status = _STATUSES.get(str(raw_status).strip().lower()) if isinstance(raw_status, str) else None
        if status is None:
            refused.append(
                TaskImportItem(ext, "skipped", f"unknown status {raw_status!r:.40}", None, title[:200])
            )
            continue
        parent = entry.get("parentId")
        parent_id = parent if isinstance(parent, str) and parent else parent_of.get(ext)
        created = _moment(entry.get("createdAt"), now)
        assignee = entry.get("assignedTo")
        metadata = entry.get("metadata")
        description = entry.get("description")
        good.append(
            ImportedTask(
                external_id=ext,
                title=title.strip()[:200],
                created_at=created,
                updated_at=_moment(entry.get("updatedAt"), created),
                status=status,
                description=description if isinstance(description, str) else "",
                parent_external_id=parent_id,
                assignee=assignee if isinstance(assignee, str) and assignee else None,
                progress=1.0 if status is TaskStatus.COMPLETED else _progress(entry.get("progress")),
                metadata=metadata if isinstance(metadata, dict) else {},
                logs=_logs(entry.get("logs"), created),
            )
        )
    return good, refused, notes


def _read(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValidationError(f"{path} is {size} bytes; the import reads at most {MAX_FILE_BYTES}")
    return path.read_bytes()


def _load(path: Path) -> tuple[Path, list[ImportedTask], list[TaskImportItem], list[str]]:
    """Parse ``path``, falling back to the backup beside it."""
    backup = path.with_name(BACKUP_FILE)
    problem: str
    try:
        good, refused, notes = parse_storage_data(_read(path))
        return path, good, refused, notes
    except FileNotFoundError:
        problem = "it does not exist"
    except (OSError, CorruptionError, ValidationError) as exc:
        problem = getattr(exc, "strerror", None) or str(exc)
    if not backup.is_file():
        if problem == "it does not exist":
            raise NotFoundError(f"no Kilocode task file at {path} (and no {BACKUP_FILE} beside it)")
        raise CorruptionError(f"{path} cannot be imported: {problem}; there is no {BACKUP_FILE} beside it")
    try:
        good, refused, notes = parse_storage_data(_read(backup))
    except (OSError, CorruptionError, ValidationError) as exc:
        raise CorruptionError(
            f"{path} cannot be imported ({problem}) and neither can its backup {backup} "
            f"({getattr(exc, 'strerror', None) or exc}); nothing was imported"
        ) from None
    return (
        backup,
        good,
        refused,
        [f"{path.name} cannot be read ({problem}); imported {backup} instead", *notes],
    )


def import_kilocode(tasks: Tasks, path: str | Path, *, dry_run: bool = False) -> TaskImportReport:
    """Import the Kilocode task file at ``path`` (or ``path/tasks.json`` for a folder) into
    ``tasks``. Returns what was imported and skipped, and why; with ``dry_run`` nothing is
    written. Raises NotFoundError when there is no file, CorruptionError when it and its backup
    are both damaged."""
    target = Path(path).expanduser()
    if target.is_dir():
        target = target / MAIN_FILE
    used, good, refused, notes = _load(target)
    items: Sequence[TaskImportItem] = [*refused, *tasks.import_tasks(SOURCE, good, dry_run=dry_run)]
    return TaskImportReport(
        source=SOURCE, path=str(used), dry_run=dry_run, items=tuple(items), notes=tuple(notes)
    )
