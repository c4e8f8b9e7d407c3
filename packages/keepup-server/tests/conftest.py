"""Fixtures of the server's tests: a real uvicorn server on a loopback port over a store in a
temporary Keepup home, and the demo's thread to walk (no mocks: HTTP over a socket, SQLite on
disk, git for the workspace snapshots)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from keepup import Run, RunStatus, new_id, open_runtime
from keepup.demo import DemoReport, run_demo
from keepup_server import ServerSettings, ServerToken, create_app

TOKEN = "test-token-0123456789abcdef"


@dataclass
class Server:
    """A running server: its base URL, token and Keepup home."""

    url: str
    token: str
    home: Path
    store: str

    def client(self, *, token: str | None = None, **options: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token if token is None else token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **options)


@contextmanager
def running_server(home: Path, *, store: str | None = None, **settings: Any) -> Iterator[Server]:
    """Serve ``create_app`` with uvicorn on 127.0.0.1 (a free port) in a thread, until the block
    ends."""
    store = store or f"sqlite:///{home / 'keepup.db'}"
    settings.setdefault("token", ServerToken(TOKEN, "test", from_env=True))
    settings.setdefault("poll_interval", 0.1)
    app = create_app(ServerSettings(store=store, home=home, **settings))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Server(f"http://127.0.0.1:{port}", settings["token"].value, home, store)
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoReport]:
    """A Keepup home holding the demo's run: a failed thread of checkpoints with snapshots."""
    home = tmp_path_factory.mktemp("home")
    with open_runtime(home=home) as runtime:
        report = run_demo(runtime, home / "workspace")
    return home, report


@pytest.fixture(scope="module")
def demo_server(demo_home: tuple[Path, DemoReport]) -> Iterator[Server]:
    home, _ = demo_home
    with running_server(home) as server:
        yield server


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Server]:
    """A server over an empty store of its own."""
    with running_server(tmp_path) as server:
        yield server


@contextmanager
def run_holding(home: Path, thread_id: str, *, status: RunStatus = RunStatus.RUNNING) -> Iterator[Run]:
    """A run record holding ``thread_id``'s lease the way the runner does (holder
    ``<run id>+<runner token>``), released when the block ends."""
    with open_runtime(home=home) as runtime:
        now = datetime.now(UTC)
        run = runtime.runs.create(
            Run(id=new_id(), thread_id=thread_id, agent="test-agent", status=status, started_at=now)
        )
        lease = runtime.leases.acquire(thread_id, f"{run.id}+runner-token", timedelta(minutes=5))
        try:
            yield run
        finally:
            runtime.leases.release(lease)


@pytest.fixture(scope="session")
def hold() -> Any:
    """:func:`run_holding`, for tests: ``with hold(home, thread_id) as run: ...``."""
    return run_holding


@pytest.fixture(scope="session")
def serve() -> Any:
    """:func:`running_server`, for tests that need their own server settings."""
    return running_server
