"""``keepup broker``: run the ZeroMQ message broker in the foreground until SIGTERM or Ctrl-C."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from keepup._cli.rendering import err_console

__all__ = ["app"]

app = typer.Typer(rich_markup_mode=None)


@app.callback(invoke_without_command=True)
def broker(
    frontend: Annotated[
        str, typer.Option("--frontend", help="Where publishers connect (XSUB), e.g. tcp://127.0.0.1:5555.")
    ] = "tcp://127.0.0.1:5555",
    backend: Annotated[
        str, typer.Option("--backend", help="Where subscribers and recorders connect (XPUB).")
    ] = "tcp://127.0.0.1:5556",
) -> None:
    """Forward every message from publishers (frontend) to subscribers (backend), unchanged.

    Messages are ZeroMQ multipart [topic, body]; `keepup recorder --source zmq://HOST:PORT`
    records them from the backend. Stops cleanly on SIGTERM or Ctrl-C."""
    from runtime_execution.broker import open_broker

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with open_broker(frontend, backend):
        err_console().print(f"broker: publishers -> {frontend}, subscribers -> {backend}")
        while not stop.wait(0.5):
            pass
    err_console().print("broker: stopped")
