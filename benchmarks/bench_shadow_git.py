"""Shadow-git snapshots against raw git doing the same work, side by side in one run.

The peer is plain ``git`` on its own git directory (``--git-dir``/``--work-tree``, default
config but automatic gc off) recording the same tree the way a person would: ``git add -A`` then ``git commit`` (which
exits 1, "nothing to commit", when nothing changed). Keepup's :class:`ShadowGit` records it with
its scan for nested repositories, size-capped files and LFS patterns, its excludes and its
scrubbed environment.

Rows (ratios are **times**, Keepup / raw git, lower is better; targets from issues 5 and 12):

* initial snapshot of the ``--files`` tree (fresh git directories): <= 1.3;
* incremental snapshot after 10 files changed, full scan: <= 1.3;
* no-op snapshot (nothing changed), full scan: <= 1.0;
* on the ``--big-files`` tree: a snapshot after the workspace tools changed 10 files, with their
  reports trusted (``trust_changed_paths``): <= 0.2; the no-op snapshot with trusted reports; and
  both again as a full scan, for comparison.

Every row is measured in ``--rounds`` rounds; each round times Keepup and raw git once on the same
tree, alternating which goes first. Printed: the median of the per-round ratios with their min and
max, the median seconds of each side, and the load average. Never best-of. Run::

    .venv/bin/python benchmarks/bench_shadow_git.py            # or: nox -s bench
    .venv/bin/python benchmarks/bench_shadow_git.py --files 2000 --big-files 20000 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from runtime_persistence.shadow_git.repository import ShadowGit
from runtime_tools import WorkspaceTools

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stats import load_average

TARGETS = {"initial": 1.3, "incremental": 1.3, "noop": 1.0, "hinted": 0.2}


def make_tree(root: Path, files: int, seed: int = 7) -> list[str]:
    """A source-like tree: ``files`` text files of 200 B to 4 KiB in nested folders (about one
    folder per 28 files); returns their paths relative to ``root``."""
    rng = random.Random(seed)
    paths = []
    top = max(1, files // 250)
    for i in range(files):
        rel = f"pkg{i % top:03d}/mod{i % 9}/sub{i % 3}/file_{i:06d}.py"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = rng.randint(5, 100)
        path.write_text("".join(f"value_{i}_{j} = {rng.random()!r}\n" for j in range(lines)))
        paths.append(rel)
    return paths


class RawGit:
    """Plain git on a separate git directory, default configuration, no Keepup code."""

    def __init__(self, workspace: Path, git_dir: Path, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "bench",
            "GIT_AUTHOR_EMAIL": "bench@localhost",
            "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "bench@localhost",
        }
        subprocess.run(["git", "init", "-q", "--bare", str(git_dir)], check=True, env=self.env)
        # no automatic gc: it would run detached after a commit, stealing time from the next round
        self.base = ["git", f"--git-dir={git_dir}", f"--work-tree={workspace}", "-c", "gc.auto=0"]
        self.workspace = workspace

    def snapshot(self, message: str) -> None:
        subprocess.run([*self.base, "add", "-A"], check=True, env=self.env, cwd=self.workspace)
        done = subprocess.run(
            [*self.base, "commit", "-q", "-m", message],
            check=False,
            env=self.env,
            cwd=self.workspace,
            capture_output=True,
        )
        if done.returncode not in (0, 1):  # 1: nothing to commit
            raise RuntimeError(done.stderr.decode())


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class Row:
    def __init__(self, label: str, target: float | None) -> None:
        self.label, self.target = label, target
        self.ours: list[float] = []
        self.raw: list[float] = []

    def measure(self, round_: int, ours: Callable[[], object], raw: Callable[[], object]) -> None:
        """Time both sides once, alternating which goes first."""
        if round_ % 2 == 0:
            self.raw.append(timed(raw))
            self.ours.append(timed(ours))
        else:
            self.ours.append(timed(ours))
            self.raw.append(timed(raw))

    def line(self) -> tuple[str, bool]:
        ratios = [a / b for a, b in zip(self.ours, self.raw, strict=True)]
        median = statistics.median(ratios)
        over = self.target is not None and median > self.target
        verdict = "" if self.target is None else ("  OVER" if over else "  ok")
        target = "-" if self.target is None else f"<= {self.target}"
        return (
            f"{self.label:<52}{statistics.median(self.ours):>9.3f}{statistics.median(self.raw):>9.3f}"
            f"{median:>7.2f} ({min(ratios):.2f}-{max(ratios):.2f}){target:>9}{verdict}",
            over,
        )


def change(tools: WorkspaceTools | None, root: Path, paths: list[str], tag: str) -> None:
    """Append a line to each of ``paths``: through the workspace tools (which report it) or
    directly."""
    for rel in paths:
        if tools is not None:
            text = tools.read_file(rel)
            tools.write_file(rel, f"{text}# {tag}\n")
        else:
            with open(root / rel, "a") as fh:
                fh.write(f"# {tag}\n")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--big-files", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7, help="rounds per row (at least 5)")
    parser.add_argument("--changed", type=int, default=10, help="files changed before each incremental")
    parser.add_argument("--check", action="store_true", help="exit 1 when a median ratio is over its target")
    args = parser.parse_args()
    if args.rounds < 5:
        parser.error("--rounds must be at least 5")

    base = Path(tempfile.mkdtemp(prefix="keepup-bench-shadow-"))
    rows: list[Row] = []
    try:
        print(f"git {_git_version()}; {load_average()} at the start")
        workspace = base / "workspace"
        workspace.mkdir()
        files = make_tree(workspace, args.files)
        print(f"tree: {len(files)} files")
        RawGit(workspace, base / "warm.git", base / "home").snapshot("warm the page cache")

        initial = Row(f"initial snapshot ({len(files)} new files)", TARGETS["initial"])
        for round_ in range(args.rounds):
            raw = RawGit(workspace, base / f"raw-{round_}.git", base / "home")
            ours = ShadowGit(workspace, state_dir=base / f"state-{round_}", time_budget=None)
            initial.measure(
                round_, lambda ours=ours: ours.snapshot("initial"), lambda raw=raw: raw.snapshot("i")
            )  # type: ignore[misc]
            shutil.rmtree(base / f"raw-{round_}.git", ignore_errors=True)
            shutil.rmtree(base / f"state-{round_}", ignore_errors=True)
        rows.append(initial)

        raw = RawGit(workspace, base / "inc-raw.git", base / "home")
        ours = ShadowGit(workspace, state_dir=base / "inc-state", time_budget=None)
        raw.snapshot("base")
        ours.snapshot("base")
        rng = random.Random(11)
        incremental = Row(f"incremental, {args.changed} files changed, full scan", TARGETS["incremental"])
        noop = Row("no-op (nothing changed), full scan", TARGETS["noop"])
        for round_ in range(args.rounds):
            change(None, workspace, rng.sample(files, args.changed), f"step {round_}")
            incremental.measure(round_, lambda: ours.snapshot("step"), lambda: raw.snapshot("step"))
            noop.measure(round_, lambda: ours.snapshot("noop"), lambda: raw.snapshot("noop"))
        rows += [incremental, noop]
        print(f"{load_average()} after the {len(files)}-file rows")

        big = base / "big"
        big.mkdir()
        big_files = make_tree(big, args.big_files, seed=13)
        print(f"tree: {len(big_files)} files")
        raw_big = RawGit(big, base / "big-raw.git", base / "home")
        hinted = ShadowGit(big, state_dir=base / "big-hinted", time_budget=None, trust_changed_paths=True)
        full = ShadowGit(big, state_dir=base / "big-full", time_budget=None)
        tools = WorkspaceTools(big, changes=hinted)
        raw_big.snapshot("base")
        hinted.snapshot("base")  # the first snapshot of an object always scans everything
        full.snapshot("base")
        by_tools = Row(f"tools changed {args.changed} files, reports trusted", TARGETS["hinted"])
        noop_hinted = Row("no-op, reports trusted", TARGETS["noop"])
        by_tools_full = Row(f"tools changed {args.changed} files, full scan", None)
        noop_full = Row("no-op, full scan", TARGETS["noop"])
        for round_ in range(args.rounds):
            change(tools, big, rng.sample(big_files, args.changed), f"step {round_}")
            by_tools.measure(round_, lambda: hinted.snapshot("step"), lambda: raw_big.snapshot("step"))
            assert hinted.head() is not None
            noop_hinted.measure(round_, lambda: hinted.snapshot("noop"), lambda: raw_big.snapshot("noop"))
            change(tools, big, rng.sample(big_files, args.changed), f"full {round_}")
            hinted.snapshot("keep up")  # not timed: the hinted side records the full side's change
            by_tools_full.measure(round_, lambda: full.snapshot("step"), lambda: raw_big.snapshot("step"))
            noop_full.measure(round_, lambda: full.snapshot("noop"), lambda: raw_big.snapshot("noop"))
        rows += [by_tools, noop_hinted, by_tools_full, noop_full]
        sizes = [len(files)] * 3 + [len(big_files)] * 4

        print(
            f"\n{'':<14}{'operation':<52}{'keepup':>9}{'raw git':>9}{'ratio: median (min-max)':>24}{'target':>9}"
            f"\n{'':<66}{'(s)':>9}{'(s)':>9}  (time, lower is better; {args.rounds} rounds)"
        )
        failed = False
        for row, size in zip(rows, sizes, strict=True):
            text, over = row.line()
            failed |= over
            print(f"{size:>7} files: {text}")
        print(f"\n{load_average()} at the end")
        return 1 if (failed and args.check) else 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _git_version() -> str:
    return subprocess.run(["git", "--version"], capture_output=True, text=True, check=False).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
