"""Run inside a fresh virtualenv that holds one Keepup wheel and its declared dependencies only
(the nox ``isolated`` session makes it, outside the repository, and runs this with ``python -I``).

Checks that the package imports, that every name of its ``__all__`` resolves, that it ships
``py.typed``, and that the layers above it are absent. Per package, it also checks behaviour that
must hold with no optional library installed:

* runtime_persistence: no driver library is importable; memory, SQLite and file stores open and
  round-trip a record and a blob; a ``postgresql://`` store raises DriverUnavailableError naming
  ``runtime-persistence[postgres]``;
* runtime_telemetry: the OpenTelemetry bridge raises DriverUnavailableError naming
  ``runtime-telemetry[otel]``, and the rest works;
* keepup: the ``keepup`` command is installed and runs.
* keepup_server: ``keepup serve`` is found through the ``keepup.commands`` entry point.

Standard library only: it must run before anything else is known to be installed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import tempfile
from importlib.resources import files
from pathlib import Path
from typing import Any, NoReturn

DRIVER_LIBRARIES = (
    "psycopg",
    "psycopg_pool",
    "pymysql",
    "MySQLdb",
    "redis",
    "pymongo",
    "zstandard",
    "cryptography",
)


def fail(message: str) -> NoReturn:
    print(f"isolated check FAILED: {message}", file=sys.stderr)
    raise SystemExit(1)


def check_surface(package: str, absent: list[str]) -> Any:
    here = Path.cwd().resolve()
    module = importlib.import_module(package)
    origin = Path(module.__file__ or "").resolve()
    if "site-packages" not in origin.parts:
        fail(f"{package} was imported from {origin}, not from the virtualenv's site-packages")
    if here in origin.parents:
        fail(f"{package} was imported from the working directory {here}")
    names = getattr(module, "__all__", None)
    if not isinstance(names, list) or not names:
        fail(f"{package}.__all__ is missing or empty")
    unresolved = [n for n in names if not hasattr(module, n)]
    if unresolved:
        fail(f"{package}.__all__ names what it does not define: {unresolved}")
    if not files(package).joinpath("py.typed").is_file():
        fail(f"{package} does not ship py.typed")
    present = [m for m in absent if importlib.util.find_spec(m) is not None]
    if present:
        fail(f"{package} pulled in packages of higher or unrelated layers: {present}")
    print(
        f"{package}: imports from site-packages, {len(names)} public names resolve, absent: {absent or 'n/a'}"
    )
    return module


def check_persistence() -> None:
    present = [lib for lib in DRIVER_LIBRARIES if importlib.util.find_spec(lib) is not None]
    if present:
        fail(f"runtime-persistence without extras installed driver libraries: {present}")
    from runtime_core import DriverUnavailableError
    from runtime_persistence.storage.stores import open_store

    with tempfile.TemporaryDirectory(prefix="keepup-stores-") as tmp:
        urls = ["memory://", f"sqlite:///{tmp}/keepup.db", f"file://{tmp}/files"]
        for url in urls:
            store = open_store(url)
            try:
                version = store.put("isolated", "key", b"value", if_absent=True)
                entry = store.get("isolated", "key")
                if entry is None or entry.value != b"value" or entry.version != version:
                    fail(f"{url}: a record did not round-trip: {entry!r}")
                info = store.put_blob(b"blob bytes")
                if store.get_blob(info.digest) != b"blob bytes":
                    fail(f"{url}: a blob did not round-trip")
            finally:
                store.close()
            print(f"runtime_persistence: {url.split(':', 1)[0]} store round-trips with no driver library")
    try:
        open_store("postgresql://nobody@127.0.0.1:1/none")
    except DriverUnavailableError as exc:
        if "runtime-persistence[postgres]" not in str(exc):
            fail(f"the missing-driver error does not name the extra: {exc}")
        print("runtime_persistence: postgresql:// without psycopg names runtime-persistence[postgres]")
    else:
        fail("opening a postgresql:// store without psycopg did not raise DriverUnavailableError")


def check_telemetry() -> None:
    from runtime_core import DriverUnavailableError
    from runtime_telemetry import MetricsRegistry, StructuredTelemetry, otel_telemetry

    registry = MetricsRegistry()
    StructuredTelemetry(registry).count("isolated.check")
    if registry.counter("isolated.check") != 1:
        fail("runtime_telemetry metrics did not record a count")
    if importlib.util.find_spec("opentelemetry") is not None:
        fail("runtime-telemetry without extras installed opentelemetry")
    try:
        otel_telemetry()
    except DriverUnavailableError as exc:
        if "runtime-telemetry[otel]" not in str(exc):
            fail(f"the missing-otel error does not name the extra: {exc}")
        print("runtime_telemetry: the OpenTelemetry bridge without the extra names runtime-telemetry[otel]")
    else:
        fail("otel_telemetry() without opentelemetry did not raise DriverUnavailableError")


def check_facade() -> None:
    import subprocess

    command = Path(sys.executable).parent / "keepup"
    if not command.exists():
        fail("the keepup-runtime wheel did not install the `keepup` command")
    done = subprocess.run([str(command), "--help"], capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0 or "Usage" not in done.stdout:
        fail(f"`keepup --help` failed ({done.returncode}): {done.stderr[-2000:]}")
    print("keepup: the `keepup` command runs")


def check_server() -> None:
    import subprocess

    command = Path(sys.executable).parent / "keepup"
    done = subprocess.run(
        [str(command), "serve", "--help"], capture_output=True, text=True, check=False, timeout=120
    )
    if done.returncode != 0 or "--port" not in done.stdout:
        fail(f"`keepup serve --help` failed ({done.returncode}): {done.stderr[-2000:]}")
    print("keepup_server: `keepup serve` is found through its entry point")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--package", required=True)
    parser.add_argument("--absent", default="")
    args = parser.parse_args()
    absent = [m for m in args.absent.split(",") if m]
    os.chdir(tempfile.gettempdir())
    check_surface(args.package, absent)
    if args.package == "runtime_persistence":
        check_persistence()
    elif args.package == "runtime_telemetry":
        check_telemetry()
    elif args.package == "keepup":
        check_facade()
    elif args.package == "keepup_server":
        check_server()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
