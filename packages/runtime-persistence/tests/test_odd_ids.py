"""Empty and odd ids are refused with a clear ValidationError, never replaced or passed on
(issue 11, hole 11: ``create_thread(thread_id='')`` used to generate a new id silently)."""

from __future__ import annotations

import pytest
from runtime_core import ValidationError, new_id
from runtime_persistence import Checkpoints, Sessions, Tasks, open_store

_AN_ID = "01a2282e-e61f-7348-aae8-d747b905d5f8"  # fixed, so every test worker collects the same names
ODD_IDS = ["", " ", "0", "not-an-id", _AN_ID.upper() + " ", "../" + _AN_ID, _AN_ID + "\x00", "\udc80"]


@pytest.fixture
def cps() -> Checkpoints:
    return Checkpoints(open_store("memory://"))


@pytest.mark.parametrize("odd", ODD_IDS)
def test_create_thread_refuses_an_empty_or_odd_id_and_writes_nothing(cps: Checkpoints, odd: str) -> None:
    with pytest.raises(ValidationError, match="thread id"):
        cps.create_thread(thread_id=odd)
    assert cps.list_threads() == []


def test_create_thread_without_an_id_makes_one_and_a_given_id_is_kept(cps: Checkpoints) -> None:
    made = cps.create_thread()
    wanted = new_id()
    assert cps.create_thread(thread_id=wanted).id == wanted
    assert made.id != wanted


@pytest.mark.parametrize("odd", ODD_IDS)
def test_reads_and_writes_refuse_odd_ids(cps: Checkpoints, odd: str) -> None:
    driver = cps._driver
    for call in (
        lambda: cps.get_thread(odd),
        lambda: cps.save(odd, {"a": 1}),
        lambda: cps.get(odd),
        lambda: cps.latest(odd),
        lambda: cps.list(odd),
        lambda: Sessions(driver).get(odd),
        lambda: Tasks(driver).get(odd),
    ):
        with pytest.raises(ValidationError):
            call()
