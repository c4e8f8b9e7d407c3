"""Large blobs on S3-compatible object storage while the records stay in the database (extra
``[s3]``, the MinIO client): ``postgresql://…?blobs=s3://bucket/prefix`` (any store URL takes
``blobs=``). The endpoint and credentials come from the environment, never the URL:
``AWS_ENDPOINT_URL`` (``http://127.0.0.1:8333`` for a local SeaweedFS or MinIO; default AWS),
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``. The bucket is created when
missing.

Guarantees: a blob is an object named by its SHA-256 under the prefix, uploaded whole (an S3 put
is atomic: a crashed upload leaves no object), after the bytes were hashed; a stream of unknown
length is spooled to a private temporary file as it is hashed and uploaded in 5 MiB parts one at a time, so
memory stays bounded both ways. Every read is checked against the digest as it streams
(CorruptionError instead of the last chunk when an object was changed). Records, heads and
their conditional writes are the database's: everything the driver contract promises about them
is unchanged. Garbage collection lists and deletes objects under the prefix like any blob area.

Two twins: :class:`AsyncS3Blobs` (over an async records driver; the blocking MinIO calls run on
worker threads) and :class:`S3Blobs`, generated from it."""

from __future__ import annotations

from typing import Any

from minio import Minio
from runtime_core import AsyncDriver, Driver, DriverUnavailableError

from runtime_persistence.storage.drivers._async.s3 import AsyncS3Blobs
from runtime_persistence.storage.drivers._s3_core import S3Location, parse_location
from runtime_persistence.storage.drivers._sync.s3 import S3Blobs

__all__ = ["AsyncS3Blobs", "S3Blobs", "client_for", "with_blobs", "with_blobs_async"]


def client_for(location: S3Location) -> Minio:
    """A MinIO client for ``location``; the bucket is created when missing.
    DriverUnavailableError when the endpoint does not answer or refuses the credentials."""
    client = Minio(
        location.endpoint,
        access_key=location.access_key,
        secret_key=location.secret_key,
        secure=location.secure,
        region=location.region,
    )
    try:
        if not client.bucket_exists(location.bucket):
            client.make_bucket(location.bucket)
    except Exception as exc:  # urllib3 and S3 errors alike: the blob area cannot be used
        raise DriverUnavailableError(
            f"object storage for {location.url} at {location.endpoint} cannot be used: {exc}"
        ) from exc
    return client


def with_blobs(records: Driver, blobs: str, **_: Any) -> S3Blobs:
    """``records`` with its blob area on the S3 location ``blobs`` names (``s3://bucket/prefix``)."""
    location = parse_location(blobs)
    return S3Blobs(records, client_for(location), location)


async def with_blobs_async(records: AsyncDriver, blobs: str, **_: Any) -> AsyncS3Blobs:
    """The async twin of :func:`with_blobs`."""
    import asyncio

    location = parse_location(blobs)
    return AsyncS3Blobs(records, await asyncio.to_thread(client_for, location), location)
