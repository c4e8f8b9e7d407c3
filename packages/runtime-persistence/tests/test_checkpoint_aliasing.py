"""A caller's objects are never shared with what the store keeps: mutating them after a save
changes neither what reads nor what a later restore writes."""

from __future__ import annotations

from runtime_persistence import Checkpoints
from runtime_persistence.storage.drivers.memory import MemoryDriver


def test_mutating_saved_state_after_save_does_not_change_the_stored_checkpoint() -> None:
    cps = Checkpoints(MemoryDriver())
    thread = cps.create_thread("aliasing")
    messages = [{"role": "user", "content": "first"}]
    first = cps.save(thread.id, {"messages": messages})
    messages.append({"role": "user", "content": "second"})
    cps.save(thread.id, {"messages": messages})

    assert cps.get(first.id).state["messages"] == [{"role": "user", "content": "first"}]
    restored = cps.restore(first.id)
    assert restored.state["messages"] == [{"role": "user", "content": "first"}]
    assert Checkpoints(cps.driver).get(restored.id).state["messages"] == [
        {"role": "user", "content": "first"}
    ]


def test_mutating_saved_metadata_after_save_does_not_change_the_stored_checkpoint() -> None:
    cps = Checkpoints(MemoryDriver())
    thread = cps.create_thread("aliasing")
    tags = ["a"]
    first = cps.save(thread.id, {"x": 1}, metadata={"tags": tags})
    tags.append("b")
    assert cps.get(first.id).metadata == {"tags": ["a"]}
    assert cps.restore(first.id).metadata["restored_from"] == first.id
