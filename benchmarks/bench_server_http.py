"""keepup-server under load, beside a bare Starlette route doing the same store reads, in one run,
interleaved (issue 16).

Two servers run as uvicorn subprocesses on loopback over the same store:

* **keepup**: the real app (``keepup_server.create_app``: FastAPI, the token check, the body
  limit, the security headers, problem+json errors, the ``keepup.shapes`` bodies);
* **bare**: a bare Starlette app with the same four routes calling the same async repositories
  and building the same JSON, with nothing else (no auth, no validation, no middleware).

``--clients`` concurrent httpx clients send ``--requests`` requests per round, cycling through
list threads, get a thread, get a checkpoint (with state) and diff two checkpoints. Per round and
server: throughput (requests/s) and latency p50/p99. Reported: the median of the rounds with
min-max, and the median ratio keepup / bare (target >= 0.7x).

Then server-sent events: ``--subscribers`` (100) clients hold ``/api/events`` open on the keepup
server while the bench writes ``--events`` new checkpoints, one at a time; reported: the time from
each write to its event at each subscriber (p50/p99; it includes the watcher's poll interval,
0.1 s here) and whether every subscriber got every event.

With ``KEEPUP_TEST_POSTGRES_URL`` set, the load part runs again on PostgreSQL with 2 uvicorn
workers per server (a fresh table prefix, dropped at the end).

    .venv/bin/python benchmarks/bench_server_http.py
    KEEPUP_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python benchmarks/bench_server_http.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import httpx  # noqa: E402
from _stats import Ratio, load_average  # noqa: E402

TOKEN = "bench-token-" + "0" * 20


# ---- the two apps (uvicorn imports this module in its workers: --factory bench_server_http:...) --
def make_keepup() -> Any:
    from keepup_server import ServerSettings, ServerToken, create_app

    return create_app(
        ServerSettings(
            store=os.environ["BENCH_STORE"],
            home=os.environ["BENCH_HOME"],
            token=ServerToken(TOKEN, "bench", from_env=True),
            poll_interval=0.1,
        )
    )


def make_bare() -> Any:
    """Starlette, the same repository calls and JSON shapes, nothing else."""
    from contextlib import asynccontextmanager

    from keepup import AsyncCheckpoints, AsyncLeases, open_store_async
    from keepup.shapes import checkpoint_json, diff_entry_json, lease_json, thread_json
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    store: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        driver = await open_store_async(os.environ["BENCH_STORE"])
        store["leases"] = AsyncLeases(driver)
        store["cps"] = AsyncCheckpoints(driver, leases=store["leases"])
        yield
        await driver.close()

    async def threads(request: Request) -> JSONResponse:
        found = await store["cps"].list_threads(limit=int(request.query_params.get("limit", 50)))
        return JSONResponse({"threads": [thread_json(t) for t in found]})

    async def thread(request: Request) -> JSONResponse:
        tid = request.path_params["tid"]
        cps = store["cps"]
        t, head, lease = await cps.get_thread(tid), await cps.latest(tid), await store["leases"].current(tid)
        body = {"thread": thread_json(t), "head": None if head is None else checkpoint_json(head)}
        return JSONResponse({**body, "lease": lease_json(lease)})

    async def checkpoint(request: Request) -> JSONResponse:
        return JSONResponse(checkpoint_json(await store["cps"].get(request.path_params["cid"]), state=True))

    async def diff(request: Request) -> JSONResponse:
        a, b = request.path_params["a"], request.path_params["b"]
        cps = store["cps"]
        await cps.get(a), await cps.get(b)
        entries = await cps.diff(a, b)
        return JSONResponse({"a": a, "b": b, "changes": [diff_entry_json(e) for e in entries], "files": None})

    return Starlette(
        routes=[
            Route("/api/threads", threads),
            Route("/api/threads/{tid}", thread),
            Route("/api/checkpoints/{cid}", checkpoint),
            Route("/api/checkpoints/{a}/diff/{b}", diff),
        ],
        lifespan=lifespan,
    )


# ---- the harness ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(factory: str, store: str, home: Path, workers: int) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "BENCH_STORE": store, "BENCH_HOME": str(home)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            f"bench_server_http:{factory}",
            "--app-dir",
            str(BENCH_DIR),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--timeout-graceful-shutdown",
            "2",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/api/threads?limit=1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
            break
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{factory} did not start") from None
            time.sleep(0.1)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(30)


def seed(store: str, threads: int, checkpoints: int) -> tuple[list[str], list[tuple[str, str]]]:
    """``threads`` threads of ``checkpoints`` checkpoints (a growing conversation of ~1 KB
    messages); returns the thread ids and (first, last) checkpoint ids per thread."""
    from keepup import Checkpoints, open_store

    filler = "x" * 1000
    tids: list[str] = []
    pairs: list[tuple[str, str]] = []
    driver = open_store(store)
    try:
        cps = Checkpoints(driver)
        for t in range(threads):
            thread = cps.create_thread(f"bench {t}", metadata={"n": t})
            messages: list[dict[str, Any]] = []
            ids = []
            for i in range(checkpoints):
                messages.append({"role": "user" if i % 2 else "assistant", "content": f"{i} {filler}"})
                ids.append(cps.save(thread.id, {"messages": list(messages), "step": i}).id)
            tids.append(thread.id)
            pairs.append((ids[0], ids[-1]))
    finally:
        driver.close()
    return tids, pairs


def paths(tids: list[str], pairs: list[tuple[str, str]]) -> list[str]:
    out = []
    for i, tid in enumerate(tids):
        a, b = pairs[i]
        out += [
            "/api/threads?limit=20",
            f"/api/threads/{tid}",
            f"/api/checkpoints/{b}",
            f"/api/checkpoints/{a}/diff/{b}",
        ]
    return out


async def load(url: str, targets: list[str], clients: int, requests: int) -> tuple[float, list[float]]:
    """``requests`` GETs from ``clients`` concurrent clients; (requests/s, latencies in s)."""
    latencies: list[float] = []
    counter = iter(range(requests))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, limits=limits, timeout=60
    ) as client:

        async def worker() -> None:
            for n in counter:
                start = time.perf_counter()
                response = await client.get(targets[n % len(targets)])
                latencies.append(time.perf_counter() - start)
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code} {response.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return requests / elapsed, latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def compare(
    label: str, store: str, home: Path, workers: int, args: argparse.Namespace, targets: list[str]
) -> None:
    results: dict[str, dict[str, list[float]]] = {
        n: {"rps": [], "p50": [], "p99": []} for n in ("keepup", "bare")
    }
    with (
        server("make_keepup", store, home, workers) as keepup_url,
        server("make_bare", store, home, workers) as bare_url,
    ):
        urls = {"keepup": keepup_url, "bare": bare_url}
        for url in urls.values():  # warm both (imports, connections, caches)
            asyncio.run(load(url, targets, args.clients, max(50, args.requests // 5)))
        for r in range(args.rounds):
            order = ["keepup", "bare"] if r % 2 == 0 else ["bare", "keepup"]
            for name in order:
                rps, lat = asyncio.run(load(urls[name], targets, args.clients, args.requests))
                results[name]["rps"].append(rps)
                results[name]["p50"].append(pct(lat, 0.5) * 1000)
                results[name]["p99"].append(pct(lat, 0.99) * 1000)
    print(
        f"\n{label}: {args.clients} clients, {args.requests} requests per round, {workers} worker(s) per server"
    )
    print(f"{'server':8} {'req/s (median, min-max)':>28} {'p50 ms':>16} {'p99 ms':>16}")
    for name, row in results.items():
        print(
            f"{name:8} {statistics.median(row['rps']):>10.0f} ({min(row['rps']):.0f}-{max(row['rps']):.0f})"
            f"{'':6} {statistics.median(row['p50']):>10.1f} {statistics.median(row['p99']):>16.1f}"
        )
    print(f"keepup / bare throughput: {Ratio.of(results['keepup']['rps'], results['bare']['rps'])}")


async def fan_out(url: str, tid: str, store: str, subscribers: int, events: int) -> tuple[list[float], int]:
    """Hold ``subscribers`` streams open, write ``events`` checkpoints; (latencies s, deliveries)."""
    from keepup import AsyncCheckpoints, open_store_async

    sent: dict[str, float] = {}
    latencies: list[float] = []
    delivered = 0
    ready = asyncio.Event()
    connected = 0
    done = asyncio.Event()
    limits = httpx.Limits(max_connections=subscribers + 4)

    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, limits=limits, timeout=None
    ) as client:

        async def subscriber() -> None:
            nonlocal connected, delivered
            async with client.stream("GET", "/api/events") as response:
                kind = ""
                async for line in response.aiter_lines():
                    if line.startswith(": connected"):
                        connected += 1
                        if connected == subscribers:
                            ready.set()
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind == "checkpoint":
                        cid = json.loads(line[6:])["checkpoint"]["id"]
                        if cid in sent:
                            latencies.append(time.perf_counter() - sent[cid])
                            delivered += 1
                            if delivered == subscribers * events:
                                done.set()
                    if done.is_set():
                        return

        tasks = [asyncio.create_task(subscriber()) for _ in range(subscribers)]
        await asyncio.wait_for(ready.wait(), 60)
        await asyncio.sleep(0.5)  # the watcher's first look
        driver = await open_store_async(store)
        cps = AsyncCheckpoints(driver)
        for i in range(events):
            cp = await cps.save(tid, {"messages": [], "step": 10_000 + i})
            sent[cp.id] = time.perf_counter()
            await asyncio.sleep(0.3)
        with contextlib.suppress(TimeoutError):  # a lost event shows in the delivered count
            await asyncio.wait_for(done.wait(), 30)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await driver.close()
    return latencies, delivered


def drop_prefix(url: str, prefix: str) -> None:
    import psycopg

    base = url.split("?", 1)[0]
    with psycopg.connect(base, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE %s", (prefix + "%",)
        ).fetchall()
        for (name,) in rows:
            conn.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--checkpoints", type=int, default=20)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--events", type=int, default=10)
    args = parser.parse_args()
    if args.rounds < 5:
        parser.error("at least 5 rounds")
    print(load_average())
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        store = f"sqlite:///{home / 'keepup.db'}"
        tids, pairs = seed(store, args.threads, args.checkpoints)
        targets = paths(tids, pairs)
        compare("SQLite", store, home, 1, args, targets)

        with server("make_keepup", store, home, 1) as url:
            latencies, delivered = asyncio.run(fan_out(url, tids[0], store, args.subscribers, args.events))
        print(
            f"\nSSE fan-out: {args.subscribers} subscribers, {args.events} checkpoints: "
            f"{delivered}/{args.subscribers * args.events} events delivered; "
            f"write-to-event latency p50 {pct(latencies, 0.5) * 1000:.0f} ms, p99 {pct(latencies, 0.99) * 1000:.0f} ms "
            "(includes the 0.1 s poll interval)"
        )

        pg = os.environ.get("KEEPUP_TEST_POSTGRES_URL")
        if pg:
            prefix = f"kb{secrets.token_hex(4)}_"
            pg_store = f"{pg}{'&' if '?' in pg else '?'}prefix={prefix}"
            try:
                tids, pairs = seed(pg_store, args.threads, args.checkpoints)
                compare("PostgreSQL", pg_store, home, 2, args, paths(tids, pairs))
            finally:
                drop_prefix(pg, prefix)
        else:
            print("\nPostgreSQL: skipped (KEEPUP_TEST_POSTGRES_URL is not set)")
    print(load_average())


if __name__ == "__main__":
    main()
