"""Cross-driver round trip: threads exported from a SQLite store import into PostgreSQL whole."""

from __future__ import annotations

from pathlib import Path

from runtime_persistence import Checkpoints
from runtime_persistence.checkpoint.export import export_threads, import_threads
from runtime_persistence.testing import open_test_store


def test_sqlite_export_imports_into_postgres(tmp_path: Path) -> None:
    with open_test_store("postgres", tmp_path) as pg, open_test_store("sqlite", tmp_path) as lite:
        source = Checkpoints(lite.driver)
        t = source.create_thread("conversation", metadata={"user": "ada"})
        msgs: list[dict[str, str]] = []
        ids = []
        for i in range(40):
            msgs.append({"role": "user" if i % 2 else "assistant", "content": f"turn {i} " + "w" * 800})
            ids.append(source.save(t.id, {"messages": msgs, "step": i}, metadata={"i": i}).id)
        source.put_writes(ids[-1], "tool-1", {"result": {"stdout": "ok"}})
        fork = source.fork(ids[20], name="what-if")
        source.save(fork.id, {"messages": [*msgs[:21], {"role": "user", "content": "other"}], "step": 21})
        path = tmp_path / "threads.keepup"
        exported = export_threads(source, path)
        target = Checkpoints(pg.driver)
        imported = import_threads(target, path)
        assert (imported.threads, imported.checkpoints) == (exported.threads, exported.checkpoints) == (2, 42)
        for thread in source.list_threads():
            assert target.get_thread(thread.id) == thread
            assert [
                (c.id, c.parent_id, c.state, c.metadata, c.pending_writes)
                for c in target.list(thread.id, limit=100)
            ] == [
                (c.id, c.parent_id, c.state, c.metadata, c.pending_writes)
                for c in source.list(thread.id, limit=100)
            ]
        fork_head = target.get_thread(fork.id).head
        assert fork_head is not None
        assert [c.id for c in target.history(fork_head)][2:] == ids[20::-1]
