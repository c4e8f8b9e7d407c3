"""Threads: named lines of checkpoints, which may be forked from a checkpoint of another thread."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runtime_core._validation import MAX_KEY_CHARS, check_aware, check_metadata, check_name
from runtime_core.ids import validate_id

__all__ = ["Thread"]


@dataclass(frozen=True, slots=True)
class Thread:
    """A thread of checkpoints.

    ``head`` is the id of its latest checkpoint (None while empty). A fork records the thread it
    came from (``parent_thread_id``) and the checkpoint it starts from (``forked_from``).
    ``external_key`` is a caller-chosen id (a framework's own thread id): unique in a store,
    indexed, any non-empty string.
    """

    id: str
    created_at: datetime
    updated_at: datetime
    name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    parent_thread_id: str | None = None
    forked_from: str | None = None
    head: str | None = None
    external_key: str | None = None

    def __post_init__(self) -> None:
        validate_id(self.id, "thread id")
        check_name(self.name, "thread name")
        object.__setattr__(self, "metadata", check_metadata(self.metadata, "thread metadata"))
        check_aware(self.created_at, "created_at")
        check_aware(self.updated_at, "updated_at")
        if self.parent_thread_id is not None:
            validate_id(self.parent_thread_id, "parent thread id")
        if self.forked_from is not None:
            validate_id(self.forked_from, "forked_from checkpoint id")
        if self.head is not None:
            validate_id(self.head, "head checkpoint id")
        if self.external_key is not None:
            check_name(self.external_key, "thread external key", allow_empty=False, max_chars=MAX_KEY_CHARS)
