"""CPU time of the ``keepup`` command's start-up next to ``python -c pass``, in the same run.

Measures the CPU (user + system) of these child processes: ``python -c pass``, ``python -c
"import typer"`` (the floor under any command built on typer), ``keepup --help`` and ``keepup
thread list`` (on a temporary home holding one thread; stdout is not a terminal, so it prints
plain rows), interleaved round by round so all see the same machine load, and prints for each
its median CPU and the median of its per-round ratio to ``python -c pass``, with the min-max
range, and the load average before and after.

Target (issue 18 item 7): ``keepup --help`` and ``keepup thread list`` <= 8x ``python -c pass``.

    .venv/bin/python benchmarks/bench_startup.py              # 7 rounds
    .venv/bin/python benchmarks/bench_startup.py --rounds 15
    # also the same commands on other sources (e.g. main's, exported with git archive), first on
    # PYTHONPATH, in the same interleaved rounds:
    .venv/bin/python benchmarks/bench_startup.py --before /tmp/main/packages/*/src
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
KEEPUP = BIN / "keepup"


def cpu_of(command: list[str], env: dict[str, str]) -> float:
    """CPU seconds (user + system) the child ``command`` used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode(errors='replace')}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds (at least 5)")
    parser.add_argument(
        "--before", nargs="*", default=[], metavar="SRC", help="source folders of the code to compare with"
    )
    args = parser.parse_args(argv)
    rounds = max(5, args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        # Without PYTHONDONTWRITEBYTECODE, so the warm-up round writes the .pyc files an installed
        # package has; with it every round would compile every module again.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("KEEPUP_") and k != "PYTHONDONTWRITEBYTECODE"
        }
        env["KEEPUP_HOME"] = str(home)
        from keepup.runtime import open_runtime

        with open_runtime(home=home) as runtime:
            runtime.checkpoints.create_thread("bench")
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import typer'": [sys.executable, "-c", "import typer"],
            "keepup --help": [str(KEEPUP), "--help"],
            "keepup thread list": [str(KEEPUP), "thread", "list"],
        }
        envs = dict.fromkeys(commands, env)
        if args.before:
            before_env = {**env, "PYTHONPATH": os.pathsep.join(args.before)}
            for name in ("keepup --help", "keepup thread list"):
                commands[f"{name} (before)"] = commands[name]
                envs[f"{name} (before)"] = before_env
        for name, command in commands.items():  # warm the caches (.pyc files, page cache) once
            cpu_of(command, envs[name])
        load_before = os.getloadavg()
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):
            for name, command in commands.items():
                samples[name].append(cpu_of(command, envs[name]))
        load_after = os.getloadavg()
    base = samples["python -c pass"]
    print(
        f"start-up CPU, {rounds} rounds interleaved (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)"
    )
    print(
        f"load average before {load_before[0]:.2f} {load_before[1]:.2f}, after {load_after[0]:.2f} {load_after[1]:.2f}"
    )
    print(f"{'command':<35} {'median CPU':>11} {'x python -c pass (median, min-max)':>38}")
    for name, values in samples.items():
        ratios = [v / b for v, b in zip(values, base, strict=True) if b > 0]
        print(
            f"{name:<35} {statistics.median(values) * 1000:>8.0f} ms "
            f"{statistics.median(ratios):>14.1f}x  ({min(ratios):.1f}-{max(ratios):.1f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
