"""Bytes a growing conversation costs, next to LangGraph's ``SqliteSaver``, in one run (issue 12).

Workload: ``--turns`` (500) saves of one thread; each turn appends one ~1 KB message to the
``messages`` list of the state (``{"messages": [...], "step": t}``) and saves it as a checkpoint.

Printed:

* blob bytes written per appended KB (the MessagePack size of the appended messages): Keepup as
  it stores lists now (sealed chunks plus tail pieces, ``checkpoint/_layout.py``), and with the
  fixed 16-item chunks of earlier versions (the same store with the old encoder), target <= 2;
* everything stored (records, id entries, heads, blobs) as a share of storing the full state at
  every turn (the sum of the serialized states), target <= 1.5%;
* ``SqliteSaver`` on the same 500 turns: the bytes of its checkpoint and metadata columns and its
  database file, against Keepup's stored values and database file;
* time of ``latest()`` on the last turn through a fresh store object (every blob read and
  verified), Keepup now and with fixed chunks;
* time per save, each variant run once per round over all turns, ``--rounds`` interleaved rounds
  (median, min-max), every store on SQLite at synchronous=FULL in WAL mode.

    .venv/bin/python benchmarks/bench_state_bytes.py
    .venv/bin/python benchmarks/bench_state_bytes.py --turns 200 --rounds 3   # quicker
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from _stats import load_average
from runtime_core import Put
from runtime_persistence import Checkpoints
from runtime_persistence.checkpoint._state import (
    BLOB,
    BLOB_NS,
    CHUNK_ITEMS,
    CHUNKED,
    INLINE,
    LOC_AREA,
    LOC_KV,
    ChannelCodec,
    ChannelRef,
    EncodedState,
    _small,
    copy_plain,
)
from runtime_persistence.storage.serialization import dumps
from runtime_persistence.storage.stores import open_store

try:
    from langgraph.checkpoint.base.id import uuid6
    from langgraph.checkpoint.sqlite import SqliteSaver
except ImportError:  # pragma: no cover - the bench group is not installed
    sys.exit("install the benchmark peers first: uv sync --all-groups")

RNG = random.Random(7)
POOL = ["".join(RNG.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(1000)) for _ in range(64)]
READS = 20
NAMESPACES = ("ckpt", "ckpt.id", "ckpt.blob", "thread", "thread.head")


def message(j: int) -> dict[str, Any]:
    return {"role": "assistant" if j % 2 else "user", "content": f"{j}:{POOL[j % 64]}"}


def fixed_chunk_encode(
    self: ChannelCodec, state: Mapping[str, Any], known: Iterable[bytes] = ()
) -> EncodedState:
    """The encoder of earlier versions: lists of more than CHUNK_ITEMS items cut by position
    into chunks of CHUNK_ITEMS items (an append rewrites the last chunk)."""
    skip = set(known)
    stamp = int(self._clock.now().timestamp() * 1000).to_bytes(8, "big")
    kv_puts: list[Put] = []
    area: list[bytes] = []
    refs: dict[str, ChannelRef] = {}

    def blob(envelope: bytes) -> bytes:
        digest = hashlib.sha256(envelope).digest()
        loc = LOC_KV if len(envelope) <= self._kv_max else LOC_AREA
        ref = bytes((loc,)) + digest
        if ref not in skip:
            skip.add(ref)
            if loc == LOC_KV:
                kv_puts.append(Put(BLOB_NS, digest.hex(), stamp + envelope))
            else:
                area.append(envelope)
        return ref

    for name, value in state.items():
        if isinstance(value, (list, tuple)) and len(value) > CHUNK_ITEMS:
            items = list(value)
            chunks = [
                blob(self._serializer.dumps(items[i : i + CHUNK_ITEMS]))
                for i in range(0, len(items), CHUNK_ITEMS)
            ]
            refs[name] = ChannelRef(CHUNKED, None, chunks, len(items))
        elif _small(value):
            refs[name] = ChannelRef(INLINE, copy_plain(value))
        else:
            refs[name] = ChannelRef(BLOB, None, [blob(self._serializer.dumps(value))])
    return EncodedState(refs, kv_puts, area)


class FixedChunkCheckpoints(Checkpoints):
    """Checkpoints with the encoder of earlier versions (for the "before" rows)."""

    def __init__(self, driver: Any) -> None:
        super().__init__(driver)
        self._channels.encode = fixed_chunk_encode.__get__(self._channels)  # type: ignore[method-assign]


def _files(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def run_keepup(path: Path, turns: int, make: Callable[[Any], Checkpoints]) -> dict[str, float]:
    driver = open_store(f"sqlite:///{path}")
    cps = make(driver)
    thread = cps.create_thread("bytes")
    messages: list[dict[str, Any]] = []
    elapsed = 0.0
    for t in range(turns):
        messages.append(message(t))
        state = {"messages": list(messages), "step": t}
        start = time.perf_counter()
        cps.save(thread.id, state)
        elapsed += time.perf_counter() - start
    blob_bytes = sum(len(e.value) for e in driver.scan("ckpt.blob")) + sum(
        i.size for i in driver.list_blobs()
    )
    stored = sum(len(e.value) for ns in NAMESPACES for e in driver.scan(ns)) + sum(
        i.size for i in driver.list_blobs()
    )
    latest = Checkpoints(driver).latest(thread.id)
    assert latest is not None and latest.state["messages"] == messages
    start = time.perf_counter()
    for _ in range(READS):
        Checkpoints(driver).latest(thread.id)  # a fresh object: every blob read and verified
    read = (time.perf_counter() - start) / READS
    driver.close()
    return {"seconds": elapsed, "blob": blob_bytes, "stored": stored, "file": _files(path), "read": read}


def run_sqlitesaver(path: Path, turns: int) -> dict[str, float]:
    conn = sqlite3.connect(str(path), check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    messages: list[dict[str, Any]] = []
    parent: str | None = None
    elapsed = 0.0
    for t in range(turns):
        messages.append(message(t))
        state = {"messages": list(messages), "step": t}
        cp = {
            "v": 2,
            "id": str(uuid6()),
            "ts": datetime.now(UTC).isoformat(),
            "channel_values": state,
            "channel_versions": {k: t + 1 for k in state},
            "versions_seen": {},
            "pending_sends": [],
            "updated_channels": None,
        }
        config: dict[str, Any] = {"configurable": {"thread_id": "bytes", "checkpoint_ns": ""}}
        if parent:
            config["configurable"]["checkpoint_id"] = parent
        start = time.perf_counter()
        saver.put(config, cp, {"source": "loop", "step": t}, cp["channel_versions"])  # type: ignore[arg-type]
        elapsed += time.perf_counter() - start
        parent = str(cp["id"])
    (stored,) = conn.execute("SELECT SUM(LENGTH(checkpoint) + LENGTH(metadata)) FROM checkpoints").fetchone()
    conn.close()
    return {"seconds": elapsed, "stored": float(stored), "file": _files(path)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    turns = args.turns
    appended = sum(len(msgspec.msgpack.encode(message(t))) for t in range(turns))
    full = sum(len(dumps({"messages": [message(j) for j in range(t + 1)], "step": t})) for t in range(turns))
    print(f"{turns} turns, one ~1 KB message appended per turn; {load_average()} at start", flush=True)
    results: dict[str, list[dict[str, float]]] = {"keepup": [], "fixed": [], "saver": []}
    with tempfile.TemporaryDirectory(prefix="keepup-bench-bytes-") as tmp_name:
        tmp = Path(tmp_name)
        runs: dict[str, Callable[[Path], dict[str, float]]] = {
            "keepup": lambda p: run_keepup(p, turns, Checkpoints),
            "fixed": lambda p: run_keepup(p, turns, FixedChunkCheckpoints),
            "saver": lambda p: run_sqlitesaver(p, turns),
        }
        names = list(runs)
        for r in range(args.rounds):
            for name in names[r % 3 :] + names[: r % 3]:
                results[name].append(runs[name](tmp / f"{name}-{r}.db"))
    ours, fixed, saver = results["keepup"][0], results["fixed"][0], results["saver"][0]
    print(f"  appended message bytes (MessagePack): {appended:,}; full state every turn: {full:,}")
    rows = [
        (
            "blob bytes per appended KB, Keepup (sealed chunks + tail pieces)",
            f"{ours['blob'] / appended:.2f}",
            "<= 2",
        ),
        ("blob bytes per appended KB, fixed 16-item chunks (before)", f"{fixed['blob'] / appended:.2f}", ""),
        ("stored values / full state, Keepup", f"{100 * ours['stored'] / full:.2f}%", "<= 1.5%"),
        (
            "stored values / full state, fixed 16-item chunks (before)",
            f"{100 * fixed['stored'] / full:.2f}%",
            "",
        ),
        (
            "stored values / full state, SqliteSaver (checkpoint + metadata)",
            f"{100 * saver['stored'] / full:.2f}%",
            "",
        ),
        ("stored values, Keepup / SqliteSaver", f"{ours['stored'] / saver['stored']:.4f}", ""),
        (
            "SQLite files on disk, Keepup / SqliteSaver",
            f"{ours['file'] / saver['file']:.4f}",
            f"{ours['file']:,} / {saver['file']:,} bytes",
        ),
    ]
    for what, value, note in rows:
        print(f"  {what:<66} {value:>10}  {note}")

    def per_save(name: str) -> list[float]:
        return [1e3 * r["seconds"] / turns for r in results[name]]

    for name, label in (
        ("keepup", "Keepup"),
        ("fixed", "fixed 16-item chunks (before)"),
        ("saver", "SqliteSaver"),
    ):
        ms = per_save(name)
        print(
            f"  ms per save, {label:<30} median {statistics.median(ms):.3f} (min {min(ms):.3f}, max {max(ms):.3f})"
        )
    for name, label in (("keepup", "Keepup"), ("fixed", "fixed 16-item chunks (before)")):
        ms = [1e3 * r["read"] for r in results[name]]
        print(
            f"  ms per cold latest() of the last turn, {label:<30} median {statistics.median(ms):.2f} "
            f"(min {min(ms):.2f}, max {max(ms):.2f})"
        )
    ratios = [s / k for k, s in zip(per_save("keepup"), per_save("saver"), strict=True)]
    before = [f / k for k, f in zip(per_save("keepup"), per_save("fixed"), strict=True)]
    print(
        f"  save speed, Keepup / SqliteSaver: median {statistics.median(ratios):.2f}x "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f}, {len(ratios)} rounds)"
    )
    print(
        f"  save speed, Keepup now / fixed chunks: median {statistics.median(before):.2f}x "
        f"(min {min(before):.2f}, max {max(before):.2f}, {len(before)} rounds)"
    )
    print(f"  {load_average()} at end", flush=True)


if __name__ == "__main__":
    main()
