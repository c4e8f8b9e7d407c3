"""The driver conformance suite: every driver, built-in or third-party, must pass it.

Use it from pytest by subclassing :class:`DriverConformance` and overriding its ``store`` fixture
to yield a fresh :class:`~runtime_persistence.testing.TestStore`, or get a ready class for the
backends this package knows with :func:`conformance_class`::

    from runtime_persistence.testing import DriverConformance, TestStore

    class TestMyDriverConformance(DriverConformance):
        @pytest.fixture
        def store(self, tmp_path):
            driver = MyDriver.from_url(url)
            yield TestStore("mine", driver, url)   # url: None if other processes cannot open it
            driver.destroy(); driver.close()

The multi-process tests run only when ``store.url`` is set; the isolation test only when the
``second_store`` fixture yields a separate store on the same backend. Tests marked ``slow`` (the
1 GiB blob) still belong to the suite; deselect them with ``-m "not slow"`` only while iterating.
"""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime_core import (
    MAX_KEY_BYTES,
    BlobInfo,
    ConflictError,
    Delete,
    Driver,
    Entry,
    NotFoundError,
    Put,
    ValidationError,
    blob_digest,
)

from runtime_persistence.testing._processes import NS, cas_increment_worker, create_once_worker, run_workers
from runtime_persistence.testing.backends import TestStore, driver_params, open_test_store

__all__ = ["BAD_KEYS", "BAD_NAMESPACES", "ORDER_KEYS", "DriverConformance", "conformance_class"]


# Keys whose UTF-8 byte order differs from naive orders: prefixes of each other, a trailing space
# (PAD SPACE collations treat "a " as "a"), case, ASCII punctuation, Latin-1, BMP above the
# surrogates, and an astral character (which sorts after U+FFFF in UTF-8 but before it in UTF-16).
ORDER_KEYS: tuple[str, ...] = (
    "a",
    "a ",
    "a/",
    "a/b",
    "a0",
    "aa",
    "aaa",
    "ab",
    "abc",
    "A",
    "B",
    "b",
    "Z",
    "_",
    "~",
    "\x01",
    "\x7f",
    "é",
    "\u00ff",
    "\u0100",
    "\u4e2d",
    "\ue000",
    "\uffff",
    "\U0001f600",
    "\U0001f600a",
    "\U0010ffff",
)

