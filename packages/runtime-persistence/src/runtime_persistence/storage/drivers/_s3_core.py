"""The I/O-free part of the S3 blob backend: where a store's blobs live (from the store URL's
``blobs=`` parameter and the environment), object names, and the digest check of a read stream.
Shared by :class:`AsyncS3Blobs` and its generated sync twin; imports no client library."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from runtime_core import CorruptionError, ValidationError

__all__ = [
    "ENDPOINT_ENV",
    "S3Location",
    "VerifiedChunks",
    "object_key",
    "parse_location",
]

ENDPOINT_ENV = "AWS_ENDPOINT_URL"
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9._/-]{0,200}$")


@dataclass(frozen=True, slots=True)
class S3Location:
    """A bucket and key prefix on an S3-compatible endpoint, with the credentials to reach it
    (never shown: :attr:`url` holds neither the keys nor the endpoint's password)."""

    bucket: str
    prefix: str
    endpoint: str
    secure: bool
    region: str | None
    access_key: str | None
    secret_key: str | None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def parse_location(blobs: str, env: Mapping[str, str] | None = None) -> S3Location:
    """The location ``s3://bucket/prefix`` names, with the endpoint and credentials from the
    environment: ``AWS_ENDPOINT_URL`` (``http://host:port`` or ``https://…``; default AWS S3),
    ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``. ValidationError for a
    malformed one."""
    env = os.environ if env is None else env
    parts = urlsplit(blobs)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValidationError(f"blobs= takes s3://bucket/prefix, got {blobs!r:.120}")
    bucket = parts.netloc
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise ValidationError(f"{bucket!r:.80} is not an S3 bucket name (3-63 of a-z 0-9 . -)")
    prefix = parts.path.lstrip("/")
    if not _PREFIX_RE.match(prefix) or ".." in prefix.split("/"):
        raise ValidationError(f"the blob prefix {prefix!r:.80} may hold only A-Z a-z 0-9 . _ - /")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    endpoint_url = env.get(ENDPOINT_ENV) or "https://s3.amazonaws.com"
    ep = urlsplit(endpoint_url)
    if ep.scheme not in ("http", "https") or not ep.netloc or ep.path not in ("", "/"):
        raise ValidationError(f"{ENDPOINT_ENV} must be http(s)://host[:port], got {endpoint_url!r:.120}")
    return S3Location(
        bucket=bucket,
        prefix=prefix,
        endpoint=ep.netloc,
        secure=ep.scheme == "https",
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        access_key=env.get("AWS_ACCESS_KEY_ID") or None,
        secret_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
    )


def object_key(location: S3Location, digest: str) -> str:
    return f"{location.prefix}{digest}"


class VerifiedChunks:
    """Hashes a read stream and hands its chunks on one behind, so that the last one is replaced
    by CorruptionError when the whole does not match ``digest``: no caller ever sees the end of
    a stream whose bytes were changed."""

    def __init__(self, digest: str) -> None:
        self._digest = digest
        self._hash = hashlib.sha256()
        self._held: bytes | None = None

    def send(self, chunk: bytes | None) -> list[bytes]:
        """The chunks that may be handed on after ``chunk`` (None: the stream ended)."""
        held = self._held
        if chunk is None:
            if self._hash.hexdigest() != self._digest:
                raise CorruptionError(f"blob {self._digest} in object storage does not match its digest")
            self._held = None
            return [held] if held else []
        self._hash.update(chunk)
        self._held = chunk
        return [held] if held is not None else []
