"""Listing a 10,000-task tree: its cost must not grow with the rest of the store.

Two SQLite stores hold the same 10k-task tree (a root, 99 children, 100 grandchildren each);
the second also holds ``--others`` unrelated tasks. In interleaved rounds it times
:meth:`Tasks.tree` of the root on each store, and the peer: listing the same tree the naive way
(read every task of the store, then build the tree in memory), as a tool keeping a flat task
table would. It prints the median ratio with min-max over the rounds and the load average::

    .venv/bin/python benchmarks/bench_task_tree.py            # or: nox -s bench
    .venv/bin/python benchmarks/bench_task_tree.py --rounds 7 --others 100000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from runtime_core import Task
from runtime_persistence import Tasks
from runtime_persistence.storage.stores import open_store

sys.path.insert(0, str(Path(__file__).parent))
from _stats import Ratio, load_average, rounds

CHILDREN, GRANDCHILDREN = 99, 100  # 1 + 99 + 99 * 100 = 10,000 tasks


def build_tree(tasks: Tasks) -> str:
    root = tasks.create("root")
    for i in range(CHILDREN):
        child = tasks.create(f"child {i}", parent_id=root.id)
        for j in range(GRANDCHILDREN):
            tasks.create(f"grandchild {i}.{j}", parent_id=child.id)
    return root.id


def naive_tree(tasks: Tasks, root_id: str) -> int:
    """Every task read, then the tree built in memory (what a flat table costs)."""
    everything = tasks.load_all()
    below: dict[str | None, list[Task]] = defaultdict(list)
    for task in everything:
        below[task.parent_id].append(task)
    count, stack = 0, [root_id]
    while stack:
        node = stack.pop()
        count += 1
        stack.extend(t.id for t in below.get(node, ()))
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--others", type=int, default=40_000, help="unrelated tasks in the bigger store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        small = open_store(f"sqlite:///{folder}/small.db", durability="relaxed")
        big = open_store(f"sqlite:///{folder}/big.db", durability="relaxed")
        small_tasks, big_tasks = Tasks(small), Tasks(big)
        print(f"building the 10k-task tree twice and {args.others} other tasks ...", flush=True)
        small_root = build_tree(small_tasks)
        big_root = build_tree(big_tasks)
        parent = big_tasks.create("others").id
        for i in range(args.others):
            big_tasks.create(f"other {i}", parent_id=parent if i % 2 else None)
        assert len(small_tasks.tree(small_root)) == len(big_tasks.tree(big_root)) == 10_000
        per_round = rounds(
            {
                "tree, 10k-task store": lambda: len(small_tasks.tree(small_root)),
                f"tree, {10_000 + args.others + 1}-task store": lambda: len(big_tasks.tree(big_root)),
                "naive, 10k-task store": lambda: naive_tree(small_tasks, small_root),
                f"naive, {10_000 + args.others + 1}-task store": lambda: naive_tree(big_tasks, big_root),
            },
            args.rounds,
        )
        names = list(per_round)
        print(load_average())
        for name in names:
            values = sorted(per_round[name])
            print(f"{name:>32}: median {values[len(values) // 2]:,.0f} tasks listed/s")
        print(
            f"tree listing, big store / small store (speed): {Ratio.of(per_round[names[1]], per_round[names[0]])}"
        )
        print(
            f"naive listing, big store / small store (speed): {Ratio.of(per_round[names[3]], per_round[names[2]])}"
        )
        print(
            f"tree / naive listing on the big store (speed): {Ratio.of(per_round[names[1]], per_round[names[3]])}"
        )
        small.close()
        big.close()


if __name__ == "__main__":
    main()