BAD_KEYS: tuple[Any, ...] = (
    "",
    "x" * (MAX_KEY_BYTES + 1),
    "é" * (MAX_KEY_BYTES // 2 + 1),
    "a\x00b",
    "\ud800",
    123,
    b"bytes",
    None,
)
BAD_NAMESPACES: tuple[Any, ...] = ("", "Upper", "-lead", "x" * 64, "a\x00", "a b", "ü", 7, None)


def _utf8_sorted(keys: list[str] | tuple[str, ...]) -> list[str]:
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def _keys(entries: Iterator[Entry]) -> list[str]:
    return [e.key for e in entries]


class DriverConformance:
    """The contract of :class:`runtime_core.Driver`, one behaviour per test."""

    # fixtures a subclass provides ------------------------------------------------------------
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[TestStore]:
        """Override: yield a fresh, empty :class:`TestStore`, and destroy it afterwards."""
        raise NotImplementedError("subclasses of DriverConformance override the `store` fixture")

    @pytest.fixture
    def second_store(self, tmp_path: Path) -> TestStore:
        """Override (optional): yield another fresh store on the same backend/server, distinct
        from ``store`` (another prefix, database or directory)."""
        pytest.skip("this suite has no second store to check isolation against")

    @pytest.fixture
    def driver(self, store: TestStore) -> Driver:
        return store.driver

    # properties ------------------------------------------------------------------------------
    def test_driver_satisfies_the_protocol(self, driver: Driver) -> None:
        assert isinstance(driver, Driver)
        assert isinstance(driver.atomic_batch, bool)
        assert driver.max_value_size >= 1 << 20
        assert isinstance(driver.url, str)

    # get / put / versions --------------------------------------------------------------------
    def test_get_of_missing_key_is_none(self, driver: Driver) -> None:
        assert driver.get(NS, "missing") is None

    def test_put_creates_version_one_and_each_put_adds_one(self, driver: Driver) -> None:
        assert driver.put(NS, "k", b"v1") == 1
        assert driver.put(NS, "k", b"v2") == 2
        assert driver.put(NS, "k", b"v3") == 3
        assert driver.get(NS, "k") == Entry("k", b"v3", 3)

    def test_values_round_trip_every_byte(self, driver: Driver) -> None:
        value = bytes(range(256)) * 4 + b"\x00\x00"
        driver.put(NS, "bytes", value)
        driver.put(NS, "empty", b"")
        assert driver.get(NS, "bytes") == Entry("bytes", value, 1)
        assert driver.get(NS, "empty") == Entry("empty", b"", 1)

    def test_a_value_of_one_mib_round_trips(self, driver: Driver) -> None:
        value = os.urandom(1 << 20)
        driver.put(NS, "big", value)
        entry = driver.get(NS, "big")
        assert entry is not None and entry.value == value

    def test_namespaces_are_separate(self, driver: Driver) -> None:
        driver.put("one", "k", b"1")
        driver.put("two", "k", b"2")
        assert driver.get("one", "k") == Entry("k", b"1", 1)
        assert driver.get("two", "k") == Entry("k", b"2", 1)
        assert _keys(driver.scan("one")) == ["k"]
        driver.delete("one", "k")
        assert driver.get("two", "k") == Entry("k", b"2", 1)

    def test_namespace_that_is_a_prefix_of_another_is_separate(self, driver: Driver) -> None:
        driver.put("ns", "k", b"1")
        driver.put("ns.sub", "k", b"2")
        driver.put("ns_", "k", b"3")
        assert _keys(driver.scan("ns")) == ["k"]
        assert driver.get("ns", "k") == Entry("k", b"1", 1)

    # create-only -----------------------------------------------------------------------------
    def test_create_only_succeeds_on_a_new_key(self, driver: Driver) -> None:
        assert driver.put(NS, "new", b"v", if_absent=True) == 1

    def test_create_only_on_an_existing_key_conflicts_and_writes_nothing(self, driver: Driver) -> None:
        driver.put(NS, "k", b"first")
        with pytest.raises(ConflictError):
            driver.put(NS, "k", b"second", if_absent=True)
        assert driver.get(NS, "k") == Entry("k", b"first", 1)

    def test_create_only_after_delete_succeeds_with_version_one(self, driver: Driver) -> None:
        driver.put(NS, "k", b"a")
        driver.put(NS, "k", b"b")
        assert driver.delete(NS, "k") is True
        assert driver.put(NS, "k", b"c", if_absent=True) == 1

    # compare-and-set -------------------------------------------------------------------------
    def test_compare_and_set_with_current_version_succeeds(self, driver: Driver) -> None:
        driver.put(NS, "k", b"a")
        assert driver.put(NS, "k", b"b", if_version=1) == 2
        assert driver.put(NS, "k", b"c", if_version=2) == 3
        assert driver.get(NS, "k") == Entry("k", b"c", 3)

    def test_compare_and_set_with_stale_version_conflicts_and_writes_nothing(self, driver: Driver) -> None:
        driver.put(NS, "k", b"a")
        driver.put(NS, "k", b"b")
        with pytest.raises(ConflictError):
            driver.put(NS, "k", b"stale", if_version=1)
        with pytest.raises(ConflictError):
            driver.put(NS, "k", b"future", if_version=3)
        assert driver.get(NS, "k") == Entry("k", b"b", 2)

    def test_compare_and_set_on_a_missing_key_conflicts_and_creates_nothing(self, driver: Driver) -> None:
        with pytest.raises(ConflictError):
            driver.put(NS, "nope", b"v", if_version=1)
        assert driver.get(NS, "nope") is None

    def test_both_conditions_at_once_are_refused(self, driver: Driver) -> None:
        with pytest.raises(ValidationError):
            driver.put(NS, "k", b"v", if_absent=True, if_version=1)
        assert driver.get(NS, "k") is None

    @pytest.mark.parametrize("bad", [0, -1, True, "1", 1.0])
    def test_invalid_expected_versions_are_refused(self, driver: Driver, bad: Any) -> None:
        driver.put(NS, "k", b"v")
        with pytest.raises(ValidationError):
            driver.put(NS, "k", b"w", if_version=bad)
        with pytest.raises(ValidationError):
            driver.delete(NS, "k", if_version=bad)
        assert driver.get(NS, "k") == Entry("k", b"v", 1)

    # delete ----------------------------------------------------------------------------------
    def test_delete_removes_and_reports_whether_it_did(self, driver: Driver) -> None:
        driver.put(NS, "k", b"v")
        assert driver.delete(NS, "k") is True
        assert driver.get(NS, "k") is None
        assert driver.delete(NS, "k") is False
        assert _keys(driver.scan(NS)) == []

    def test_delete_with_the_current_version_removes(self, driver: Driver) -> None:
        driver.put(NS, "k", b"v")
        driver.put(NS, "k", b"w")
        assert driver.delete(NS, "k", if_version=2) is True
        assert driver.get(NS, "k") is None

    def test_delete_with_a_stale_version_conflicts_and_keeps_the_key(self, driver: Driver) -> None:
        driver.put(NS, "k", b"v")
        driver.put(NS, "k", b"w")
        with pytest.raises(ConflictError):
            driver.delete(NS, "k", if_version=1)
        assert driver.get(NS, "k") == Entry("k", b"w", 2)

    def test_delete_of_a_missing_key_with_a_version_conflicts(self, driver: Driver) -> None:
        with pytest.raises(ConflictError):
            driver.delete(NS, "missing", if_version=1)

    # key order and scans ---------------------------------------------------------------------
    def _fill(self, driver: Driver, keys: list[str] | tuple[str, ...]) -> None:
        for key in keys:  # insertion order deliberately not sorted
            driver.put(NS, key, key.encode("utf-8"))

    def test_scan_returns_keys_in_utf8_byte_order(self, driver: Driver) -> None:
        self._fill(driver, tuple(reversed(ORDER_KEYS)))
        entries = list(driver.scan(NS))
        assert [e.key for e in entries] == _utf8_sorted(ORDER_KEYS)
        assert all(e.value == e.key.encode("utf-8") and e.version == 1 for e in entries)

    def test_reverse_scan_returns_keys_in_descending_byte_order(self, driver: Driver) -> None:
        self._fill(driver, ORDER_KEYS)
        assert _keys(driver.scan(NS, reverse=True)) == list(reversed(_utf8_sorted(ORDER_KEYS)))

    def test_trailing_space_keys_are_distinct(self, driver: Driver) -> None:
        driver.put(NS, "a", b"1")
        driver.put(NS, "a ", b"2", if_absent=True)
        driver.put(NS, "A", b"3", if_absent=True)
        assert driver.get(NS, "a") == Entry("a", b"1", 1)
        assert driver.get(NS, "a ") == Entry("a ", b"2", 1)
        assert driver.get(NS, "A") == Entry("A", b"3", 1)

    @pytest.mark.parametrize("prefix", ["a", "a/", "aa", "ab", "\U0001f600", "é", "A", "zz"])
    def test_prefix_scan_returns_exactly_the_keys_with_that_prefix(self, driver: Driver, prefix: str) -> None:
        self._fill(driver, ORDER_KEYS)
        expected = _utf8_sorted([k for k in ORDER_KEYS if k.startswith(prefix)])
        assert _keys(driver.scan(NS, prefix=prefix)) == expected
        assert _keys(driver.scan(NS, prefix=prefix, reverse=True)) == list(reversed(expected))

    def test_prefix_scan_with_characters_special_to_sql_like(self, driver: Driver) -> None:
        self._fill(driver, ["a%b", "a%", "a_c", "abc", "a\\x", "a\\", "a*", "a?"])
        assert _keys(driver.scan(NS, prefix="a%")) == ["a%", "a%b"]
        assert _keys(driver.scan(NS, prefix="a_")) == ["a_c"]
        assert _keys(driver.scan(NS, prefix="a\\")) == ["a\\", "a\\x"]
        assert _keys(driver.scan(NS, prefix="a*")) == ["a*"]

    def test_scan_after_and_before_are_exclusive_bounds(self, driver: Driver) -> None:
        self._fill(driver, ORDER_KEYS)
        ordered = _utf8_sorted(ORDER_KEYS)
        lo, hi = ordered[3], ordered[-4]
        expected = ordered[4:-4]
        assert _keys(driver.scan(NS, after=lo, before=hi)) == expected
        assert _keys(driver.scan(NS, after=lo, before=hi, reverse=True)) == list(reversed(expected))
        assert _keys(driver.scan(NS, after=ordered[-1])) == []
        assert _keys(driver.scan(NS, before=ordered[0])) == []

    def test_scan_bounds_need_not_be_stored_keys(self, driver: Driver) -> None:
        self._fill(driver, ["b", "d", "f"])
        assert _keys(driver.scan(NS, after="c", before="e")) == ["d"]
        assert _keys(driver.scan(NS, after="a", before="g", reverse=True)) == ["f", "d", "b"]

    def test_scan_combines_prefix_and_bounds(self, driver: Driver) -> None:
        self._fill(driver, ORDER_KEYS)
        ordered_a = _utf8_sorted([k for k in ORDER_KEYS if k.startswith("a")])
        assert _keys(driver.scan(NS, prefix="a", after="a/")) == [k for k in ordered_a if k > "a/"]
        assert _keys(driver.scan(NS, prefix="a", before="aa", reverse=True)) == list(
            reversed([k for k in ordered_a if k < "aa"])
        )

    def test_scan_limit(self, driver: Driver) -> None:
        self._fill(driver, ORDER_KEYS)
        ordered = _utf8_sorted(ORDER_KEYS)
        assert _keys(driver.scan(NS, limit=5)) == ordered[:5]
        assert _keys(driver.scan(NS, limit=5, reverse=True)) == list(reversed(ordered))[:5]
        assert _keys(driver.scan(NS, limit=0)) == []
        assert _keys(driver.scan(NS, limit=1000)) == ordered

    @pytest.mark.parametrize("page", [1, 3, 7])
    def test_scan_pages_forward_with_after(self, driver: Driver, page: int) -> None:
        keys = [f"item/{i:03d}" for i in range(23)] + ["itemz", "other"]
        self._fill(driver, keys)
        seen: list[str] = []
        after: str | None = None
        while True:
            batch = _keys(driver.scan(NS, prefix="item/", after=after, limit=page))
            assert len(batch) <= page
            if not batch:
                break
            seen.extend(batch)
            after = batch[-1]
        assert seen == sorted(k for k in keys if k.startswith("item/"))

    @pytest.mark.parametrize("page", [1, 4, 10])
    def test_scan_pages_backward_with_before(self, driver: Driver, page: int) -> None:
        keys = [f"item/{i:03d}" for i in range(23)] + ["item", "itemz"]
        self._fill(driver, keys)
        seen: list[str] = []
        before: str | None = None
        while True:
            batch = _keys(driver.scan(NS, prefix="item/", before=before, reverse=True, limit=page))
            assert len(batch) <= page
            if not batch:
                break
            seen.extend(batch)
            before = batch[-1]
        assert seen == sorted((k for k in keys if k.startswith("item/")), reverse=True)

    def test_scan_of_an_empty_namespace_is_empty(self, driver: Driver) -> None:
        assert list(driver.scan("never-used")) == []
        assert list(driver.scan("never-used", reverse=True, prefix="x", limit=3)) == []

    def test_scan_returns_values_and_versions(self, driver: Driver) -> None:
        driver.put(NS, "a", b"1")
        driver.put(NS, "a", b"2")
        driver.put(NS, "b", b"3")
        assert list(driver.scan(NS)) == [Entry("a", b"2", 2), Entry("b", b"3", 1)]

    def test_scan_of_many_keys_is_complete_and_ordered(self, driver: Driver) -> None:
        keys = [f"{i:05d}" for i in range(0, 1500, 3)] + [f"{i:04d}" for i in range(0, 600, 7)]
        driver.batch([Put(NS, k, k.encode()) for k in keys])
        assert _keys(driver.scan(NS)) == sorted(keys)
        assert _keys(driver.scan(NS, reverse=True)) == sorted(keys, reverse=True)

    # batch -----------------------------------------------------------------------------------
    def test_batch_applies_ops_in_order_and_returns_each_result(self, driver: Driver) -> None:
        driver.put(NS, "gone", b"x")
        results = driver.batch(
            [
                Put(NS, "a", b"1", if_absent=True),
                Put(NS, "a", b"2", if_version=1),
                Put("other", "b", b"3"),
                Delete(NS, "gone"),
                Delete(NS, "never"),
            ]
        )
        assert results == [1, 2, 1, True, False]
        assert driver.get(NS, "a") == Entry("a", b"2", 2)
        assert driver.get("other", "b") == Entry("b", b"3", 1)
        assert driver.get(NS, "gone") is None

    def test_empty_batch_is_a_no_op(self, driver: Driver) -> None:
        assert driver.batch([]) == []

    def test_batch_that_loses_a_condition_raises_conflict_and_writes_nothing(self, driver: Driver) -> None:
        if not driver.atomic_batch:
            pytest.skip("this driver's batches are not atomic")
        driver.put(NS, "existing", b"old")
        driver.put(NS, "doomed", b"keep")
        with pytest.raises(ConflictError):
            driver.batch(
                [
                    Put(NS, "fresh", b"1"),
                    Put(NS, "existing", b"new", if_version=1),
                    Delete(NS, "doomed"),
                    Put(NS, "existing", b"clash", if_absent=True),
                ]
            )
        assert driver.get(NS, "fresh") is None
        assert driver.get(NS, "existing") == Entry("existing", b"old", 1)
        assert driver.get(NS, "doomed") == Entry("doomed", b"keep", 1)

    def test_batch_of_distinct_keys_returns_each_result(self, driver: Driver) -> None:
        # the shape of a checkpoint commit (drivers may run it as one fused statement)
        driver.put(NS, "head", b"h0")
        driver.put(NS, "gone", b"x")
        driver.put(NS, "gone-at-1", b"x")
        results = driver.batch(
            [
                Put(NS, "blob", b"b"),
                Put(NS, "record", b"r", if_absent=True),
                Put(NS, "head", b"h1", if_version=1),
                Delete(NS, "gone"),
                Delete(NS, "never"),
                Delete(NS, "gone-at-1", if_version=1),
            ]
        )
        assert results == [1, 1, 2, True, False, True]
        assert driver.get(NS, "record") == Entry("record", b"r", 1)
        assert driver.get(NS, "head") == Entry("head", b"h1", 2)
        assert driver.get(NS, "gone") is None and driver.get(NS, "gone-at-1") is None

    @pytest.mark.parametrize("lost", ["if_absent", "if_version", "delete_if_version"])
    def test_batch_of_distinct_keys_that_loses_one_condition_writes_nothing(
        self, driver: Driver, lost: str
    ) -> None:
        if not driver.atomic_batch:
            pytest.skip("this driver's batches are not atomic")
        driver.put(NS, "head", b"h0")
        driver.put(NS, "taken", b"t")
        driver.put(NS, "doomed", b"d")
        ops: list[Put | Delete] = [
            Put(NS, "blob", b"b"),
            Put(NS, "record", b"r", if_absent=True),
            Put(NS, "head", b"h1", if_version=1),
            Delete(NS, "doomed"),
        ]
        if lost == "if_absent":
            ops.append(Put(NS, "taken", b"clash", if_absent=True))
        elif lost == "if_version":
            ops[2] = Put(NS, "head", b"h1", if_version=7)
        else:
            ops.append(Delete(NS, "taken", if_version=7))
        with pytest.raises(ConflictError):
            driver.batch(ops)
        assert driver.get(NS, "blob") is None
        assert driver.get(NS, "record") is None
        assert driver.get(NS, "head") == Entry("head", b"h0", 1)
        assert driver.get(NS, "doomed") == Entry("doomed", b"d", 1)
        assert driver.get(NS, "taken") == Entry("taken", b"t", 1)

    def test_batch_with_invalid_op_is_refused_before_any_write(self, driver: Driver) -> None:
        with pytest.raises(ValidationError):
            driver.batch([Put(NS, "ok", b"1"), Put(NS, "", b"2")])
        with pytest.raises(ValidationError):
            driver.batch([Put(NS, "ok", b"1"), "not an op"])  # type: ignore[list-item]
        assert driver.get(NS, "ok") is None

    # bad input -------------------------------------------------------------------------------
    @pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
    def test_bad_keys_are_refused_before_any_write(self, driver: Driver, key: Any) -> None:
        with pytest.raises(ValidationError):
            driver.put(NS, key, b"v")
        with pytest.raises(ValidationError):
            driver.get(NS, key)
        with pytest.raises(ValidationError):
            driver.delete(NS, key)
        with pytest.raises(ValidationError):
            driver.batch([Put(NS, "fine", b"v"), Put(NS, key, b"v")])
        assert list(driver.scan(NS)) == []

    @pytest.mark.parametrize("namespace", BAD_NAMESPACES, ids=repr)
    def test_bad_namespaces_are_refused_before_any_write(self, driver: Driver, namespace: Any) -> None:
        with pytest.raises(ValidationError):
            driver.put(namespace, "k", b"v")
        with pytest.raises(ValidationError):
            driver.get(namespace, "k")
        with pytest.raises(ValidationError):
            list(driver.scan(namespace))
        with pytest.raises(ValidationError):
            driver.batch([Put(NS, "fine", b"v"), Delete(namespace, "k")])
        assert list(driver.scan(NS)) == []

    @pytest.mark.parametrize("value", ["text", None, 5, [b"x"]], ids=repr)
    def test_non_bytes_values_are_refused(self, driver: Driver, value: Any) -> None:
        with pytest.raises(ValidationError):
            driver.put(NS, "k", value)
        assert driver.get(NS, "k") is None

    def test_values_over_the_limit_are_refused_before_any_write(self, driver: Driver) -> None:
        limit = driver.max_value_size
        if limit > 256 << 20:
            pytest.skip(f"max_value_size is {limit} bytes; too large to exercise in a test")
        with pytest.raises(ValidationError):
            driver.put(NS, "k", bytes(limit + 1))
        with pytest.raises(ValidationError):
            driver.batch([Put(NS, "j", b"small"), Put(NS, "k", bytes(limit + 1))])
        assert driver.get(NS, "k") is None and driver.get(NS, "j") is None

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"prefix": "a\x00"},
            {"after": ""},
            {"before": "\ud800"},
            {"limit": -1},
            {"limit": "3"},
            {"prefix": 3},
        ],
        ids=repr,
    )
    def test_bad_scan_arguments_are_refused(self, driver: Driver, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ValidationError):
            list(driver.scan(NS, **kwargs))

    def test_longest_valid_key_round_trips(self, driver: Driver) -> None:
        key = "é" * (MAX_KEY_BYTES // 2)
        driver.put(NS, key, b"v")
        assert driver.get(NS, key) == Entry(key, b"v", 1)
        assert _keys(driver.scan(NS, prefix="é")) == [key]

    # blobs -----------------------------------------------------------------------------------
    def test_put_blob_returns_its_sha256_and_reads_back(self, driver: Driver) -> None:
        data = os.urandom(3000)
        info = driver.put_blob(data)
        assert info.digest == hashlib.sha256(data).hexdigest() and info.size == 3000
        assert driver.has_blob(info.digest)
        assert driver.get_blob(info.digest) == data

    def test_empty_blob_round_trips(self, driver: Driver) -> None:
        info = driver.put_blob(b"")
        assert info.size == 0 and driver.get_blob(info.digest) == b""

    def test_put_blob_with_the_right_digest_is_accepted(self, driver: Driver) -> None:
        data = b"named content"
        assert driver.put_blob(data, blob_digest(data)).digest == blob_digest(data)

    def test_put_blob_with_a_wrong_digest_is_refused_and_stores_nothing(self, driver: Driver) -> None:
        data = b"content"
        wrong = blob_digest(b"other")
        with pytest.raises(ValidationError):
            driver.put_blob(data, wrong)
        with pytest.raises(ValidationError):
            driver.put_blob(data, "not-a-digest")
        assert not driver.has_blob(blob_digest(data)) and not driver.has_blob(wrong)
        assert list(driver.list_blobs()) == []

    def test_same_blob_twice_is_stored_once(self, driver: Driver) -> None:
        data = b"dedup me" * 100
        first = driver.put_blob(data)
        second = driver.put_blob(data)
        third = driver.put_blob_stream(iter([data[:5], data[5:]]))
        assert first.digest == second.digest == third.digest
        assert [(b.digest, b.size) for b in driver.list_blobs()] == [(first.digest, len(data))]

    def test_list_blobs_lists_every_blob(self, driver: Driver) -> None:
        blobs = [os.urandom(n) for n in (1, 10, 100, 100_000)]
        for b in blobs:
            driver.put_blob(b)
        listed = {(b.digest, b.size) for b in driver.list_blobs()}
        assert listed == {(blob_digest(b), len(b)) for b in blobs}
        assert all(isinstance(b, BlobInfo) for b in driver.list_blobs())

    def test_missing_blob_is_not_found(self, driver: Driver) -> None:
        digest = blob_digest(b"never stored")
        assert not driver.has_blob(digest)
        with pytest.raises(NotFoundError):
            driver.get_blob(digest)
        with pytest.raises(NotFoundError):
            list(driver.open_blob(digest))

    def test_delete_blob_removes_and_reports_whether_it_did(self, driver: Driver) -> None:
        info = driver.put_blob(b"to delete")
        assert driver.delete_blob(info.digest) is True
        assert not driver.has_blob(info.digest)
        assert driver.delete_blob(info.digest) is False
        with pytest.raises(NotFoundError):
            driver.get_blob(info.digest)

    @pytest.mark.parametrize("digest", ["", "A" * 64, "g" * 64, "ab", None, 5], ids=repr)
    def test_bad_digests_are_refused(self, driver: Driver, digest: Any) -> None:
        for call in (driver.get_blob, driver.has_blob, driver.delete_blob):
            with pytest.raises(ValidationError):
                call(digest)
        with pytest.raises(ValidationError):
            list(driver.open_blob(digest))

    def test_blob_streams_in_and_out_in_chunks(self, driver: Driver) -> None:
        parts = [os.urandom(100_000) for _ in range(7)]
        data = b"".join(parts)
        info = driver.put_blob_stream(iter(parts))
        assert info.digest == blob_digest(data) and info.size == len(data)
        chunks = list(driver.open_blob(info.digest, chunk_size=65536))
        assert b"".join(chunks) == data
        assert all(len(c) <= 65536 for c in chunks) and len(chunks) >= len(data) // 65536

    def test_blob_stream_of_empty_chunks(self, driver: Driver) -> None:
        info = driver.put_blob_stream(iter([b"", b"x", b"", b""]))
        assert driver.get_blob(info.digest) == b"x"

    def test_blob_stored_by_stream_reads_back_with_get_blob(self, driver: Driver) -> None:
        data = os.urandom(3 << 20)
        info = driver.put_blob_stream(data[i : i + 777_777] for i in range(0, len(data), 777_777))
        assert driver.get_blob(info.digest) == data

    @pytest.mark.slow
    def test_a_one_gib_blob_streams_in_bounded_memory(self, store: TestStore) -> None:
        if store.in_process:
            pytest.skip("this store keeps its data in process memory by design")
        driver = store.driver
        chunk = 1 << 20
        count = 1024
        seed = os.urandom(chunk)

        def produce() -> Iterator[bytes]:
            for i in range(count):
                yield i.to_bytes(8, "big") + seed[8:]

        expected = hashlib.sha256()
        for part in produce():
            expected.update(part)
        budget = 64 << 20
        tracemalloc.start()
        try:
            info = driver.put_blob_stream(produce())
            _, peak_write = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            actual = hashlib.sha256()
            size = 0
            for part in driver.open_blob(info.digest, chunk_size=chunk):
                actual.update(part)
                size += len(part)
            _, peak_read = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert info.digest == expected.hexdigest() and info.size == count * chunk
        assert size == count * chunk and actual.hexdigest() == info.digest
        assert peak_write < budget, f"writing a 1 GiB blob peaked at {peak_write >> 20} MiB"
        assert peak_read < budget, f"reading a 1 GiB blob peaked at {peak_read >> 20} MiB"
        assert driver.delete_blob(info.digest)

    # isolation and reopening -----------------------------------------------------------------
    def test_two_stores_never_see_each_others_data(self, driver: Driver, second_store: TestStore) -> None:
        other = second_store.driver
        driver.put(NS, "shared-key", b"mine")
        info = driver.put_blob(b"my blob")
        assert other.get(NS, "shared-key") is None
        assert list(other.scan(NS)) == []
        other.put(NS, "shared-key", b"theirs")
        assert driver.get(NS, "shared-key") == Entry("shared-key", b"mine", 1)
        assert not other.has_blob(info.digest)
        assert list(other.list_blobs()) == []

    def test_data_is_visible_to_another_driver_on_the_same_store(self, store: TestStore) -> None:
        if store.url is None:
            pytest.skip("this store cannot be opened twice")
        store.driver.put(NS, "k", b"v")
        info = store.driver.put_blob(b"blob")
        other = store.open()
        try:
            assert other.get(NS, "k") == Entry("k", b"v", 1)
            assert other.get_blob(info.digest) == b"blob"
            other.put(NS, "k", b"w", if_version=1)
        finally:
            other.close()
        assert store.driver.get(NS, "k") == Entry("k", b"w", 2)

    # concurrency across processes ------------------------------------------------------------
    def test_eight_processes_incrementing_by_compare_and_set_lose_no_update(self, store: TestStore) -> None:
        if store.url is None:
            pytest.skip("this store cannot be shared between processes")
        procs, each = 8, 15
        results = run_workers(cas_increment_worker, store.url, procs, each)
        assert all(r == ("ok", each) for r in results), results
        entry = store.driver.get(NS, "counter")
        assert entry is not None
        assert int(entry.value) == procs * each
        assert entry.version == procs * each

    def test_eight_processes_creating_one_key_have_exactly_one_winner(self, store: TestStore) -> None:
        if store.url is None:
            pytest.skip("this store cannot be shared between processes")
        results = run_workers(create_once_worker, store.url, 8, 0)
        wins = [r for r in results if r[0] == "won"]
        conflicts = [r for r in results if r[0] == "conflict"]
        assert len(wins) == 1 and len(conflicts) == 7, results
        entry = store.driver.get(NS, "only-one")
        assert entry is not None and entry.version == 1 and entry.value == str(wins[0][1]).encode()


def conformance_class(*names: str, modes: tuple[str, ...] = ("sync", "async")) -> type[DriverConformance]:
    """A :class:`DriverConformance` subclass whose ``store`` fixture runs over the backends
    ``names`` (every backend when empty) in each of ``modes`` (the sync driver, and the async
    driver from :func:`~runtime_persistence.open_store_async` run through the same tests), with
    isolation checked against a second store on the same backend. Bind it to a ``Test…`` name
    in a test module to collect it::

        TestServerConformance = conformance_class("postgres", "mysql", "redis", "mongodb")
    """
    params = driver_params(list(names) or None, modes=modes)

    class _Conformance(DriverConformance):
        @pytest.fixture(params=params)
        def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestStore]:
            with open_test_store(request.param, tmp_path) as opened:
                yield opened

        @pytest.fixture
        def second_store(self, store: TestStore, tmp_path: Path) -> Iterator[TestStore]:
            if store.name == "memory":
                pytest.skip("separate memory stores are separate objects; nothing to check")
            with open_test_store(store.name + ("+async" if store.is_async else ""), tmp_path) as opened:
                yield opened

    _Conformance.__name__ = _Conformance.__qualname__ = "Conformance_" + "_".join(names or ("all",))
    return _Conformance
