"""KeepupSaver (keepup-langgraph) beside LangGraph's own savers, in one run: SqliteSaver on
SQLite and PostgresSaver on PostgreSQL, on the four calls a graph makes (put, put_writes,
get_tuple, list).

Each round runs every saver once, in rotating order (``_stats.rounds``), on its own thread that
grows round after round; reported as the median ratio KeepupSaver / peer (ops per second, higher
is better) with its min-max over the rounds, and the load average. The checkpoint is shaped like
a chat graph's: a ``messages`` channel of the last ten ~1 KB messages, a step counter, and the
versions LangGraph keeps; each put changes two channels (``new_versions``), as a real step does.

    uv run python benchmarks/bench_langgraph.py                   # SQLite, and PostgreSQL when
    KEEPUP_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test uv run python benchmarks/bench_langgraph.py

Peers are benchmark-only dependencies (``uv sync --all-groups``)."""

from __future__ import annotations

import argparse
import os
import secrets
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from _stats import Ratio, load_average, median, rounds
from keepup_langgraph import KeepupSaver
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.sqlite import SqliteSaver

MESSAGE = "x" * 1000


class Chain:
    """One LangGraph thread on one saver, extended one checkpoint at a time."""

    def __init__(self, saver: BaseCheckpointSaver[Any], thread: str) -> None:
        self.saver = saver
        self.thread = thread
        self.step = 0
        self.config: dict[str, Any] = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
        self.versions: dict[str, Any] = {}
        self.tasks = 0

    def put(self) -> None:
        i = self.step
        for channel in ("messages", "step"):
            self.versions[channel] = self.saver.get_next_version(self.versions.get(channel), None)
        checkpoint: Any = {
            "v": 4,
            "id": str(uuid6(clock_seq=i)),
            "ts": datetime.now(UTC).isoformat(),
            "channel_values": {
                "messages": [
                    {"role": "user", "content": f"{j}:{MESSAGE}"} for j in range(max(0, i - 9), i + 1)
                ],
                "step": i,
            },
            "channel_versions": dict(self.versions),
            "versions_seen": {"agent": {"messages": self.versions["messages"]}},
            "updated_channels": ["messages", "step"],
        }
        metadata: Any = {"source": "loop", "step": i, "parents": {}}
        new_versions = {"messages": self.versions["messages"], "step": self.versions["step"]}
        self.config = self.saver.put(self.config, checkpoint, metadata, new_versions)  # type: ignore[assignment]
        self.step += 1

    def put_writes(self) -> None:
        self.tasks += 1
        self.saver.put_writes(
            self.config,  # type: ignore[arg-type]
            [("messages", [{"role": "tool", "content": MESSAGE}]), ("step", self.step)],
            f"task-{self.tasks}",
        )

    def latest(self) -> None:
        assert self.saver.get_tuple({"configurable": {"thread_id": self.thread, "checkpoint_ns": ""}})

    def listing(self) -> None:
        assert (
            len(
                list(
                    self.saver.list(
                        {"configurable": {"thread_id": self.thread, "checkpoint_ns": ""}}, limit=10
                    )
                )
            )
            == 10
        )


def compare(
    title: str, ours: Chain, peer: Chain, args: argparse.Namespace
) -> list[tuple[str, Ratio, float, float]]:
    for chain in (ours, peer):  # a thread long enough that list(limit=10) is not the whole of it
        for _ in range(args.warm):
            chain.put()
    out = []
    for op in ("put", "put_writes", "latest", "listing"):

        def make(chain: Chain, op: str = op) -> Callable[[], int]:
            def run() -> int:
                for _ in range(args.ops):
                    getattr(chain, op)()
                return args.ops

            return run

        result = rounds({"keepup": make(ours), "peer": make(peer)}, args.rounds)
        ratio = Ratio.of(result["keepup"], result["peer"])
        out.append((f"{title} {op}", ratio, median(result["keepup"]), median(result["peer"])))
        print(f"  {title} {op}: {ratio}", flush=True)
    return out


@contextmanager
def _pg_schema(url: str) -> Iterator[str]:
    import psycopg

    schema = f"bench_lg_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), ("options", f"-csearch_path={schema}")]
    try:
        yield urlunsplit(parts._replace(query=urlencode(query)))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ops", type=int, default=100, help="calls of each kind per round")
    parser.add_argument("--warm", type=int, default=200, help="checkpoints written before timing")
    args = parser.parse_args()
    print(load_average(), flush=True)
    rows: list[tuple[str, Ratio, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(str(Path(tmp) / "peer.db"), check_same_thread=False)
        peer = SqliteSaver(conn)
        peer.setup()
        (sync,) = conn.execute("PRAGMA synchronous").fetchone()
        print(f"SQLite: SqliteSaver synchronous={sync} (2 = FULL); Keepup durable (WAL, FULL)", flush=True)
        with KeepupSaver.from_url(f"sqlite:///{Path(tmp) / 'keepup.db'}") as ours:
            rows += compare("SQLite", Chain(ours, "t"), Chain(peer, "t"), args)
        conn.close()
    url = os.environ.get("KEEPUP_TEST_POSTGRES_URL")
    if url:
        from langgraph.checkpoint.postgres import PostgresSaver

        parts = urlsplit(url)
        ours_url = urlunsplit(
            parts._replace(
                query=urlencode([*parse_qsl(parts.query), ("prefix", f"kb{secrets.token_hex(4)}_")])
            )
        )
        with _pg_schema(url) as lg_url, PostgresSaver.from_conn_string(lg_url) as pg_peer:
            pg_peer.setup()
            with KeepupSaver.from_url(ours_url) as ours:
                try:
                    rows += compare("PostgreSQL", Chain(ours, "t"), Chain(pg_peer, "t"), args)
                finally:
                    destroy = getattr(ours.checkpoints.driver, "destroy", None)
                    if destroy is not None:
                        destroy()
    print()
    print(load_average())
    print(
        f"| operation | KeepupSaver ops/s | peer ops/s | ratio (median, min-max over {args.rounds} rounds) |"
    )
    print("|---|---|---|---|")
    for name, ratio, ours_rate, peer_rate in rows:
        print(f"| {name} | {ours_rate:,.0f} | {peer_rate:,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
