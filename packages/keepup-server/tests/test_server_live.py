"""Live updates over server-sent events: a checkpoint, a restore or a run written by anyone
(another process, the CLI, this server) reaches every subscriber."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from keepup import open_runtime


@contextmanager
def subscribed(server: Any) -> Iterator[queue.Queue[tuple[str, dict[str, Any]]]]:
    """Read ``/api/events`` on a thread; yields a queue of (event, data) once connected."""
    events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
    connected = threading.Event()
    stop = threading.Event()

    def read() -> None:
        with contextlib.suppress(httpx.TransportError):  # the server stopped at the end of the test
            stream(server)

    def stream(server: Any) -> None:
        with server.client() as client, client.stream("GET", "/api/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            kind = ""
            for line in response.iter_lines():
                if line.startswith(": connected"):
                    connected.set()
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    events.put((kind, json.loads(line[6:])))
                if stop.is_set():
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert connected.wait(10), "the event stream did not open"
    try:
        yield events
    finally:
        stop.set()


def wait_for(
    events: queue.Queue[tuple[str, dict[str, Any]]], kind: str, timeout: float = 10
) -> dict[str, Any]:
    while True:
        got, data = events.get(timeout=timeout)
        if got == kind:
            return data


def test_a_new_checkpoint_written_elsewhere_is_announced(fresh_server: Any) -> None:
    with open_runtime(home=fresh_server.home) as runtime:
        thread = runtime.checkpoints.create_thread("live")
        runtime.checkpoints.save(thread.id, {"x": 1})
    with subscribed(fresh_server) as events:
        wait_for_first_look(fresh_server)
        with open_runtime(home=fresh_server.home) as runtime:
            cp = runtime.checkpoints.save(thread.id, {"x": 2})
        data = wait_for(events, "checkpoint")
    assert data["thread_id"] == thread.id and data["checkpoint"]["id"] == cp.id


def test_a_restore_is_announced_as_a_restore(fresh_server: Any) -> None:
    with open_runtime(home=fresh_server.home) as runtime:
        thread = runtime.checkpoints.create_thread("live")
        first = runtime.checkpoints.save(thread.id, {"x": 1})
        runtime.checkpoints.save(thread.id, {"x": 2})
    with subscribed(fresh_server) as events:
        wait_for_first_look(fresh_server)
        with fresh_server.client() as client:
            new = client.post(f"/api/checkpoints/{first.id}/restore", json={}).json()["checkpoint"]
        data = wait_for(events, "restore")
    assert data["checkpoint"]["id"] == new["id"] and data["checkpoint"]["source"] == "restore"


def test_a_run_change_is_announced_to_every_subscriber(fresh_server: Any, hold: Any) -> None:
    with open_runtime(home=fresh_server.home) as runtime:
        thread = runtime.checkpoints.create_thread("live")
    with subscribed(fresh_server) as one, subscribed(fresh_server) as two:
        wait_for_first_look(fresh_server)
        with hold(fresh_server.home, thread.id) as run:
            first = wait_for(one, "run")
            second = wait_for(two, "run")
    assert first["run"]["id"] == second["run"]["id"] == run.id


def wait_for_first_look(server: Any) -> None:
    """Let the watcher remember the store as it is (its first look publishes nothing)."""
    import time

    time.sleep(0.5)
    assert httpx.get(f"{server.url}/healthz").status_code == 200
