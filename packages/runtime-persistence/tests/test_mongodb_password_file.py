"""MongoDB ``password_file=`` (issue 11, hole 11): the password comes from a file, never from
the URL, so ``ps`` never shows it. No MongoDB server here: these check the URL handling and the
client the driver makes (pymongo connects lazily), not a login."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from runtime_core import DriverUnavailableError, ValidationError

pytest.importorskip("pymongo", reason="the pymongo library (extra [mongodb]) is not installed")

from runtime_persistence.storage.drivers.mongodb import AsyncMongoDriver, MongoDriver
from runtime_persistence.storage.stores import open_store

SECRET = "Mongo-s3cret pw"
# a port nothing listens on, and short timeouts: nothing here waits for a server
URL = "mongodb://keepup@127.0.0.1:9/db?serverSelectionTimeoutMS=200&connectTimeoutMS=200"


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "mongo-password"
    path.write_text(SECRET + "\n", encoding="utf-8")
    return path


def _password_of(driver: MongoDriver | AsyncMongoDriver) -> str | None:
    credentials = driver._client.options.pool_options._credentials
    return None if credentials is None else credentials.password


def test_the_password_is_read_from_the_file_and_the_option_never_reaches_pymongo(password_file: Path) -> None:
    driver = MongoDriver(f"{URL}&password_file={password_file}")
    try:
        assert "password_file" not in driver._client_url
        driver._opened_with = {"password_file": str(password_file)}
        driver._apply_password_file()
        assert _password_of(driver) == SECRET  # the first line, without its newline
        assert SECRET not in driver.url and SECRET not in driver._client_url
    finally:
        driver._client.close()


def test_the_async_driver_reads_the_password_file_too(password_file: Path) -> None:
    async def check() -> str | None:
        driver = AsyncMongoDriver(URL)
        try:
            driver._opened_with = {"password_file": str(password_file)}
            await driver._apply_password_file()
            return _password_of(driver)
        finally:
            await driver._client.close()

    assert asyncio.run(check()) == SECRET


def test_without_the_option_no_password_is_set() -> None:
    driver = MongoDriver(URL)
    try:
        driver._apply_password_file()
        assert _password_of(driver) is None
    finally:
        driver._client.close()


def test_a_missing_password_file_is_a_validation_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ValidationError, match="nope") as info:
        open_store(f"{URL}&password_file={missing}")
    assert SECRET not in str(info.value)


def test_an_unreachable_server_with_a_password_file_never_shows_the_password(password_file: Path) -> None:
    with pytest.raises(DriverUnavailableError) as info:
        open_store(URL, password_file=str(password_file))
    assert SECRET not in str(info.value) and "password_file" not in str(info.value).split("?")[0]


def test_a_user_without_a_password_or_a_password_file_is_still_refused() -> None:
    with pytest.raises(DriverUnavailableError, match="password"):
        open_store(URL)
