"""Shadow-git snapshots against raw git doing the same work, side by side in one run.

The peer is plain ``git`` on its own git directory (``--git-dir``/``--work-tree``, default
config), recording the same 10,000-file tree the way a person would: ``git add -A`` then
``git commit``. Keepup's :class:`ShadowGit` records it with its scan for nested repositories,
size-capped files and LFS patterns, its excludes and its scrubbed environment.

* initial snapshot: a fresh git directory, every file new (target: at most 1.3x raw git);
* incremental snapshot: 10 files changed since the previous snapshot (target: at most 1.3x).

Both sides run alternately on the same tree (so both see the same page cache); each figure is the
best of its runs (the least disturbed by other load on the machine), medians are printed beside.
Run::

    .venv/bin/python benchmarks/bench_shadow_git.py            # or: nox -s bench
    .venv/bin/python benchmarks/bench_shadow_git.py --files 2000 --rounds 5   # quicker
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

TARGET = 1.3


def make_tree(root: Path, files: int, seed: int = 7) -> list[Path]:
    """A source-like tree: ``files`` text files of 200 B to 4 KiB in nested folders."""
    rng = random.Random(seed)
    paths = []
    for i in range(files):
        folder = root / f"pkg{i % 40:02d}" / f"mod{i % 9}" / f"sub{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"file_{i:05d}.py"
        lines = rng.randint(5, 100)
        path.write_text("".join(f"value_{i}_{j} = {rng.random()!r}\n" for j in range(lines)))
        paths.append(path)
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
        self.base = ["git", f"--git-dir={git_dir}", f"--work-tree={workspace}"]
        self.workspace = workspace

    def snapshot(self, message: str) -> None:
        subprocess.run([*self.base, "add", "-A"], check=True, env=self.env, cwd=self.workspace)
        subprocess.run(
            [*self.base, "commit", "-q", "-m", message], check=True, env=self.env, cwd=self.workspace
        )


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5, help="initial snapshots per side")
    parser.add_argument("--increments", type=int, default=15, help="incremental snapshots per side")
    parser.add_argument("--changed", type=int, default=10, help="files changed before each increment")
    parser.add_argument("--check", action="store_true", help="exit 1 when a ratio is over the target")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="keepup-bench-shadow-"))
    try:
        workspace = base / "workspace"
        workspace.mkdir()
        files = make_tree(workspace, args.files)
        print(f"tree: {len(files)} files in {workspace}  (git {_git_version()})")

        initial_raw: list[float] = []
        initial_ours: list[float] = []
        warm = RawGit(workspace, base / "warm.git", base / "home")
        warm.snapshot("warm the page cache")
        for round_ in range(args.rounds):
            raw = RawGit(workspace, base / f"raw-{round_}.git", base / "home")
            ours = ShadowGit(workspace, state_dir=base / f"state-{round_}", time_budget=None)
            order = [("raw", raw), ("ours", ours)] if round_ % 2 == 0 else [("ours", ours), ("raw", raw)]
            for name, side in order:
                if name == "raw":
                    initial_raw.append(timed(lambda side=side: side.snapshot("initial")))  # type: ignore[misc]
                else:
                    initial_ours.append(timed(lambda side=side: side.snapshot("initial")))  # type: ignore[misc]

        raw = RawGit(workspace, base / "inc-raw.git", base / "home")
        ours = ShadowGit(workspace, state_dir=base / "inc-state", time_budget=None)
        raw.snapshot("base")
        ours.snapshot("base")
        inc_raw: list[float] = []
        inc_ours: list[float] = []
        rng = random.Random(11)
        for step in range(args.increments):
            for path in rng.sample(files, args.changed):
                with open(path, "a") as fh:
                    fh.write(f"# change {step}\n")
            if step % 2 == 0:
                inc_raw.append(timed(lambda: raw.snapshot(f"step {step}")))  # noqa: B023
                inc_ours.append(timed(lambda: ours.snapshot(f"step {step}")))  # noqa: B023
            else:
                inc_ours.append(timed(lambda: ours.snapshot(f"step {step}")))  # noqa: B023
                inc_raw.append(timed(lambda: raw.snapshot(f"step {step}")))  # noqa: B023

        rows = [
            ("initial snapshot", initial_ours, initial_raw),
            (f"incremental ({args.changed} files changed)", inc_ours, inc_raw),
        ]
        print(
            f"\n{'operation':<34}{'keepup (s)':>12}{'raw git (s)':>13}{'ratio':>8}"
            f"{'median ratio':>14}  target <= {TARGET} (time; lower is better)"
        )
        failed = False
        for label, mine, peer in rows:
            ratio = min(mine) / min(peer)
            median_ratio = statistics.median(mine) / statistics.median(peer)
            failed |= ratio > TARGET
            verdict = "ok" if ratio <= TARGET else "OVER"
            print(
                f"{label:<34}{min(mine):>12.3f}{min(peer):>13.3f}{ratio:>8.2f}{median_ratio:>14.2f}  {verdict}"
            )
        return 1 if (failed and args.check) else 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _git_version() -> str:
    return subprocess.run(["git", "--version"], capture_output=True, text=True, check=False).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
