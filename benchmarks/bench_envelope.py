"""The envelope serializer A/B: this checkout's ``dumps``/``loads`` against an older
``serialization.py`` (for instance the BLAKE2b envelope checksum of formats 2 and 1), on the ~10 KB
state of ``bench_checkpoints.py``, bound to a place (a record) and unbound (a blob). Every figure
is the median ratio this / baseline over ``--rounds`` interleaved rounds (the order rotates each
round), with its min-max and the load average. Never best-of.

    .venv/bin/python benchmarks/bench_envelope.py --rounds 7    # against main at f6cc475 (git show)
    .venv/bin/python benchmarks/bench_envelope.py --baseline OLD/serialization.py

Without ``--baseline`` the baseline is ``serialization.py`` at :data:`BASE_COMMIT` (the last one
with the BLAKE2b checksum), taken with ``git show``; options it does not know are ignored, so
``nox -s bench -- --rounds 7`` runs it with the others.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _stats import Ratio, load_average, median, rounds
from bench_checkpoints import state_at
from runtime_persistence.storage import serialization as current

BASE_COMMIT = "f6cc475"
SOURCE = "packages/runtime-persistence/src/runtime_persistence/storage/serialization.py"
AT = ("ckpt", "0190f0c4-7d1c-7c3e-8a4b-1f2e3d4c5b6a/00000000000000000042")


def _load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("_baseline_serialization", path)
    if spec is None or spec.loader is None:
        sys.exit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", type=Path, help=f"an older serialization.py (default: {BASE_COMMIT}'s)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ops", type=int, default=3000, help="operations per variant per round")
    args, _ = parser.parse_known_args()
    baseline = args.baseline
    if baseline is None:
        root = Path(__file__).resolve().parent.parent
        shown = subprocess.run(
            ["git", "show", f"{BASE_COMMIT}:{SOURCE}"], cwd=root, capture_output=True, check=False
        )
        if shown.returncode != 0:
            print(f"skipped: no --baseline, and git cannot show {BASE_COMMIT}:{SOURCE}", flush=True)
            return
        baseline = Path(tempfile.mkdtemp()) / "serialization_base.py"
        baseline.write_bytes(shown.stdout)
    base = _load(baseline)
    state = state_at(20)
    sides = {"this": current.EnvelopeSerializer(), "base": base.EnvelopeSerializer()}
    print(
        f"envelope of a {len(sides['this'].dumps(state)):,}-byte state; this checkout writes format "
        f"{sides['this'].dumps(state, at=AT)[2]}, the baseline {sides['base'].dumps(state, at=AT)[2]}",
        flush=True,
    )

    def variants(side: str) -> dict[str, Callable[[], int]]:
        ser = sides[side]
        bound, unbound = ser.dumps(state, at=AT), ser.dumps(state)
        n = args.ops

        def dumps_bound() -> int:
            for _ in range(n):
                ser.dumps(state, at=AT)
            return n

        def loads_bound() -> int:
            for _ in range(n):
                ser.loads(bound, at=AT)
            return n

        def dumps_unbound() -> int:
            for _ in range(n):
                ser.dumps(state)
            return n

        def loads_unbound() -> int:
            for _ in range(n):
                ser.loads(unbound)
            return n

        return {
            f"{side} dumps at a place": dumps_bound,
            f"{side} loads at a place": loads_bound,
            f"{side} dumps unbound (blob)": dumps_unbound,
            f"{side} loads unbound, checksum verified": loads_unbound,
        }

    result = rounds(variants("this") | variants("base"), args.rounds)
    print(f"  {load_average()}", flush=True)
    for op in (
        "dumps at a place",
        "loads at a place",
        "dumps unbound (blob)",
        "loads unbound, checksum verified",
    ):
        ours, theirs = result[f"this {op}"], result[f"base {op}"]
        print(
            f"  {op:<36} {1e6 / median(ours):>7.1f} µs  baseline {1e6 / median(theirs):>7.1f} µs   "
            f"speed {Ratio.of(ours, theirs)}",
            flush=True,
        )


if __name__ == "__main__":
    main()
