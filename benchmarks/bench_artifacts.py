"""Artifact put throughput against writing the same bytes to files with fsync, in one run.

The peer writes each artifact's bytes to its own new file and fsyncs it (and the folder), the
least a durable store has to do. Keepup's :class:`Artifacts` stores the same bytes as new versions
(content in the blob area by digest, then a create-only version record) on each local driver,
durable by default; server drivers are added when their ``KEEPUP_TEST_*_URL`` is set. Every
payload is distinct, so content addressing saves nothing. Run::

    .venv/bin/python benchmarks/bench_artifacts.py      # or: nox -s bench
    .venv/bin/python benchmarks/bench_artifacts.py --count 50 --sizes 4096,1048576
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from runtime_core import Driver
from runtime_persistence.artifact.artifacts import Artifacts
from runtime_persistence.storage.stores import open_store

SERVER_URLS = {
    "postgres": "KEEPUP_TEST_POSTGRES_URL",
    "mysql": "KEEPUP_TEST_MYSQL_URL",
    "redis": "KEEPUP_TEST_REDIS_URL",
    "mongodb": "KEEPUP_TEST_MONGODB_URL",
}


def fsync_files(folder: Path, payloads: list[bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        for i, payload in enumerate(payloads):
            fd = os.open(folder / f"artifact-{i}.bin", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def put_all(driver: Driver, payloads: list[bytes], scope: str) -> None:
    arts = Artifacts(driver)
    for i, payload in enumerate(payloads):
        arts.put(scope, f"out/artifact-{i}.bin", payload)


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100, help="artifacts per measurement")
    parser.add_argument("--sizes", default="4096,65536,1048576", help="payload sizes in bytes")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    base = Path(tempfile.mkdtemp(prefix="keepup-bench-artifacts-"))
    try:
        stores: dict[str, Callable[[int], str]] = {
            "sqlite": lambda n: f"sqlite:///{base / f'store-{n}.db'}",
            "file": lambda n: f"file://{base / f'files-{n}'}",
        }
        for name, env in SERVER_URLS.items():
            url = os.environ.get(env, "").strip()
            if url:
                sep = "&" if "?" in url else "?"
                stores[name] = lambda n, url=url, sep=sep: f"{url}{sep}prefix=kb{os.getpid()}_{n}_"  # type: ignore[misc]
        print(
            f"{'store':<10}{'size':>10}{'keepup MB/s':>14}{'fsync MB/s':>13}{'ratio':>8}  (keepup / fsync throughput; higher is better)"
        )
        run = 0
        for size in sizes:
            for name, make_url in stores.items():
                ours: list[float] = []
                peer: list[float] = []
                for rep in range(args.repeats):
                    run += 1
                    payloads = [os.urandom(size) for _ in range(args.count)]
                    driver = open_store(make_url(run))
                    try:
                        if rep % 2 == 0:
                            ours.append(timed(lambda: put_all(driver, payloads, "bench")))  # noqa: B023
                            peer.append(timed(lambda: fsync_files(base / f"peer-{run}", payloads)))  # noqa: B023
                        else:
                            peer.append(timed(lambda: fsync_files(base / f"peer-{run}", payloads)))  # noqa: B023
                            ours.append(timed(lambda: put_all(driver, payloads, "bench")))  # noqa: B023
                    finally:
                        destroy = getattr(driver, "destroy", None)
                        if destroy is not None and name in SERVER_URLS:
                            destroy()
                        driver.close()
                total = size * args.count / 1e6
                mine, theirs = statistics.median(ours), statistics.median(peer)
                print(
                    f"{name:<10}{size:>10}{total / mine:>14.1f}{total / theirs:>13.1f}{theirs / mine:>8.2f}"
                )
        return 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
