"""Writes ``format1-store.sqlite``: a SQLite store made by Keepup before records were bound to
their place (envelope format 1, main at 57e00b0), used by test_record_binding.py to prove old
stores stay readable. Run it with that Keepup (it is kept for the record, not run by the tests):

    python make_format1_store.py OUT.sqlite
"""

from __future__ import annotations

import sys
from datetime import timedelta

from runtime_persistence import Artifacts, Checkpoints, Leases, Sessions, Tasks, open_store


def main(path: str) -> None:
    driver = open_store(f"sqlite:///{path}")
    cps = Checkpoints(driver)
    first = cps.create_thread("old thread")
    second = cps.create_thread("other")
    a0 = cps.save(first.id, {"messages": ["hello"], "n": 0})
    cps.save(first.id, {"messages": ["hello", "world"], "n": 1, "big": "x" * 5000}, label="two")
    cps.save(first.id, {"messages": [f"m{i}" for i in range(3000)], "n": 2})
    cps.put_writes(cps.latest(first.id).id, "task-1", {"messages": "pending"})
    cps.pin(a0.id, "keep")
    cps.save(second.id, {"messages": ["b"], "n": 10})
    arts = Artifacts(driver)
    arts.put("scope", "report.txt", b"version zero")
    arts.put("scope", "report.txt", b"version one")
    Sessions(driver).open("old session")
    tasks = Tasks(driver)
    task = tasks.create("old task")
    tasks.log(task.id, "a line")
    Leases(driver).acquire(second.id, "run-1", timedelta(days=3650))
    driver.close()


if __name__ == "__main__":
    main(sys.argv[1])
