"""Who may talk to the server, and how much: the bearer token, the bind rule, the request-size
limit, the response headers, and the last line of defence that turns any unexpected exception
into a 500 without a traceback.

* Every ``/api`` route needs ``Authorization: Bearer <token>``. The token is
  ``$KEEPUP_SERVER_TOKEN`` or, when unset, one generated once into the Keepup home
  (``server-token``, mode 0600, beside the store).
* The server binds 127.0.0.1 by default and refuses any other address unless a token was set
  explicitly (the environment variable) and ``allow_remote`` is given.
* No cookies are ever set or read (so no CSRF) and no CORS headers are sent."""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from keepup import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keepup_server.errors import internal_response, log_unanswered, problem_response

__all__ = [
    "DEFAULT_MAX_BODY",
    "TOKEN_ENV",
    "TOKEN_FILE",
    "ServerToken",
    "check_bind",
    "is_loopback",
    "load_token",
]

TOKEN_ENV = "KEEPUP_SERVER_TOKEN"  # noqa: S105 - a variable name, not a secret
TOKEN_FILE = "server-token"  # noqa: S105 - a file name, not a secret
DEFAULT_MAX_BODY = 64 * 1024
"""Request bodies above this many bytes are refused with 413 (the API's bodies are small flags)."""

MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class ServerToken:
    """The bearer token and where it came from (``$KEEPUP_SERVER_TOKEN`` or a file)."""

    value: str
    source: str
    from_env: bool

    def __repr__(self) -> str:  # never print the secret by accident
        return f"ServerToken(source={self.source!r})"

    def matches(self, presented: str) -> bool:
        return hmac.compare_digest(self.value.encode(), presented.encode())


def load_token(home: Path, environ: dict[str, str] | None = None) -> ServerToken:
    """``$KEEPUP_SERVER_TOKEN`` if set (at least 16 characters), else the token in
    ``<home>/server-token``, created with 32 random bytes and mode 0600 the first time (the home
    is created 0700 if missing). A token file readable by others is refused."""
    env = os.environ if environ is None else environ
    given = env.get(TOKEN_ENV, "")
    if given:
        if len(given.strip()) < MIN_TOKEN_LENGTH or given != given.strip():
            raise ValidationError(
                f"{TOKEN_ENV} must be at least {MIN_TOKEN_LENGTH} characters without surrounding spaces"
            )
        return ServerToken(given, f"${TOKEN_ENV}", from_env=True)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = home / TOKEN_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd) as source:
        if os.fstat(source.fileno()).st_mode & 0o077:
            raise ValidationError(
                f"{path} is readable by other users; make it private (chmod 600) or delete it "
                "to have a new token generated"
            )
        value = source.read().strip()
    if len(value) < MIN_TOKEN_LENGTH:
        raise ValidationError(f"{path} holds no usable token; delete it to have a new one generated")
    return ServerToken(value, str(path), from_env=False)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only loopback addresses (``localhost`` resolves to them)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError as exc:
        raise ValidationError(f"cannot resolve the address to bind, {host!r}: {exc.strerror}") from None
    return bool(infos) and all(ipaddress.ip_address(str(i[4][0]).split("%")[0]).is_loopback for i in infos)


def check_bind(host: str, token: ServerToken, *, allow_remote: bool) -> None:
    """Refuse to bind a non-loopback ``host`` unless the token was set explicitly (in
    ``$KEEPUP_SERVER_TOKEN``) and ``allow_remote`` is given: anyone who can reach the address
    may then try tokens, so the person starting the server must mean it."""
    if is_loopback(host):
        return
    if not allow_remote:
        raise ValidationError(
            f"refusing to listen on {host}, which is reachable from other machines; "
            f"set {TOKEN_ENV} and pass --allow-remote to mean it (use TLS in front of it)"
        )
    if not token.from_env:
        raise ValidationError(f"listening on {host} needs a token you chose: set {TOKEN_ENV}")


class Guard:
    """The outermost layer of the app (pure ASGI, so streaming responses stay streaming):

    * a request body larger than ``max_body`` is refused with 413 (by ``Content-Length`` before
      reading, and by counting when the body is chunked);
    * ``/api`` requests without the right bearer token get 401;
    * every response gets ``nosniff``, a strict Content-Security-Policy, no referrer, no framing;
    * an exception that escapes the app becomes a 500 problem without its traceback."""

    def __init__(self, app: ASGIApp, *, token: ServerToken, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        refused = False  # this layer answered 413 itself: whatever the app sends is dropped

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                headers.extend(_SECURITY_HEADERS)
                message = {**message, "headers": headers}
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        received = 0

        async def counted_receive() -> Message:
            # A body that grows past the limit (chunked, so no Content-Length said so) is answered
            # 413 here, and the app is told the client left: it reads no more and answers nothing.
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    if not started:
                        await self._too_large()(scope, receive, send_with_headers)
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        try:
            await self.app(scope, counted_receive, send_with_headers)
        except Exception as exc:
            if refused:
                return
            if not started:
                await internal_response(exc)(scope, receive, send_with_headers)
            else:  # answered already (Starlette's 500), or half sent: all we can do is log it
                log_unanswered(exc)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> ASGIApp | None:
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return problem_response(400, "http", "Bad request", "Content-Length is not a number")
            if int(length) > self.max_body:
                return self._too_large()
        path = str(scope.get("path", ""))
        if path == "/api" or path.startswith("/api/"):
            scheme, _, presented = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not self.token.matches(presented.strip()):
                return problem_response(
                    401,
                    "unauthorized",
                    "Unauthorized",
                    "send the server's token as `Authorization: Bearer TOKEN` "
                    f"(`keepup serve` prints where it is: {TOKEN_ENV} or {TOKEN_FILE} in the Keepup home)",
                    headers={"WWW-Authenticate": 'Bearer realm="keepup"'},
                )
        return None

    def _too_large(self) -> ASGIApp:
        return problem_response(
            413, "too-large", "Request too large", f"request bodies are limited to {self.max_body} bytes"
        )


_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    (b"cache-control", b"no-store"),
]
