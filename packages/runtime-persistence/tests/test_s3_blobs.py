"""The S3 blob backend against a real SeaweedFS on loopback: records in PostgreSQL, blobs in the
bucket, the whole driver contract (the conformance suite, sync and async), digests checked on
every read, streams in bounded memory."""

from __future__ import annotations

import io
import secrets
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime_core import CorruptionError, ValidationError
from runtime_persistence import Checkpoints, open_store
from runtime_persistence.storage.drivers._s3_core import parse_location
from runtime_persistence.testing import DriverConformance, TestStore, isolated_url
from runtime_persistence.testing.backends import _open_async_test_store
from runtime_persistence.testing.seaweedfs import SeaweedFS, start_seaweedfs

BUCKET = "keepup-tests"


@pytest.fixture(scope="module")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    with start_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3_env(seaweedfs: SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> SeaweedFS:
    for name, value in seaweedfs.env.items():
        monkeypatch.setenv(name, value)
    return seaweedfs


def _url(tmp_path: Path) -> str:
    return f"{isolated_url('postgres', tmp_path)}&blobs=s3://{BUCKET}/t-{secrets.token_hex(4)}"


def _open(param: str, tmp_path: Path) -> Iterator[TestStore]:
    url = _url(tmp_path)
    if param.endswith("+async"):
        with _open_async_test_store("postgres", url) as opened:
            yield opened
        return
    driver = open_store(url)
    try:
        yield TestStore("postgres", driver, url)
    finally:
        try:
            driver.destroy()  # type: ignore[attr-defined]
        finally:
            driver.close()


@pytest.mark.slow
class TestS3BlobConformance(DriverConformance):
    """Every promise of the driver contract, with the blob area on SeaweedFS (about 7 minutes on
    2 cores: in the stress session; the tests below run in every test session)."""

    @pytest.fixture(params=["postgres+s3", "postgres+s3+async"])
    def store(self, request: pytest.FixtureRequest, tmp_path: Path, s3_env: SeaweedFS) -> Iterator[TestStore]:
        yield from _open(request.param, tmp_path)

    @pytest.fixture
    def second_store(self, store: TestStore, tmp_path: Path) -> Iterator[TestStore]:
        yield from _open("postgres+s3+async" if store.is_async else "postgres+s3", tmp_path)


@pytest.fixture
def s3_store(tmp_path: Path, s3_env: SeaweedFS) -> Iterator[TestStore]:
    yield from _open("postgres+s3", tmp_path)


def _objects(store: TestStore) -> dict[str, bytes]:
    from minio import Minio

    loc = parse_location(f"s3://{BUCKET}/{store.driver.location.prefix}")  # type: ignore[attr-defined]
    client = Minio(loc.endpoint, access_key=loc.access_key, secret_key=loc.secret_key, secure=False)
    found = {}
    for obj in client.list_objects(BUCKET, prefix=loc.prefix, recursive=True):
        response = client.get_object(BUCKET, obj.object_name)
        found[obj.object_name] = response.read()
        response.close()
    return found


def test_blobs_live_in_the_bucket_and_records_in_the_database(s3_store: TestStore) -> None:
    cps = Checkpoints(s3_store.driver)
    big = secrets.token_hex(1 << 20)  # 2 MiB: over the size that stays in the records (KV_BLOB_MAX)
    cp = cps.save(cps.create_thread().id, {"output": big})
    assert cps.get(cp.id).state == {"output": big}
    stored = _objects(s3_store)
    assert stored and all(len(name.rsplit("/", 1)[1]) == 64 for name in stored)
    records = s3_store.driver.records  # type: ignore[attr-defined]
    assert list(records.list_blobs()) == []  # nothing of the blob area went to PostgreSQL
    assert list(records.scan("ckpt"))


def test_a_changed_object_is_corruption_on_every_read(s3_store: TestStore) -> None:
    from minio import Minio

    driver: Any = s3_store.driver
    info = driver.put_blob(b"the original bytes " * 1000)
    loc = driver.location
    client = Minio(loc.endpoint, access_key=loc.access_key, secret_key=loc.secret_key, secure=False)
    forged = b"the forged bytes!! " * 1000
    client.put_object(loc.bucket, f"{loc.prefix}{info.digest}", io.BytesIO(forged), len(forged))
    with pytest.raises(CorruptionError):
        driver.get_blob(info.digest)
    seen = []
    with pytest.raises(CorruptionError):
        for chunk in driver.open_blob(info.digest, chunk_size=4096):
            seen.append(chunk)
    assert sum(map(len, seen)) < len(forged)  # the end of a forged stream is never handed on


def test_a_large_stream_goes_up_and_down_in_bounded_memory(s3_store: TestStore) -> None:
    driver: Any = s3_store.driver
    chunk = secrets.token_bytes(1 << 20)
    total = 48

    def chunks() -> Iterator[bytes]:
        for i in range(total):
            yield chunk[i:] + chunk[:i]

    tracemalloc.start()
    try:
        info = driver.put_blob_stream(chunks())
        _, up_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        size = sum(len(c) for c in driver.open_blob(info.digest))
        _, down_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size == size == total << 20
    assert up_peak < 24 << 20 and down_peak < 24 << 20, (up_peak, down_peak)


def test_a_malformed_blobs_parameter_is_a_usage_error(tmp_path: Path, s3_env: SeaweedFS) -> None:
    base = isolated_url("postgres", tmp_path)
    for bad in ("http://bucket/x", "s3://Bad_Bucket/x", "s3://bucket/../x"):
        with pytest.raises(ValidationError):
            open_store(f"{base}&blobs={bad}")
