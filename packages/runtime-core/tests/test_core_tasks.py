"""Task status transitions."""

from __future__ import annotations

import itertools

import pytest
from runtime_core import TASK_TRANSITIONS, TaskStatus, ValidationError, check_transition

ALLOWED = {
    ("pending", "running"),
    ("pending", "blocked"),
    ("pending", "cancelled"),
    ("running", "completed"),
    ("running", "failed"),
    ("running", "cancelled"),
    ("running", "blocked"),
    ("blocked", "running"),
    ("blocked", "pending"),
    ("blocked", "cancelled"),
    ("failed", "pending"),
}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(TaskStatus, TaskStatus)))
def test_every_transition_is_allowed_exactly_when_listed(old: TaskStatus, new: TaskStatus) -> None:
    if (old.value, new.value) in ALLOWED:
        check_transition(old, new)
    else:
        with pytest.raises(ValidationError, match=f"a {old.value} task cannot become {new.value}"):
            check_transition(old, new)


def test_the_table_covers_every_status() -> None:
    assert set(TASK_TRANSITIONS) == set(TaskStatus)


def test_terminal_statuses_say_nothing_is_allowed() -> None:
    with pytest.raises(ValidationError, match=r"\(allowed: nothing\)"):
        check_transition(TaskStatus.COMPLETED, TaskStatus.RUNNING)


def test_the_message_lists_the_allowed_targets() -> None:
    with pytest.raises(ValidationError, match=r"\(allowed: blocked, cancelled, running\)"):
        check_transition(TaskStatus.PENDING, TaskStatus.COMPLETED)


def test_unknown_statuses_are_refused_with_a_typed_error() -> None:
    with pytest.raises(ValidationError, match="task status must be one of"):
        check_transition("pending", "teleported")  # type: ignore[arg-type]
    check_transition("failed", "pending")  # type: ignore[arg-type]
