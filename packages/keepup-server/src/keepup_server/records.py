"""JSON shapes of the records the ``keepup`` command does not print yet (sessions, tasks,
recorded messages), built field by field like :mod:`keepup.shapes`. When the command line gains
``--json`` for them, its shapes move to :mod:`keepup.shapes` and these become re-exports."""

from __future__ import annotations

from typing import Any

from keepup import Event, Session, Task
from keepup.shapes import plain

__all__ = ["event_json", "session_json", "task_json"]


def session_json(session: Session) -> dict[str, Any]:
    return {
        "id": session.id,
        "name": session.name,
        "status": session.status.value,
        "created_at": session.created_at.isoformat(),
        "last_seen_at": session.last_seen_at.isoformat(),
        "metadata": plain(session.metadata),
    }


def task_json(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "title": task.title,
        "status": task.status.value,
        "parent_id": task.parent_id,
        "progress": task.progress,
        "assignee": task.assignee,
        "created_at": task.created_at.isoformat(),
        "updated_at": task.updated_at.isoformat(),
        "metadata": plain(task.metadata),
    }


def event_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "topic": event.topic,
        "created_at": event.created_at.isoformat(),
        "sender": event.sender,
        "recipient": event.recipient,
        "thread_id": event.thread_id,
        "payload": plain(event.payload),
        "metadata": plain(event.metadata),
    }
