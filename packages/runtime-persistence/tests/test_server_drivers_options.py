"""The pieces the server drivers share, checked without a server: URL option parsing, the prefix
rule, error messages that hide passwords, and re-chunking of blob streams."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from runtime_core import DriverUnavailableError, StorageError, ValidationError
from runtime_persistence.storage.drivers._servers import (
    bool_option,
    int_option,
    merged_options,
    one_line,
    pieces,
    rechunk,
    split_options,
    storage_failure,
    store_prefix,
    unavailable,
)


def test_owned_options_are_split_from_the_url_and_the_rest_kept() -> None:
    clean, mine = split_options(
        "postgresql://u:p@h:5/db?prefix=ab_&sslmode=require&schema=s", ["prefix", "schema"]
    )
    assert mine == {"prefix": "ab_", "schema": "s"}
    assert clean == "postgresql://u:p@h:5/db?sslmode=require"


def test_an_option_given_twice_is_refused_without_showing_the_password() -> None:
    with pytest.raises(ValidationError) as caught:
        split_options("redis://:hunter2@h/0?prefix=a&prefix=b", ["prefix"])
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("prefix", ["", "a", "abc_123", "x" * 32])
def test_valid_prefixes(prefix: str) -> None:
    assert store_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["A", "a-b", "a.b", "a b", "x" * 33, "é", "a\x00", None, 3])
def test_invalid_prefixes_are_refused(prefix: object) -> None:
    with pytest.raises(ValidationError):
        store_prefix(prefix)


def test_keyword_options_override_url_options_and_unknown_ones_are_refused() -> None:
    assert merged_options({"prefix": "a"}, {"prefix": "b"}, ["prefix"], "x://h") == {"prefix": "b"}
    with pytest.raises(ValidationError, match="pool"):
        merged_options({}, {"pool": 3}, ["prefix"], "x://h")


def test_integer_and_flag_options() -> None:
    assert int_option({"n": "7"}, "n", 1, low=1, high=10) == 7
    assert int_option({}, "n", 4, low=1, high=10) == 4
    for bad in ("0", "11", "x", True):
        with pytest.raises(ValidationError):
            int_option({"n": bad}, "n", 1, low=1, high=10)
    assert bool_option({"f": "1"}, "f") and bool_option({"f": "yes"}, "f")
    assert not bool_option({"f": "0"}, "f") and not bool_option({}, "f")
    with pytest.raises(ValidationError):
        bool_option({"f": "maybe"}, "f")


def test_errors_are_one_line_and_hide_the_password() -> None:
    url = "mysql://me:pa55word@db:3306/x"
    exc = OSError("connect to me:pa55word@db failed\nsecond line")
    assert one_line(exc, url) == "connect to me:***@db failed"
    opened = unavailable("MySQL", url, exc)
    failed = storage_failure("MySQL", url, "put", exc)
    assert isinstance(opened, DriverUnavailableError) and isinstance(failed, StorageError)
    for message in (str(opened), str(failed)):
        assert "pa55word" not in message and "\n" not in message and "***" in message


@given(
    parts=st.lists(st.binary(max_size=40), max_size=12),
    size=st.integers(min_value=1, max_value=17),
)
def test_rechunk_keeps_the_bytes_and_cuts_fixed_pieces(parts: list[bytes], size: int) -> None:
    out = list(rechunk(iter(parts), size))
    assert b"".join(out) == b"".join(parts)
    assert all(len(piece) == size for piece in out[:-1])
    assert not out or 0 < len(out[-1]) <= size


def test_rechunk_refuses_non_bytes() -> None:
    with pytest.raises(ValidationError):
        list(rechunk(iter([b"ok", "text"]), 4))  # type: ignore[list-item]


def test_pieces_respect_the_readers_chunk_size() -> None:
    data = random.Random(1).randbytes(1000)
    out = list(pieces(data, 64))
    assert b"".join(out) == data and all(len(p) <= 64 for p in out)
    assert list(pieces(data, 4096)) == [data]
