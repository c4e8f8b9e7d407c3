"""MongoDB driver specifics: batches are not atomic but check every condition before writing,
values may fill a document, collections carry the store's prefix, unfinished uploads expire.
Each runs on the sync driver and on the async one (``mongodb+async``: :class:`AsyncMongoDriver`
behind the blocking proxy, whose collections come back blocking too). Needs
``KEEPUP_TEST_MONGODB_URL`` (no MongoDB server runs in this repository's CI: these tests skip there
with that reason)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime_core import ConflictError, Entry, Put, ValidationError
from runtime_persistence.testing import TestStore, driver_params, open_test_store

pytestmark = pytest.mark.parametrize("name", driver_params(["mongodb"], modes=("sync", "async")))
pymongo = pytest.importorskip("pymongo", reason="the pymongo library (extra [mongodb]) is not installed")


@pytest.fixture
def store(name: str, tmp_path: Path) -> Iterator[TestStore]:
    with open_test_store(name, tmp_path) as opened:
        yield opened


def test_batches_are_declared_not_atomic(name: str, store: TestStore) -> None:
    assert store.driver.atomic_batch is False


def test_a_batch_that_would_conflict_writes_nothing(name: str, store: TestStore) -> None:
    store.driver.put("ns", "taken", b"old")
    with pytest.raises(ConflictError):
        store.driver.batch([Put("ns", "fresh", b"1"), Put("ns", "taken", b"2", if_absent=True)])
    assert store.driver.get("ns", "fresh") is None
    assert store.driver.get("ns", "taken") == Entry("taken", b"old", 1)


def test_a_value_may_fill_most_of_a_document(name: str, store: TestStore) -> None:
    limit = store.driver.max_value_size
    assert (15 << 20) < limit < (16 << 20)
    store.driver.put("ns", "big", bytes(limit))
    entry = store.driver.get("ns", "big")
    assert entry is not None and len(entry.value) == limit
    with pytest.raises(ValidationError):
        store.driver.put("ns", "big", bytes(limit + 1))


def test_collections_carry_the_store_prefix_and_destroy_drops_them(name: str, store: TestStore) -> None:
    driver: Any = store.driver
    store.driver.put("ns", "k", b"v")
    store.driver.put_blob(b"blob")
    db = driver._kv.database
    prefix = driver._prefix
    ours = {n for n in db.list_collection_names() if n.startswith(prefix)}
    assert ours == {f"{prefix}keepup_kv", f"{prefix}keepup_blobs", f"{prefix}keepup_blob_chunks"}
    driver.destroy()
    assert not {n for n in db.list_collection_names() if n.startswith(prefix)}


def test_chunks_of_an_unfinished_upload_carry_an_expiry(name: str, store: TestStore) -> None:
    driver: Any = store.driver
    expiring: list[int] = []

    def stream() -> Iterator[bytes]:
        yield bytes(1 << 20)
        yield bytes(1 << 20)
        expiring.append(driver._chunks.count_documents({"expires": {"$exists": True}}))
        yield b"end"

    info = store.driver.put_blob_stream(stream())
    assert expiring == [2]
    assert driver._chunks.count_documents({"expires": {"$exists": True}}) == 0
    assert len(store.driver.get_blob(info.digest)) == (2 << 20) + 3


def test_a_failed_upload_leaves_no_chunks(name: str, store: TestStore) -> None:
    driver: Any = store.driver

    def broken() -> Iterator[bytes]:
        yield bytes(2 << 20)
        raise OSError("source failed")

    with pytest.raises(OSError):
        store.driver.put_blob_stream(broken())
    assert driver._chunks.count_documents({}) == 0
