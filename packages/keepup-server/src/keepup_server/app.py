"""The ASGI application: the ``/api`` routes, ``/healthz``, ``/openapi.json`` and the web page,
behind the :class:`keepup_server.security.Guard`."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from keepup import keepup_home
from starlette.types import ASGIApp

from keepup_server.api import router
from keepup_server.errors import install_error_handlers
from keepup_server.live import Broadcaster, Watcher
from keepup_server.security import DEFAULT_MAX_BODY, Guard, ServerToken, load_token
from keepup_server.services import Services

__all__ = ["ServerSettings", "create_app"]

WEB_DIR = Path(str(files("keepup_server") / "web"))
WEB_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}


@dataclass(frozen=True)
class ServerSettings:
    """How one server runs: its store (a URL; default as for ``keepup``), the Keepup home, the
    token (default: :func:`keepup_server.security.load_token`), the request-size limit and how
    often live updates look at the store."""

    store: str | None = None
    home: str | os.PathLike[str] | None = None
    token: ServerToken | None = None
    max_body: int = DEFAULT_MAX_BODY
    poll_interval: float = 1.0


def create_app(settings: ServerSettings | None = None) -> ASGIApp:
    """The server as an ASGI app. The store is opened when the app starts (its lifespan) and
    closed when it stops; the token is loaded (or generated) now."""
    settings = settings or ServerSettings()
    home = keepup_home(settings.home)
    token = settings.token or load_token(home)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        services = await Services.open(settings.store, home)
        broadcaster = Broadcaster()
        watcher = Watcher(services, broadcaster, interval=settings.poll_interval)
        app.state.services = services
        app.state.broadcaster = broadcaster
        app.state.watcher = watcher
        watcher.start()
        try:
            yield {}
        finally:
            broadcaster.close()
            await watcher.stop()
            await services.close()

    app = FastAPI(
        title="Keepup",
        summary="Browse, diff, restore and fork what agent runs stored.",
        version=_version(),
        lifespan=lifespan,
        docs_url=None,  # the Swagger page loads scripts from a CDN; /openapi.json is enough
        redoc_url=None,
    )
    install_error_handlers(app)
    app.include_router(router)
    app.openapi_schema = None

    @app.get("/healthz", summary="Whether the server and its store answer", tags=["health"])
    async def healthz(request: Request) -> JSONResponse:
        services: Services = request.app.state.services
        await services.checkpoints.list_threads(limit=1)  # a store that does not answer is a 503
        return JSONResponse({"status": "ok", "version": _version()})

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type=WEB_FILES["index.html"])

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        if name not in WEB_FILES:
            from starlette.exceptions import HTTPException

            raise HTTPException(404, f"no file {name!r}")
        return FileResponse(WEB_DIR / name, media_type=WEB_FILES[name])

    _add_problem_schema(app)
    return Guard(app, token=token, max_body=settings.max_body)


def _add_problem_schema(app: FastAPI) -> None:
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {})["Problem"] = {
                "type": "object",
                "description": "An RFC 9457 problem document (application/problem+json).",
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                },
                "required": ["type", "title", "status"],
            }
            components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            schema["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("keepup-server")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.1.0"
