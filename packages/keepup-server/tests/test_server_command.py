"""``keepup serve``, run as a newcomer runs it: the installed ``keepup`` command in a subprocess
on a temporary Keepup home, answering real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from keepup import open_runtime

KEEPUP = Path(sys.executable).parent / "keepup"


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPUP_") or k.startswith("KEEPUP_TEST_")}
    env["KEEPUP_HOME"] = str(home)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_keepup_serve_prints_where_it_listens_and_where_the_token_is(tmp_path: Path) -> None:
    with open_runtime(home=tmp_path) as runtime:
        thread = runtime.checkpoints.create_thread("served")
    port = free_port()
    process = subprocess.Popen(
        [str(KEEPUP), "serve", "--port", str(port)],
        env=environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        token_file = tmp_path / "server-token"
        assert f"http://127.0.0.1:{port}/" in first and str(token_file) in first
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, process.stderr
            time.sleep(0.1)
        token = token_file.read_text().strip()
        listed = httpx.get(
            f"http://127.0.0.1:{port}/api/threads", headers={"Authorization": f"Bearer {token}"}
        )
        assert [t["id"] for t in listed.json()["threads"]] == [thread.id]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)


def test_keepup_serve_refuses_a_public_address_without_the_flag(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(KEEPUP), "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "--allow-remote" in done.stderr and "Traceback" not in done.stderr


def test_keepup_serve_refuses_a_public_address_with_a_generated_token(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(KEEPUP), "serve", "--host", "0.0.0.0", "--allow-remote", "--port", str(free_port())],
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3 and "KEEPUP_SERVER_TOKEN" in done.stderr
