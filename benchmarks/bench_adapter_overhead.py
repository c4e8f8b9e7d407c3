"""The adapters' own overhead, before and after a change, in one run: the same Keepup store
under the current adapter and under an earlier one (its ``_sync/core.py`` or ``session.py`` read
from a git revision), interleaved rounds, median with min-max and the load average.

* LangGraph ``put`` (``KeepupSaver``, the chat-shaped checkpoint of ``bench_langgraph.py``);
* OpenAI Agents ``get_items(limit=10)`` (``KeepupSession``, the items of ``bench_openai_agents.py``).

    .venv/bin/python benchmarks/bench_adapter_overhead.py --rev 3a2e6b9 --rounds 7
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from _stats import Ratio, load_average, median, rounds
from bench_langgraph import Chain
from bench_openai_agents import assistant, user
from keepup_langgraph import KeepupSaver
from keepup_openai_agents import KeepupSession

ROOT = Path(__file__).resolve().parent.parent


def _module_at(rev: str, path: str, name: str, tmp: Path) -> ModuleType:
    text = subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True
    )
    file = tmp / f"{name}.py"
    file.write_text(text.stdout)
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default=None, help="the git revision of the earlier adapters")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ops", type=int, default=100)
    args = parser.parse_args()
    if args.rev is None:  # nox -s bench runs every script without arguments
        print("bench_adapter_overhead: pass --rev REV (the adapters to compare with) to run it")
        return
    print(load_average(), flush=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        old_core = _module_at(
            args.rev, "packages/keepup-langgraph/src/keepup_langgraph/_sync/core.py", "old_core", tmp
        )
        old_session = _module_at(
            args.rev, "packages/keepup-openai-agents/src/keepup_openai_agents/session.py", "old_session", tmp
        )
        urls = {"SQLite durable": (f"sqlite:///{tmp / 'new.db'}", f"sqlite:///{tmp / 'old.db'}")}
        pg = os.environ.get("KEEPUP_TEST_POSTGRES_URL")
        if pg:
            sep = "&" if "?" in pg else "?"
            tag = secrets.token_hex(4)
            urls["PostgreSQL"] = (f"{pg}{sep}prefix=kn{tag}_", f"{pg}{sep}prefix=ko{tag}_")
        for where, (new_url, old_url) in urls.items():
            new = KeepupSaver.from_url(new_url)
            old = KeepupSaver.from_url(old_url)
            old._core = old_core._SaverCore(old.checkpoints, old.serde)
            chains = {"now": Chain(new, "t"), "before": Chain(old, "t")}
            for chain in chains.values():
                for _ in range(50):
                    chain.put()

            def put(chain: Chain) -> Any:
                def run() -> int:
                    for _ in range(args.ops):
                        chain.put()
                    return args.ops

                return run

            result = rounds({name: put(chain) for name, chain in chains.items()}, args.rounds)
            print(f"LangGraph put, {where}, now / before: {Ratio.of(result['now'], result['before'])}")
            print(
                f"  ops/s now {median(result['now']):,.0f}, before {median(result['before']):,.0f}",
                flush=True,
            )
            for saver in (new, old):
                destroy = getattr(saver.checkpoints.driver, "destroy", None)
                if destroy is not None:
                    destroy()
                saver.close()

        async def sessions() -> None:
            now = KeepupSession("s", f"sqlite:///{tmp / 'snew.db'}")
            before = old_session.KeepupSession("s", f"sqlite:///{tmp / 'sold.db'}")
            for s in (now, before):
                for i in range(100):
                    await s.add_items([user(i), assistant(i)])
            out: dict[str, list[float]] = {"now": [], "before": []}
            import time

            for r in range(args.rounds):
                order = [("now", now), ("before", before)][:: 1 if r % 2 == 0 else -1]
                for name, s in order:
                    start = time.perf_counter()
                    for _ in range(args.ops):
                        await s.get_items(limit=10)
                    out[name].append(args.ops / (time.perf_counter() - start))
            print(
                f"OpenAI Agents get_items(limit=10), SQLite, now / before: {Ratio.of(out['now'], out['before'])}"
            )
            print(f"  ops/s now {median(out['now']):,.0f}, before {median(out['before']):,.0f}")
            await now.close()
            await before.close()

        asyncio.run(sessions())
    print(load_average(), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
