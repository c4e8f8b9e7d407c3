"""``keepup serve``: run the HTTP API and the web page with uvicorn.

Registered in the ``keepup.commands`` entry-point group, so the ``keepup`` command finds it when
this package is installed, and imports it only when ``serve`` runs."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from keepup import ValidationError, keepup_home

from keepup_server.security import TOKEN_ENV, check_bind, load_token

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "GRACE", "app", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765

GRACE = 3
"""Seconds a stopping server waits for open requests (event streams never end by themselves)."""

app = typer.Typer(rich_markup_mode=None, add_completion=False)


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", metavar="ADDRESS", help="Address to listen on.")
    ] = DEFAULT_HOST,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = DEFAULT_PORT,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="URL",
            help="Store URL (default: keepup's --store, $KEEPUP_STORE_URL, keepup.db).",
        ),
    ] = None,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help=f"Allow a non-loopback address (needs {TOKEN_ENV}; put TLS in front of it).",
        ),
    ] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="uvicorn worker processes.")] = 1,
) -> None:
    """Serve the HTTP API and the web page (prints the address and where the token is)."""
    import os

    import uvicorn

    root = ctx.find_root()
    store = store or (root.params.get("store") if root is not ctx else None) or None
    home = keepup_home()
    token = load_token(home)
    check_bind(host, token, allow_remote=allow_remote)
    if store:
        os.environ["KEEPUP_STORE_URL"] = store  # the workers open the same store
    shown_host = f"[{host}]" if ":" in host else host
    sys.stdout.write(
        f"keepup: serving on http://{shown_host}:{port}/ (the token is in {token.source}; "
        f"the page asks for it once)\n"
    )
    sys.stdout.flush()
    try:
        uvicorn.run(
            "keepup_server.command:asgi_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=GRACE,
        )
    except SystemExit as exc:  # uvicorn exits 1 when it cannot bind
        if exc.code not in (0, None):
            raise ValidationError(
                f"could not listen on {host}:{port} (in use, or not an address here)"
            ) from None
        raise


def asgi_app() -> object:
    """The app uvicorn runs in each worker (a factory: every worker opens its own store)."""
    from keepup_server.app import create_app

    return create_app()
