"""A real PgBouncer in front of the test PostgreSQL, for tests and benchmarks: Debian's
``pgbouncer`` package (``apt-get install pgbouncer``; ``.ci/run`` installs it), started on a free
loopback port with a temporary configuration (every database of the server, ``trust``
authentication as the server's own, the pool mode and server pool size asked for) and stopped
after.

Without the binary the tests that need it skip, except under ``CI=true`` where a missing server
is a failure (like every other server backend). PgBouncer refuses to run as root, so as root it
runs as the ``postgres`` system user (``-u``)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

__all__ = ["pgbouncer_binary", "start_pgbouncer"]


def pgbouncer_binary() -> str | None:
    """The ``pgbouncer`` binary, on PATH or where Debian puts it."""
    found = shutil.which("pgbouncer")
    if found is None and Path("/usr/sbin/pgbouncer").is_file():
        found = "/usr/sbin/pgbouncer"
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(message + " (CI=true: a missing test server is a failure)")
    pytest.skip(message)


@contextlib.contextmanager
def start_pgbouncer(
    postgres_url: str, *, pool_mode: str = "transaction", pool_size: int = 2, timeout: float = 30.0
) -> Iterator[str]:
    """Run PgBouncer in front of the server of ``postgres_url`` until the block ends and yield
    ``postgres_url`` pointed at it (same user and database, PgBouncer's port). Each database
    gets at most ``pool_size`` server connections, shared by every client in ``pool_mode``.
    Skips, or fails under CI=true, when the binary is missing or does not start."""
    binary = pgbouncer_binary()
    if binary is None:
        _unavailable("PgBouncer is not installed (apt-get install pgbouncer)")
        raise AssertionError("unreachable")
    parts = urlsplit(postgres_url)
    host, server_port = parts.hostname or "127.0.0.1", parts.port or 5432
    users = {parts.username or "postgres", "postgres", "root"}
    port = _free_port()
    run_as: list[str] = []
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("PgBouncer refuses to run as root and there is no postgres user to run it as")
        run_as = ["-u", "postgres"]
    with tempfile.TemporaryDirectory(prefix="keepup-pgbouncer-") as name:
        directory = Path(name)
        directory.chmod(0o755)  # readable by the postgres user it runs as
        (directory / "users.txt").write_text("".join(f'"{u}" ""\n' for u in sorted(users)))
        (directory / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={host} port={server_port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {directory / 'users.txt'}\n"
            f"pool_mode = {pool_mode}\ndefault_pool_size = {pool_size}\nmax_client_conn = 500\n"
        )
        for path in directory.iterdir():
            path.chmod(0o644)
        log = open(directory / "pgbouncer.log", "wb")  # noqa: SIM115 (closed below)
        proc = subprocess.Popen(
            [binary, *run_as, str(directory / "pgbouncer.ini")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    text = (directory / "pgbouncer.log").read_text(errors="replace")[-2000:]
                    _unavailable(f"PgBouncer did not start: {text}")
                time.sleep(0.1)
            netloc = f"{parts.username or 'postgres'}@127.0.0.1:{port}"
            yield urlunsplit(parts._replace(netloc=netloc))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
