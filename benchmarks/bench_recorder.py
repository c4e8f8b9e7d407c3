"""The message recorder against the seed's design, side by side in one run.

1. **Recording throughput.** ``MessageStore.append`` (group commit: one durable SQLite
   transaction per batch, with parsing, dedup by id, sequence tracking and FTS5 indexing; records
   in chunks with the ids in the SQLite index, and again in the two older layouts: chunks with an
   id row per message, and a row per record) next
   to the seed's recorder, a JSONL appender that fsyncs after every message, and next to a JSONL
   appender that fsyncs once per batch (the same durability window as ours: every message is
   durable when its batch returns). Messages per second; rounds interleaved.
2. **Search over N recorded messages** (default 1,000,000, generated here): ``MessageStore.search``
   (FTS5, BM25 ranking, highlighted snippets, top 20) next to ``grep -i`` over the JSONL file the
   seed would have written (unranked, every word piped through another grep, first 20 lines).
   Latency per query; the p50/p95 of ours and the median ratio per round.

    .venv/bin/python benchmarks/bench_recorder.py                      # both parts, 1M messages
    .venv/bin/python benchmarks/bench_recorder.py --search-messages 100000 --rounds 5
    .venv/bin/python benchmarks/bench_recorder.py --only search --search-messages 100000 \
        --search-store 'postgresql://postgres@127.0.0.1:5432/test?prefix=benchsearch_'
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _stats import Ratio, load_average, rounds
from runtime_persistence import Incoming, MessageStore, open_store

NOW = datetime(2026, 1, 1, tzinfo=UTC)
WORDS = [f"w{i}" for i in range(3000)] + [
    "deploy",
    "failed",
    "staging",
    "rollback",
    "plan",
    "review",
    "tests",
    "passed",
    "merge",
    "agent",
    "tool",
    "error",
    "timeout",
    "database",
    "cache",
    "retry",
    "latency",
    "approved",
    "blocked",
    "summary",
]


def sentence(rng: random.Random) -> str:
    # Zipf-like: common words are common, so queries span frequent and rare terms
    return " ".join(
        WORDS[min(int(rng.paretovariate(1.1)) - 1, len(WORDS) - 1)]
        if rng.random() < 0.7
        else rng.choice(WORDS)
        for _ in range(rng.randint(6, 24))
    )


def bodies(n: int, seed: int, start: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for i in range(start, start + n):
        sender = f"agent{i % 8}"
        body = {
            "id": f"m{seed}-{i}",
            "sender": sender,
            "seq": i // 8 + 1,
            "conversation": f"conv{i % 50}",
            "role": "assistant",
            "text": sentence(rng),
        }
        out.append(json.dumps(body).encode())
    return out


# --- 1. throughput -------------------------------------------------------------------------------


def begin_with_layout(driver: object, layout: int) -> None:
    """Make a new store one begun in an older layout (1: a row and an envelope per record, before
    chunks; 2: chunks, with an id row per message, before the ids moved into the SQLite index),
    to measure the layouts side by side."""
    import msgspec
    from runtime_persistence import RecorderState
    from runtime_persistence.session.recorder._model import MESSAGE_STATE_NS, STATE_KEY
    from runtime_persistence.storage.serialization import EnvelopeSerializer

    state = msgspec.to_builtins(RecorderState(layout=layout))
    if layout == 1:
        del state["layout"]  # as the state of a store begun before layouts
    at = (MESSAGE_STATE_NS, STATE_KEY)
    driver.put(*at, EnvelopeSerializer().dumps(state, at=at))  # type: ignore[attr-defined]


def recorder_variant(tmp: Path, data: list[bytes], batch: int, *, layout: int = 3) -> int:
    url = f"sqlite:///{tmp}/rec-{time.perf_counter_ns()}.db"
    driver = open_store(url)
    if layout != 3:
        begin_with_layout(driver, layout)
    store = MessageStore(driver)
    for i in range(0, len(data), batch):
        store.append([Incoming("agents", b, NOW, "zmq") for b in data[i : i + batch]])
    store.close()
    driver.close()
    return len(data)


def jsonl_variant(tmp: Path, data: list[bytes], every: int) -> int:
    path = tmp / f"seed-{time.perf_counter_ns()}.jsonl"
    with open(path, "ab") as fh:
        for i, body in enumerate(data, 1):
            record = json.loads(body)
            record["recorded_at"] = NOW.isoformat()  # the seed enriched and re-serialised each message
            fh.write(json.dumps(record).encode() + b"\n")
            if i % every == 0 or i == len(data):
                fh.flush()
                os.fsync(fh.fileno())
    return len(data)


def throughput(args: argparse.Namespace, tmp: Path) -> None:
    data = bodies(args.messages, 1)
    batch = args.batch
    per_message = data[: args.fsync_messages]
    variants = {
        "recorder (group commit)": lambda: recorder_variant(tmp, data, batch),
        "recorder, id rows (layout 2)": lambda: recorder_variant(tmp, data, batch, layout=2),
        "recorder, a row per record": lambda: recorder_variant(tmp, data, batch, layout=1),
        "JSONL fsync per message": lambda: jsonl_variant(tmp, per_message, 1),
        f"JSONL fsync per {batch}": lambda: jsonl_variant(tmp, data, batch),
    }
    result = rounds(variants, args.rounds)
    print(f"\n## recording throughput: {args.messages} messages, batches of {batch} ({load_average()})")
    for name, rates in result.items():
        print(
            f"  {name:28} {statistics.median(rates):>10,.0f} msg/s  (min {min(rates):,.0f}, max {max(rates):,.0f})"
        )
    ours = result["recorder (group commit)"]
    print(f"  recorder / JSONL fsync per message: {Ratio.of(ours, result['JSONL fsync per message'])}")
    print(f"  recorder / JSONL fsync per {batch}:  {Ratio.of(ours, result[f'JSONL fsync per {batch}'])}")
    print(
        f"  ids in the index / id rows (layout 3 / 2): {Ratio.of(ours, result['recorder, id rows (layout 2)'])}"
    )
    print(f"  layout 3 / a row per record (layout 1): {Ratio.of(ours, result['recorder, a row per record'])}")


# --- 2. search ------------------------------------------------------------------------------------

QUERIES = [
    "deploy",
    "failed staging",
    "rollback",
    "w2999",
    "w1500 w7",
    "timeout database",
    "approved",
    "w42",
    "review merge",
    "latency",
    "w3",
    "blocked summary",
    "cache retry",
    "w250",
    "agent tool",
]


def build_corpus(tmp: Path, n: int, store_url: str | None = None) -> tuple[MessageStore, object, Path]:
    url = store_url or f"sqlite:///{tmp}/search.db?durability=relaxed"
    driver = open_store(url)
    store = MessageStore(driver)
    jsonl = tmp / "seed.jsonl"
    started = time.perf_counter()
    with open(jsonl, "wb") as fh:
        step = 10_000
        for i in range(0, n, step):
            chunk = bodies(min(step, n - i), 2, i)
            store.append([Incoming("agents", b, NOW, "zmq") for b in chunk])
            fh.write(b"".join(b + b"\n" for b in chunk))
    size = "" if store_url else f"store {Path(f'{tmp}/search.db').stat().st_size / 1e6:.0f} MB, "
    index = store.index.name if store.index is not None else "none (scan)"
    print(
        f"  corpus: {n:,} messages in {time.perf_counter() - started:.0f} s; index {index}; "
        f"{size}JSONL {jsonl.stat().st_size / 1e6:.0f} MB"
    )
    return store, driver, jsonl


def grep(jsonl: Path, query: str) -> int:
    words = query.split()
    cmd = f"grep -i -F -w -- {words[0]} {jsonl}"
    for word in words[1:]:
        cmd += f" | grep -i -F -w -- {word}"
    out = subprocess.run(cmd + " | head -20", shell=True, capture_output=True, check=False)
    return len(out.stdout.splitlines())


def search(args: argparse.Namespace, tmp: Path) -> None:
    print(f"\n## search over {args.search_messages:,} messages ({load_average()})")
    store, driver, jsonl = build_corpus(tmp, args.search_messages, args.search_store)
    ours_latency: list[float] = []

    def ours_all() -> int:
        for q in QUERIES:
            t = time.perf_counter()
            store.search(q, limit=20)
            ours_latency.append(time.perf_counter() - t)
        return len(QUERIES)

    def grep_all() -> int:
        for q in QUERIES:
            grep(jsonl, q)
        return len(QUERIES)

    ours_all()  # warm the page cache for both, as a reader would find it
    grep_all()
    ours_latency.clear()
    result = rounds({"recorder search": ours_all, "grep over JSONL": grep_all}, args.rounds)
    lat = sorted(ours_latency)
    p50, p95 = lat[len(lat) // 2], lat[int(len(lat) * 0.95) - 1]
    print(
        f"  recorder search: p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms "
        f"over {len(lat)} queries (top 20, ranked, highlighted)"
    )
    for name, rates in result.items():
        print(f"  {name:26} {statistics.median(rates):>8,.1f} queries/s")
    print(f"  recorder / grep: {Ratio.of(result['recorder search'], result['grep over JSONL'])}")
    store.close()
    if args.search_store:
        driver.destroy()  # type: ignore[attr-defined]
    driver.close()  # type: ignore[attr-defined]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000, help="messages per throughput round")
    parser.add_argument(
        "--fsync-messages",
        type=int,
        default=2_000,
        help="messages per round of the fsync-per-message appender",
    )
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--search-messages", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--search-store",
        help="search a store at this URL (a fresh prefix on a server; destroyed afterwards) "
        "instead of a SQLite file",
    )
    parser.add_argument("--only", choices=["throughput", "search"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="keepup-bench-recorder-") as name:
        tmp = Path(name)
        if args.only in (None, "throughput"):
            throughput(args, tmp)
        if args.only in (None, "search"):
            search(args, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
