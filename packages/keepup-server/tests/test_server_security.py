"""Who may talk to the server and how much: the token, the bind rule, the body limit, the headers,
and a 500 that never carries a traceback."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from keepup import ValidationError
from keepup_server import TOKEN_ENV, ServerToken, check_bind, load_token
from keepup_server.errors import STATUS_BY_ERROR
from keepup_server.security import Guard
from starlette.types import Receive, Scope, Send


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789", "Bearer", "Basic"])
def test_api_routes_need_the_bearer_token(fresh_server: Any, token: str | None) -> None:
    if token is None:
        headers = {}
    elif token in ("Bearer", "Basic"):
        headers = {"Authorization": f"{token} {fresh_server.token}" if token == "Basic" else token}
    else:
        headers = {"Authorization": f"Bearer {token}"}
    for path in ("/api/threads", "/api/events", "/api/runs", "/api"):
        response = httpx.get(f"{fresh_server.url}{path}", headers=headers)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["content-type"] == "application/problem+json"


def test_a_post_without_the_token_changes_nothing(fresh_server: Any) -> None:
    from keepup import open_runtime

    with open_runtime(home=fresh_server.home) as runtime:
        thread = runtime.checkpoints.create_thread("t")
        first = runtime.checkpoints.save(thread.id, {"x": 1})
        last = runtime.checkpoints.save(thread.id, {"x": 2})
    response = httpx.post(f"{fresh_server.url}/api/checkpoints/{first.id}/restore", json={})
    assert response.status_code == 401
    with open_runtime(home=fresh_server.home) as runtime:
        head = runtime.checkpoints.latest(thread.id)
    assert head is not None and head.id == last.id


def test_responses_carry_strict_headers_and_no_cookie_or_cors(fresh_server: Any) -> None:
    with fresh_server.client() as client:
        for path in ("/", "/api/threads", "/nothing"):
            response = client.get(path, headers={"Origin": "https://evil.example"})
            assert response.headers["x-content-type-options"] == "nosniff"
            assert "default-src 'self'" in response.headers["content-security-policy"]
            assert response.headers["x-frame-options"] == "DENY"
            assert "set-cookie" not in response.headers
            assert not any(h.startswith("access-control-") for h in response.headers)


def test_a_declared_oversized_body_is_refused_before_it_is_read(fresh_server: Any) -> None:
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(fresh_server.url)
    request = (
        "POST /api/checkpoints/x/restore HTTP/1.1\r\nHost: t\r\n"
        f"Authorization: Bearer {fresh_server.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {10**9}\r\nConnection: close\r\n\r\n{{}}"
    )
    with socket.create_connection((where.hostname, where.port), timeout=10) as sock:
        sock.sendall(request.encode())  # 2 bytes of the gigabyte it announced: never read on
        answer = sock.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert "application/problem+json" in answer


def test_a_chunked_oversized_body_is_refused_with_413(tmp_path: Path, serve: Any) -> None:
    def chunks() -> Any:
        for _ in range(20):
            yield b"x" * 1024

    with serve(tmp_path, max_body=4096) as server, server.client() as client:
        response = client.post("/api/checkpoints/x/restore", content=chunks())
    assert response.status_code == 413
    assert "4096" in response.json()["detail"]


async def _boom(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("secret internals /etc/keepup line 42")


def test_an_unexpected_exception_is_a_500_without_its_traceback_or_text() -> None:
    import asyncio

    guard = Guard(_boom, token=ServerToken("x" * 20, "test", from_env=True))

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=guard)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/healthz")

    response = asyncio.run(call())
    assert response.status_code == 500
    body = response.json()
    assert body["type"] == "/problems/internal" and body["incident"]
    assert "secret" not in response.text and "Traceback" not in response.text
    assert "RuntimeError" not in response.text


def test_an_exception_in_a_route_of_the_real_app_is_a_problem_500(tmp_path: Path, caplog: Any) -> None:
    import asyncio

    from keepup_server import ServerSettings, create_app

    guard = create_app(ServerSettings(home=tmp_path, token=ServerToken("x" * 20, "test", from_env=True)))
    app: Any = guard.app  # type: ignore[attr-defined]

    @app.get("/api/explode")
    async def explode() -> None:
        raise KeyError("secret internals")

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=guard)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/api/explode", headers={"Authorization": "Bearer " + "x" * 20})

    response = asyncio.run(call())
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "secret" not in response.text and "KeyError" not in response.text
    incident = response.json()["incident"]
    logged = [r for r in caplog.records if incident in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None  # the traceback is in the log, once


def test_a_generated_token_is_private_and_stable(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = load_token(home, environ={})
    again = load_token(home, environ={})
    path = home / "server-token"
    assert first.value == again.value and len(first.value) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert not first.from_env and first.source == str(path)
    assert first.value not in repr(first)


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    load_token(tmp_path, environ={})
    os.chmod(tmp_path / "server-token", 0o644)
    with pytest.raises(ValidationError, match="chmod 600"):
        load_token(tmp_path, environ={})


def test_the_environment_token_wins_and_must_be_long_enough(tmp_path: Path) -> None:
    token = load_token(tmp_path, environ={TOKEN_ENV: "a-long-enough-token-123"})
    assert token.from_env and token.value == "a-long-enough-token-123"
    assert not (tmp_path / "server-token").exists()
    with pytest.raises(ValidationError, match="at least 16"):
        load_token(tmp_path, environ={TOKEN_ENV: "short"})


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_addresses_are_always_allowed(host: str) -> None:
    check_bind(host, ServerToken("t" * 20, "file", from_env=False), allow_remote=False)


def test_a_public_address_needs_the_flag_and_a_chosen_token() -> None:
    generated = ServerToken("t" * 20, "file", from_env=False)
    chosen = ServerToken("t" * 20, TOKEN_ENV, from_env=True)
    with pytest.raises(ValidationError, match="--allow-remote"):
        check_bind("0.0.0.0", chosen, allow_remote=False)
    with pytest.raises(ValidationError, match=TOKEN_ENV):
        check_bind("0.0.0.0", generated, allow_remote=True)
    check_bind("0.0.0.0", chosen, allow_remote=True)


def test_the_error_table_in_the_docs_matches_the_code() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "http-api.md").read_text(encoding="utf-8")
    for cls, problem in STATUS_BY_ERROR:
        row = f"| `{cls.__name__}` | {problem.status} | `/problems/{problem.type}` |"
        assert row in doc, row


def test_every_core_error_raised_in_a_route_answers_its_status_from_the_one_table(tmp_path: Path) -> None:
    """ConflictError, NotFoundError, ValidationError, CorruptionError... raised inside a route of
    the real app come out as problem+json with the status and type of STATUS_BY_ERROR."""
    import asyncio

    from keepup import ConflictError, CorruptionError, NotFoundError, StorageError, ValidationError
    from keepup_server import STATUS_BY_ERROR, ServerSettings, create_app

    guard = create_app(ServerSettings(home=tmp_path, token=ServerToken("x" * 20, "test", from_env=True)))
    app: Any = guard.app  # type: ignore[attr-defined]
    errors = {
        "conflict": ConflictError("another writer moved the head"),
        "missing": NotFoundError("no such thing"),
        "invalid": ValidationError("bad input"),
        "corrupt": CorruptionError("a flipped bit"),
        "storage": StorageError("the disk is read-only"),
    }

    def raising(error: Exception) -> Any:
        async def route() -> None:
            raise error

        return route

    for name, error in errors.items():
        app.add_api_route(f"/api/raise-{name}", raising(error))

    async def call(name: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=guard)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get(f"/api/raise-{name}", headers={"Authorization": "Bearer " + "x" * 20})

    for name, error in errors.items():
        response = asyncio.run(call(name))
        expected = next(problem for cls, problem in STATUS_BY_ERROR if isinstance(error, cls))
        assert response.status_code == expected.status, (name, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith(expected.type), (name, response.json())
    assert asyncio.run(call("conflict")).status_code == 409
