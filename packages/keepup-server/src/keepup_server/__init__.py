"""keepup-server: Keepup's HTTP API, live updates and web page.

``create_app(ServerSettings(...))`` gives the ASGI app; ``keepup serve`` runs it with uvicorn.
The routes answer in the JSON shapes of ``keepup ... --json`` (docs/http-api.md)."""

from keepup_server.app import ServerSettings, create_app
from keepup_server.errors import PROBLEM_MEDIA_TYPE, STATUS_BY_ERROR, NotAvailable, Problem
from keepup_server.live import Broadcaster, LiveEvent
from keepup_server.security import TOKEN_ENV, ServerToken, check_bind, load_token
from keepup_server.services import Services

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "STATUS_BY_ERROR",
    "TOKEN_ENV",
    "Broadcaster",
    "LiveEvent",
    "NotAvailable",
    "Problem",
    "ServerSettings",
    "ServerToken",
    "Services",
    "check_bind",
    "create_app",
    "load_token",
]

__version__ = "0.1.0"
