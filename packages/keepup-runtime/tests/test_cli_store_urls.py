"""Issue 11, hole 11: store URLs on the command line. A malformed URL is a usage mistake (exit
code INVALID), not "an internal error"; a password in a URL never shows in output or errors, and
can come from somewhere ``ps`` does not show."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from keepup._cli.exit_codes import ExitCode
from keepup.cli import app
from keepup.demo import DemoReport, next_commands
from runtime_core import RunStatus
from runtime_persistence import redact_url
from typer.testing import CliRunner, Result

SECRET = "Sekr3tPw"


def invoke(home: Path, *args: str, env: dict[str, str | None] | None = None) -> Result:
    base: dict[str, str | None] = {
        "KEEPUP_HOME": str(home),
        "KEEPUP_STORE_URL": None,
        "KEEPUP_DEBUG": None,
        "HOME": str(home.parent),
    }
    return CliRunner().invoke(app, list(args), env={**base, **(env or {})})


def server_url(name: str) -> str:
    url = os.environ.get(f"KEEPUP_TEST_{name}_URL")
    if not url:
        pytest.skip(f"KEEPUP_TEST_{name}_URL is not set")
    return url


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://",
        "postgres://",
        "postgresql://[bad/db",
        "mysql://",
        "mysql://host:notaport/db",
        "redis://",
        "redis://host:notaport",
        "redis://host:notaport/0",
        "mongodb://",
    ],
)
def test_a_malformed_store_url_is_a_usage_error(tmp_path: Path, url: str) -> None:
    result = invoke(tmp_path / "home", "--store", url, "store", "info", "--json")
    assert result.exit_code == ExitCode.INVALID, result.stderr
    assert "internal error" not in result.stderr and "bug in keepup" not in result.stderr


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ("postgresql://h/db?password=pw&sslmode=require", "postgresql://h/db?password=***&sslmode=require"),
        ("postgresql://h/db?sslmode=require&PWD=pw", "postgresql://h/db?sslmode=require&PWD=***"),
        ("mysql://u:pw@h/db?passwd=pw2", "mysql://u:***@h/db?passwd=***"),
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("postgresql://h/db?passfile=/run/pw", "postgresql://h/db?passfile=/run/pw"),
        ("postgresql://[bad/db?password=pw", "postgresql://[bad/db?password=***"),
    ],
)
def test_redact_url_masks_every_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_store_info_json_masks_a_password_given_as_a_query_option(tmp_path: Path) -> None:
    url = server_url("POSTGRES")
    with_password = url + ("&" if "?" in url else "?") + f"password={SECRET}&prefix=urlmask"
    result = invoke(tmp_path / "home", "--store", with_password, "store", "info", "--json")
    assert result.exit_code == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "password=***" in json.loads(result.stdout)["url"]


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://127.0.0.1:1/db?password={SECRET}",
        f"postgresql://u:{SECRET}@127.0.0.1:1/db",
        f"postgresql://127.0.0.1:1/db?connect_timeout=1&password={SECRET}&nosuchoption=1",
        f"mysql://root:{SECRET}@127.0.0.1:1/db",
        f"mysql://root@127.0.0.1:1/db?password={SECRET}",
        f"redis://:{SECRET}@127.0.0.1:1/0",
        f"redis://127.0.0.1:notaport/0?password={SECRET}",
        f"postgresql://[bad/db?password={SECRET}",
    ],
)
def test_errors_never_show_the_password(tmp_path: Path, url: str) -> None:
    result = invoke(tmp_path / "home", "--store", url, "store", "info")
    assert result.exit_code != 0
    assert SECRET not in result.stdout + result.stderr, result.stderr


def test_the_demos_suggested_commands_do_not_print_the_password() -> None:
    report = DemoReport(
        thread_id="t",
        run_id="r",
        status=RunStatus.FAILED,
        error=None,
        workspace="/w",
        store_url="x",
        checkpoints=(),
        reports=(),
        last_good="g",
        failed="f",
    )
    commands = next_commands(report, f"postgresql://u:{SECRET}@h/db?password={SECRET}")
    assert commands
    for command in commands:
        assert SECRET not in command.command
        assert "postgresql://u:***@h/db?password=***" in command.command


def test_a_mysql_password_can_come_from_a_file(tmp_path: Path) -> None:
    """The file's password is sent (the server refuses a wrong one) and never shown."""
    url = server_url("MYSQL")
    secret_file = tmp_path / "pw"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)
    sep = "&" if "?" in url else "?"
    result = invoke(tmp_path / "home", "--store", f"{url}{sep}password_file={secret_file}", "store", "info")
    assert result.exit_code == ExitCode.DRIVER_UNAVAILABLE, result.stderr
    assert "denied" in result.stderr.lower() and SECRET not in result.stderr
    missing = invoke(
        tmp_path / "home", "--store", f"{url}{sep}password_file={tmp_path}/nosuch", "store", "info"
    )
    assert missing.exit_code == ExitCode.INVALID, missing.stderr


def test_a_redis_password_can_come_from_a_file(tmp_path: Path) -> None:
    """A Redis ACL user whose password is only in a file: the store opens with the file and is
    refused with a wrong one, and the password is never shown."""
    import redis

    url = server_url("REDIS")
    admin = redis.Redis.from_url(url)
    user = f"keepup_pwfile_{os.getpid()}"
    admin.acl_setuser(user, enabled=True, passwords=[f"+{SECRET}"], keys=["*"], commands=["+@all"])
    try:
        secret_file = tmp_path / "pw"
        secret_file.write_text(SECRET + "\n")
        wrong_file = tmp_path / "wrong"
        wrong_file.write_text("not-it\n")
        parts = url.split("://", 1)
        base = f"{parts[0]}://{user}@{parts[1]}"
        sep = "&" if "?" in base else "?"
        good = invoke(
            tmp_path / "home", "--store", f"{base}{sep}password_file={secret_file}", "store", "info", "--json"
        )
        assert good.exit_code == 0, good.stderr
        assert SECRET not in good.stdout
        bad = invoke(tmp_path / "home", "--store", f"{base}{sep}password_file={wrong_file}", "store", "info")
        assert bad.exit_code == ExitCode.DRIVER_UNAVAILABLE, bad.stderr
        assert "not-it" not in bad.stderr
        # the same option given as a keyword of open_store, not in the URL
        from runtime_core import DriverUnavailableError
        from runtime_persistence import open_store

        open_store(base, password_file=str(secret_file)).close()
        with pytest.raises(DriverUnavailableError):
            open_store(base, password_file=str(wrong_file))
    finally:
        admin.acl_deluser(user)
        admin.close()


def test_options_are_split_off_a_url_without_a_host() -> None:
    """``postgresql:///db?host=/run/pg`` (a Unix socket) keeps its ``//`` when Keepup takes its
    own options off: ``postgresql:/db`` would be a different, broken URL."""
    from runtime_persistence.storage.drivers._servers import split_options

    assert split_options("postgresql:///db?host=/run/pg&prefix=a_", ["prefix"]) == (
        "postgresql:///db?host=%2Frun%2Fpg",
        {"prefix": "a_"},
    )
