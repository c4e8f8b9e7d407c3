"""Writes ``old-tasks-store.sqlite``: a SQLite store of tasks made by Keepup before the index of
top-level tasks existed (main at 57e00b0, where only a task with a parent had a ``task.child``
entry), used by test_tasks_root_index.py to prove such stores list their root tasks. Run it with
that Keepup (it is kept for the record, not run by the tests):

    python make_old_tasks_store.py OUT.sqlite
"""

from __future__ import annotations

import sys

from runtime_core import TaskStatus
from runtime_persistence import Tasks, open_store


def main(path: str) -> None:
    driver = open_store(f"sqlite:///{path}")
    tasks = Tasks(driver)
    roots = []
    for n in range(3):
        root = tasks.create(f"old root {n}", assignee="ann" if n == 1 else None, metadata={"n": n})
        roots.append(root)
        for m in range(2):
            kid = tasks.create(f"old child {n}.{m}", parent_id=root.id)
            tasks.create(f"old grandchild {n}.{m}", parent_id=kid.id)
        tasks.log(root.id, f"root {n} created")
    first = tasks.roots()[0] if hasattr(tasks, "roots") else None
    assert first is None, "this Keepup already indexes root tasks: run it with main at 57e00b0"
    tasks.transition(roots[2].id, TaskStatus.RUNNING)
    driver.close()


if __name__ == "__main__":
    main(sys.argv[1])
