"""Behaviour the server drivers (PostgreSQL, MySQL/MariaDB, Redis, MongoDB) share beyond the
conformance suite: prefixes keep stores apart, destroy removes a store and nothing else, bad URLs
and unreachable servers fail fast with a typed one-line error, passwords never leak, relaxed
durability works, and a connection lost mid-operation is a StorageError the next call recovers
from. Each test runs on every server whose ``KEEPUP_TEST_*_URL`` is set and skips visibly
otherwise."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime_core import (
    DriverUnavailableError,
    Durability,
    Entry,
    Put,
    ValidationError,
    blob_digest,
)
from runtime_persistence.storage.stores import open_store, open_store_async
from runtime_persistence.testing import TestStore, driver_params, open_test_store, server_url

SERVERS = ("postgres", "mysql", "redis", "mongodb")
LIBRARIES = {"postgres": "psycopg", "mysql": "pymysql", "redis": "redis", "mongodb": "pymongo"}
# A port nothing listens on, so the connection is refused at once.
DEAD_URLS = {
    "postgres": "postgresql://keepup:s3cret-pw@127.0.0.1:1/test",
    "mysql": "mysql://keepup:s3cret-pw@127.0.0.1:1/test",
    "redis": "redis://:s3cret-pw@127.0.0.1:1/0",
    "mongodb": "mongodb://keepup:s3cret-pw@127.0.0.1:1/test?serverSelectionTimeoutMS=500",
}
NS = "server"


def _needs_library(name: str) -> None:
    if importlib.util.find_spec(LIBRARIES[name]) is None:
        pytest.skip(f"the {LIBRARIES[name]} library (extra [{name}]) is not installed")


# the SQL drivers are native async too: run their async twins as well (the others only wrap sync code)
@pytest.fixture(
    params=driver_params(["postgres", "mysql"], modes=("sync", "async")) + driver_params(["redis", "mongodb"])
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestStore]:
    with open_test_store(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture
def other(store: TestStore, tmp_path: Path) -> Iterator[TestStore]:
    with open_test_store(store.name, tmp_path) as opened:
        yield opened


def _with_query(url: str, **params: str) -> str:
    joiner = "&" if "?" in url else "?"
    return url + joiner + "&".join(f"{k}={v}" for k, v in params.items())


# isolation -------------------------------------------------------------------------------------
def test_stores_with_different_prefixes_never_see_each_others_keys_or_blobs(
    store: TestStore, other: TestStore
) -> None:
    mine, theirs = store.driver, other.driver
    for ns in ("a", "a.b", "threads"):
        mine.put(ns, "k", b"mine")
        theirs.put(ns, "k", b"theirs")
        theirs.put(ns, "only-theirs", b"x")
    blob = mine.put_blob(b"my blob")
    for ns in ("a", "a.b", "threads"):
        assert mine.get(ns, "k") == Entry("k", b"mine", 1)
        assert [e.key for e in mine.scan(ns)] == ["k"]
        assert [e.key for e in theirs.scan(ns)] == ["k", "only-theirs"]
    assert not theirs.has_blob(blob.digest)
    assert [b.digest for b in mine.list_blobs()] == [blob.digest]
    assert list(theirs.list_blobs()) == []


def test_destroy_removes_one_store_and_leaves_the_other(store: TestStore, other: TestStore) -> None:
    assert store.url is not None
    store.driver.put(NS, "k", b"v")
    store.driver.put_blob(b"blob")
    other.driver.put(NS, "k", b"kept")
    kept_blob = other.driver.put_blob(b"kept blob")
    destroy: Any = store.driver.destroy
    destroy()
    reopened = open_store(store.url)
    try:
        assert reopened.get(NS, "k") is None
        assert list(reopened.list_blobs()) == []
    finally:
        reopened.close()
    assert other.driver.get(NS, "k") == Entry("k", b"kept", 1)
    assert other.driver.get_blob(kept_blob.digest) == b"kept blob"


def test_a_store_reopened_by_url_sees_its_data(store: TestStore) -> None:
    assert store.url is not None
    store.driver.batch([Put("x", "1", b"one"), Put("y", "2", b"two")])
    again = open_store(store.url)
    try:
        assert again.get("x", "1") == Entry("1", b"one", 1)
        assert again.get("y", "2") == Entry("2", b"two", 1)
    finally:
        again.close()


# opening ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SERVERS)
def test_an_unreachable_server_is_a_fast_one_line_driver_unavailable_error(name: str) -> None:
    _needs_library(name)
    started = time.monotonic()
    with pytest.raises(DriverUnavailableError) as caught:
        open_store(DEAD_URLS[name] if "?" in DEAD_URLS[name] else DEAD_URLS[name] + "?prefix=kt_dead")
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert "s3cret-pw" not in message and "***" in message
    assert "\n" not in message
    assert "127.0.0.1:1" in message
    assert elapsed < 10, f"opening an unreachable {name} server took {elapsed:.1f}s"
    assert not isinstance(caught.value.__cause__, DriverUnavailableError)
    assert caught.value.__suppress_context__  # no library traceback chained under it


@pytest.mark.parametrize("name", ["postgres", "mysql"])
def test_an_unreachable_server_is_the_same_error_for_the_native_async_drivers(name: str) -> None:
    _needs_library(name)
    url = DEAD_URLS[name] + "?prefix=kt_dead"
    with pytest.raises(DriverUnavailableError) as caught:
        asyncio.run(open_store_async(url))
    message = str(caught.value)
    assert "s3cret-pw" not in message and "***" in message
    assert "\n" not in message and "127.0.0.1:1" in message
    assert caught.value.__suppress_context__


@pytest.mark.parametrize("name", SERVERS)
@pytest.mark.parametrize("prefix", ["UPPER", "has-dash", "x" * 33, "a b", "é", "a;drop"])
def test_a_bad_prefix_is_refused_before_connecting(name: str, prefix: str) -> None:
    _needs_library(name)
    with pytest.raises(ValidationError):
        open_store(_with_query(DEAD_URLS[name], prefix=prefix))


@pytest.mark.parametrize("name", SERVERS)
def test_an_unknown_keyword_option_is_refused(name: str) -> None:
    _needs_library(name)
    with pytest.raises(ValidationError):
        open_store(DEAD_URLS[name], no_such_option=1)


@pytest.mark.parametrize("name", ["postgres", "mysql"])
def test_a_prefix_given_twice_is_refused(name: str) -> None:
    _needs_library(name)
    with pytest.raises(ValidationError):
        open_store(_with_query(DEAD_URLS[name], prefix="a") + "&prefix=b")


def test_unknown_mysql_url_options_are_refused() -> None:
    _needs_library("mysql")
    with pytest.raises(ValidationError):
        open_store("mysql://root@127.0.0.1:1/test?colour=blue")


def test_a_mysql_url_without_a_database_is_refused() -> None:
    _needs_library("mysql")
    with pytest.raises(ValidationError):
        open_store("mysql://root@127.0.0.1:1/")


def test_the_url_property_hides_the_password() -> None:
    url = server_url("postgres")
    if url is None:
        pytest.skip("KEEPUP_TEST_POSTGRES_URL is not set: no postgres server to test against")
    _needs_library("postgres")
    scheme, rest = url.split("://", 1)
    userinfo, _, hostpart = rest.rpartition("@")
    if not userinfo or ":" in userinfo:
        pytest.skip("the test server URL has no user, or already carries a password")
    try:
        driver = open_store(_with_query(f"{scheme}://{userinfo}:pw-xyz@{hostpart}", prefix="kt_redact"))
    except DriverUnavailableError:
        pytest.skip("the postgres server checks passwords on this machine")
    try:
        assert "pw-xyz" not in driver.url and "***" in driver.url
    finally:
        driver.destroy()
        driver.close()


# durability ------------------------------------------------------------------------------------
def test_a_relaxed_store_reads_its_writes_and_shares_data_with_a_durable_one(
    store: TestStore, tmp_path: Path
) -> None:
    assert store.url is not None
    relaxed = open_store(store.url, durability=Durability.RELAXED)
    try:
        assert relaxed.durability is Durability.RELAXED
        relaxed.put(NS, "k", b"relaxed")
        assert store.driver.get(NS, "k") == Entry("k", b"relaxed", 1)
        store.driver.put(NS, "k", b"durable", if_version=1)
        assert relaxed.get(NS, "k") == Entry("k", b"durable", 2)
    finally:
        relaxed.close()


# limits ----------------------------------------------------------------------------------------
def test_a_value_of_exactly_the_limit_round_trips_even_when_it_escapes_badly(store: TestStore) -> None:
    limit = store.driver.max_value_size
    if limit > 20 << 20:
        pytest.skip(f"max_value_size is {limit >> 20} MiB; the boundary is checked where it is small")
    # NUL and quote bytes are the worst case for drivers that escape values into statement text
    value = (b"\x00'\\\"" * (limit // 4 + 1))[:limit]
    store.driver.put(NS, "edge", value)
    entry = store.driver.get(NS, "edge")
    assert entry is not None and entry.value == value
    with pytest.raises(ValidationError):
        store.driver.put(NS, "edge", value + b"x")


def test_blob_list_includes_creation_times(store: TestStore) -> None:
    info = store.driver.put_blob(b"timed")
    listed = list(store.driver.list_blobs())
    assert [b.digest for b in listed] == [blob_digest(b"timed")]
    assert listed[0].created_at is not None and listed[0].created_at.tzinfo is not None
    assert info.created_at is not None
    assert abs((listed[0].created_at - info.created_at).total_seconds()) < 5


def test_a_failing_blob_stream_leaves_no_blob(store: TestStore) -> None:
    def broken() -> Iterator[bytes]:
        yield b"x" * (3 << 20)
        raise OSError("the source broke")

    with pytest.raises(OSError):
        store.driver.put_blob_stream(broken())
    assert list(store.driver.list_blobs()) == []
    assert not store.driver.has_blob(blob_digest(b"x" * (3 << 20)))
