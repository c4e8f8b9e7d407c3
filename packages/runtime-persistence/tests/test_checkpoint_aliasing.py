"""A caller's objects are never shared with what the store keeps: mutating them after a save
changes neither what reads nor what a later restore writes."""

from __future__ import annotations

import pytest
from runtime_persistence import Checkpoints
from runtime_persistence.testing import TestStore, store_fixture

alias_store = store_fixture("memory", modes=("sync", "async"))


@pytest.fixture
def cps(alias_store: TestStore) -> Checkpoints:
    made: Checkpoints = alias_store.make(Checkpoints)
    return made


def test_mutating_saved_state_after_save_does_not_change_the_stored_checkpoint(
    cps: Checkpoints, alias_store: TestStore
) -> None:
    thread = cps.create_thread("aliasing")
    messages = [{"role": "user", "content": "first"}]
    first = cps.save(thread.id, {"messages": messages})
    messages.append({"role": "user", "content": "second"})
    cps.save(thread.id, {"messages": messages})

    assert cps.get(first.id).state["messages"] == [{"role": "user", "content": "first"}]
    restored = cps.restore(first.id)
    assert restored.state["messages"] == [{"role": "user", "content": "first"}]
    assert alias_store.make(Checkpoints).get(restored.id).state["messages"] == [
        {"role": "user", "content": "first"}
    ]


def test_mutating_saved_metadata_after_save_does_not_change_the_stored_checkpoint(cps: Checkpoints) -> None:
    thread = cps.create_thread("aliasing")
    tags = ["a"]
    first = cps.save(thread.id, {"x": 1}, metadata={"tags": tags})
    tags.append("b")
    assert cps.get(first.id).metadata == {"tags": ["a"]}
    assert cps.restore(first.id).metadata["restored_from"] == first.id
