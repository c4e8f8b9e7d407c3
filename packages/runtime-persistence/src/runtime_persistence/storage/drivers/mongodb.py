"""The MongoDB driver (``mongodb://user:password@host:port/db?prefix=p_``, also ``mongodb+srv://``),
pymongo (extra ``[mongodb]``). The database is the one named in the URL (``keepup`` if none).

Layout: a collection ``<prefix>keepup_kv`` whose documents have ``_id = "<namespace>|<key>"``
(strings compare by their UTF-8 bytes in MongoDB's default binary comparison, and ``|`` cannot
occur in a namespace, so one ``_id`` range is one namespace in key byte order), the value as
binary ``v`` and the version ``ver``; blobs in ``<prefix>keepup_blobs`` (``_id`` = digest) over
1 MiB chunk documents in ``<prefix>keepup_blob_chunks``.

Guarantees: compare-and-set needs no multi-document transaction. Create-only is ``insert_one``
with the ``_id`` (a duplicate key means someone else won), compare-and-set is ``update_one`` with
the expected version in the filter, and every single-document write is atomic. A batch is **not**
atomic (``atomic_batch`` is False): its conditions are all checked before the first write, so a
batch that would conflict writes nothing, but a concurrent writer can still make a later op of the
batch conflict after earlier ops were applied (the error says which). Repositories stay correct
without atomic batches (immutable records, heads moved by compare-and-set).

A blob's chunks are inserted with an expiry date (a TTL index removes the chunks of uploads that
never finished); when the stream ends the expiry is removed and the blob document inserted, so a
blob is visible only when complete. A crash between those two steps leaks the chunks (never a
broken blob).

Durability: ``durable`` writes with write concern ``majority`` and ``j: true`` (acknowledged once
journaled on a majority); ``relaxed`` with ``w: 1`` and no journal wait.

Limits: a value can be as large as the server's document limit (16 MiB) less some room for the
key. URL options: ``prefix`` (collection-name prefix, at most 32 of ``a-z 0-9 _``),
``max_value_size``; every other query parameter is a pymongo URI option
(``serverSelectionTimeoutMS`` and ``connectTimeoutMS`` default to 5 seconds).

**Untested against a server in this repository's CI** (no MongoDB there): the conformance suite
runs against it wherever ``KEEPUP_TEST_MONGODB_URL`` is set."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
from bson.int64 import Int64
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern
from runtime_core import (
    BlobInfo,
    ConflictError,
    Delete,
    DriverUnavailableError,
    Durability,
    Entry,
    KeepupError,
    NotFoundError,
    Put,
    StorageError,
    utc_now,
    validate_digest,
)

from runtime_persistence.storage.drivers._common import (
    DEFAULT_CHUNK,
    check_batch,
    check_chunk_size,
    check_digest_of,
    check_key_op,
    check_put,
    check_scan,
    key_bounds,
    verified_chunks,
)
from runtime_persistence.storage.drivers._servers import (
    DEFAULT_CONNECT_TIMEOUT,
    int_option,
    merged_options,
    missing_chunk,
    pieces,
    rechunk,
    split_options,
    storage_failure,
    store_prefix,
    unavailable,
)
from runtime_persistence.storage.stores import redact_url

__all__ = ["MongoDriver"]

_KIND = "MongoDB"
_OPTIONS = ("prefix", "max_value_size")
_ROOM = 4 << 10  # document bytes besides the value: _id (namespace and key), field names, version
_STORED_CHUNK = 1 << 20
_READ_AHEAD = 4
_SCAN_PAGE = 256
_UPLOAD_TTL = timedelta(days=1)
_UPSERT_RETRIES = 3

_Doc = dict[str, Any]


class MongoDriver:
    """An ordered key-value store and blob area in three MongoDB collections (see the module
    docstring for the layout and guarantees). Thread-safe (pymongo pools connections); open one
    per process."""

    def __init__(
        self,
        url: str,
        *,
        durability: Durability = Durability.DURABLE,
        prefix: str = "",
        max_value_size: int | None = None,
    ) -> None:
        self._url = redact_url(url)
        self._raw_url = url
        self._prefix = store_prefix(prefix)
        self._durability = Durability(durability)
        clean, _ = split_options(url, _OPTIONS)
        lowered = clean.lower()
        client_options: dict[str, Any] = {"appname": "keepup"}
        if "serverselectiontimeoutms" not in lowered:
            client_options["serverSelectionTimeoutMS"] = int(DEFAULT_CONNECT_TIMEOUT * 1000)
        if "connecttimeoutms" not in lowered:
            client_options["connectTimeoutMS"] = int(DEFAULT_CONNECT_TIMEOUT * 1000)
        if self._durability is Durability.DURABLE:
            concern = WriteConcern(w="majority", j=True)
        else:
            concern = WriteConcern(w=1, j=False)
        try:
            self._client: pymongo.MongoClient[_Doc] = pymongo.MongoClient(clean, **client_options)
            db = self._client.get_default_database(
                "keepup", write_concern=concern, read_concern=ReadConcern("local")
            )
            try:
                hello = db.command("hello")
            except pymongo.errors.OperationFailure:  # servers before 4.4.2 know only the old name
                hello = db.command("isMaster")
            existing = set(db.list_collection_names())
            self._kv = self._collection(db, "kv", existing)
            self._blobs = self._collection(db, "blobs", existing)
            self._chunks = self._collection(db, "blob_chunks", existing)
            self._chunks.create_index([("u", 1), ("n", 1)], unique=True, name="upload_seq")
            self._chunks.create_index("expires", expireAfterSeconds=0, name="unfinished_uploads")
        except KeepupError:
            self._client_close_quietly()
            raise
        except PyMongoError as exc:
            self._client_close_quietly()
            raise unavailable(_KIND, url, exc) from None
        limit = int(hello.get("maxBsonObjectSize", 16 << 20)) - _ROOM
        self._max_value_size = limit if max_value_size is None else min(limit, max_value_size)

    def _client_close_quietly(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()

    def _collection(self, db: Any, role: str, existing: set[str]) -> Collection[_Doc]:
        name = f"{self._prefix}keepup_{role}"
        if name not in existing:
            with suppress(pymongo.errors.CollectionInvalid):  # created concurrently by another opener
                db.create_collection(name)
        collection: Collection[_Doc] = db.get_collection(name)
        collation = collection.options().get("collation")
        if collation and collation.get("locale") != "simple":
            raise DriverUnavailableError(
                f"the collection {name} at {self._url} has the collation {collation.get('locale')!r}; "
                "Keepup needs MongoDB's default binary string order: use another prefix"
            )
        return collection

    @classmethod
    def from_url(
        cls, url: str, *, durability: Durability = Durability.DURABLE, **options: Any
    ) -> MongoDriver:
        """Open the store at ``url``. Raises ValidationError for bad options and
        DriverUnavailableError when the server does not answer or refuses."""
        _, query = split_options(url, _OPTIONS)
        opts = merged_options(query, options, _OPTIONS, url)
        return cls(
            url,
            durability=durability,
            prefix=store_prefix(opts.get("prefix", "")),
            max_value_size=int_option(opts, "max_value_size", 16 << 20, low=1, high=64 << 20)
            if "max_value_size" in opts
            else None,
        )

    # plumbing ----------------------------------------------------------------------------------
    @contextmanager
    def _op(self, action: str) -> Iterator[None]:
        try:
            yield
        except KeepupError:
            raise
        except PyMongoError as exc:
            raise storage_failure(_KIND, self._raw_url, action, exc) from exc

    @staticmethod
    def _id(namespace: str, key: str) -> str:
        return f"{namespace}|{key}"

    # properties --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self._url

    @property
    def atomic_batch(self) -> bool:
        return False

    @property
    def max_value_size(self) -> int:
        return self._max_value_size

    @property
    def durability(self) -> Durability:
        return self._durability

    # key-value ---------------------------------------------------------------------------------
    def get(self, namespace: str, key: str) -> Entry | None:
        check_key_op(namespace, key)
        with self._op("get"):
            doc = self._kv.find_one({"_id": self._id(namespace, key)}, {"v": 1, "ver": 1})
        return Entry(key, bytes(doc["v"]), int(doc["ver"])) if doc else None

    def scan(
        self,
        namespace: str,
        *,
        prefix: str = "",
        after: str | None = None,
        before: str | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[Entry]:
        """See :meth:`runtime_core.Driver.scan`. Read in pages of a few hundred documents; keys
        written during the scan may or may not appear."""
        check_scan(namespace, prefix, after, before, limit)
        head = namespace + "|"
        low, low_inclusive, high = key_bounds(prefix, after, before)
        return self._scan_pages(
            len(head),
            (head + low.decode(), low_inclusive),
            head + high.decode() if high is not None else namespace + "}",  # "}" follows "|"
            reverse,
            limit,
        )

    def _scan_pages(
        self, skip: int, low: tuple[str, bool], high: str, reverse: bool, limit: int | None
    ) -> Iterator[Entry]:
        remaining = limit
        while remaining is None or remaining > 0:
            page = _SCAN_PAGE if remaining is None else min(remaining, _SCAN_PAGE)
            query = {"_id": {"$gte" if low[1] else "$gt": low[0], "$lt": high}}
            with self._op("scan"):
                docs = list(
                    self._kv.find(query, {"v": 1, "ver": 1})
                    .sort("_id", pymongo.DESCENDING if reverse else pymongo.ASCENDING)
                    .limit(page)
                )
            for doc in docs:
                yield Entry(str(doc["_id"])[skip:], bytes(doc["v"]), int(doc["ver"]))
            if len(docs) < page:
                return
            if remaining is not None:
                remaining -= len(docs)
            last = str(docs[-1]["_id"])
            if reverse:
                high = last
            else:
                low = (last, False)

    def put(
        self,
        namespace: str,
        key: str,
        value: bytes,
        *,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> int:
        check_put(namespace, key, value, if_absent, if_version, self._max_value_size)
        with self._op("put"):
            return self._put(namespace, key, bytes(value), if_absent, if_version)

    def _put(self, namespace: str, key: str, value: bytes, if_absent: bool, if_version: int | None) -> int:
        doc_id = self._id(namespace, key)
        if if_absent:
            try:
                self._kv.insert_one({"_id": doc_id, "ns": namespace, "v": value, "ver": Int64(1)})
            except DuplicateKeyError:
                raise ConflictError(f"key {key!r} already exists in {namespace!r}") from None
            return 1
        if if_version is not None:
            result = self._kv.update_one(
                {"_id": doc_id, "ver": if_version}, {"$set": {"v": value}, "$inc": {"ver": Int64(1)}}
            )
            if result.matched_count != 1:
                raise ConflictError(f"key {key!r} in {namespace!r} is no longer at version {if_version}")
            return if_version + 1
        for attempt in range(_UPSERT_RETRIES):
            try:
                doc = self._kv.find_one_and_update(
                    {"_id": doc_id},
                    {"$set": {"v": value, "ns": namespace}, "$inc": {"ver": Int64(1)}},
                    projection={"ver": 1},
                    upsert=True,
                    return_document=pymongo.ReturnDocument.AFTER,
                )
            except DuplicateKeyError:  # two upserts created the key at once: the loser updates
                if attempt == _UPSERT_RETRIES - 1:
                    raise
                continue
            assert doc is not None
            return int(doc["ver"])
        raise AssertionError("unreachable")  # pragma: no cover

    def delete(self, namespace: str, key: str, *, if_version: int | None = None) -> bool:
        check_key_op(namespace, key, if_version)
        with self._op("delete"):
            return self._delete(namespace, key, if_version)

    def _delete(self, namespace: str, key: str, if_version: int | None) -> bool:
        query: _Doc = {"_id": self._id(namespace, key)}
        if if_version is not None:
            query["ver"] = if_version
        deleted = self._kv.delete_one(query).deleted_count == 1
        if if_version is not None and not deleted:
            raise ConflictError(f"key {key!r} in {namespace!r} is no longer at version {if_version}")
        return deleted

    def batch(self, ops: Sequence[Put | Delete]) -> list[int | bool]:
        """Not atomic (see the module docstring): every condition is checked against the current
        versions before the first write, so a batch that would conflict writes nothing; ops are
        then applied in order, each with its own condition, and a concurrent writer can still
        make a later op conflict after earlier ones were applied."""
        check_batch(ops, self._max_value_size)
        if not ops:
            return []
        with self._op("batch"):
            ids = list({self._id(op.namespace, op.key) for op in ops})
            versions = {
                str(d["_id"]): int(d["ver"]) for d in self._kv.find({"_id": {"$in": ids}}, {"ver": 1})
            }
            for position, op in enumerate(ops):
                doc_id = self._id(op.namespace, op.key)
                current = versions.get(doc_id, 0)
                if_absent = isinstance(op, Put) and op.if_absent
                if (if_absent and current) or (op.if_version is not None and current != op.if_version):
                    raise ConflictError(
                        f"batch op {position} lost its condition: key {op.key!r} in {op.namespace!r} is at "
                        f"version {current}; nothing was written"
                    )
                versions[doc_id] = current + 1 if isinstance(op, Put) else 0
            results: list[int | bool] = []
            for position, op in enumerate(ops):
                try:
                    if isinstance(op, Put):
                        results.append(
                            self._put(op.namespace, op.key, bytes(op.value), op.if_absent, op.if_version)
                        )
                    else:
                        results.append(self._delete(op.namespace, op.key, op.if_version))
                except ConflictError as exc:
                    raise ConflictError(
                        f"batch op {position} lost its condition to a concurrent writer after ops "
                        f"0-{position - 1} were applied (MongoDB batches are not atomic): {exc}"
                        if position
                        else str(exc)
                    ) from None
            return results

    # blobs -------------------------------------------------------------------------------------
    def put_blob(self, data: bytes, digest: str | None = None) -> BlobInfo:
        data = bytes(data)
        actual = check_digest_of(data, digest)
        existing = self._blob_info(actual)
        if existing is not None:
            return existing
        view = memoryview(data)
        return self._store_blob(
            bytes(view[i : i + _STORED_CHUNK]) for i in range(0, len(data), _STORED_CHUNK)
        )

    def put_blob_stream(self, chunks: Iterable[bytes]) -> BlobInfo:
        """Store the stream as 1 MiB chunk documents, in bounded memory; the blob becomes visible
        only when the whole stream is stored."""
        return self._store_blob(rechunk(chunks, _STORED_CHUNK))

    def _store_blob(self, chunks: Iterable[bytes]) -> BlobInfo:
        upload = secrets.token_hex(12)
        expires = utc_now() + _UPLOAD_TTL
        h = hashlib.sha256()
        size = 0
        count = 0
        try:
            with self._op("put_blob"):
                for chunk in chunks:
                    h.update(chunk)
                    size += len(chunk)
                    self._chunks.insert_one({"u": upload, "n": count, "data": chunk, "expires": expires})
                    count += 1
                digest = h.hexdigest()
                kept = self._chunks.update_many({"u": upload}, {"$unset": {"expires": ""}})
                if kept.matched_count != count:
                    raise StorageError(
                        f"a blob upload lost chunks (it took longer than {_UPLOAD_TTL}); store it again"
                    )
                created = utc_now()
                try:
                    self._blobs.insert_one(
                        {
                            "_id": digest,
                            "u": upload,
                            "size": Int64(size),
                            "chunks": count,
                            "created_at": created,
                        }
                    )
                except DuplicateKeyError:
                    self._chunks.delete_many({"u": upload})
                    info = self._blob_info(digest)
                    if info is None:
                        raise ConflictError(
                            "a blob with this content was deleted while storing it; retry"
                        ) from None
                    return info
                return BlobInfo(digest, size, created)
        except BaseException:
            with suppress(PyMongoError):  # otherwise the unfinished upload's chunks expire on their own
                self._chunks.delete_many({"u": upload})
            raise

    def _blob_info(self, digest: str) -> BlobInfo | None:
        with self._op("blob lookup"):
            doc = self._blobs.find_one({"_id": digest}, {"size": 1, "created_at": 1})
        return BlobInfo(digest, int(doc["size"]), _utc(doc.get("created_at"))) if doc else None

    def get_blob(self, digest: str) -> bytes:
        return b"".join(self.open_blob(digest))

    def open_blob(self, digest: str, chunk_size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
        validate_digest(digest)
        check_chunk_size(chunk_size)
        with self._op("open_blob"):
            doc = self._blobs.find_one({"_id": digest}, {"u": 1, "chunks": 1})
        if doc is None:
            raise NotFoundError(f"blob {digest} not found")
        return verified_chunks(
            self._read_chunks(digest, str(doc["u"]), int(doc["chunks"]), chunk_size), digest
        )

    def _read_chunks(self, digest: str, upload: str, count: int, chunk_size: int) -> Iterator[bytes]:
        seq = 0
        while seq < count:
            with self._op("read blob"):
                docs = list(
                    self._chunks.find({"u": upload, "n": {"$gte": seq}}, {"n": 1, "data": 1})
                    .sort("n", pymongo.ASCENDING)
                    .limit(_READ_AHEAD)
                )
            if not docs:
                raise missing_chunk(digest, self.has_blob(digest))
            for doc in docs:
                if int(doc["n"]) != seq:
                    raise missing_chunk(digest, self.has_blob(digest))
                yield from pieces(bytes(doc["data"]), chunk_size)
                seq += 1

    def has_blob(self, digest: str) -> bool:
        validate_digest(digest)
        with self._op("has_blob"):
            return self._blobs.find_one({"_id": digest}, {"_id": 1}) is not None

    def delete_blob(self, digest: str) -> bool:
        """Remove the blob document, then its chunks (a crash in between leaks chunks, never
        leaves a blob that cannot be read)."""
        validate_digest(digest)
        with self._op("delete_blob"):
            doc = self._blobs.find_one_and_delete({"_id": digest}, projection={"u": 1})
            if doc is None:
                return False
            self._chunks.delete_many({"u": doc["u"]})
            return True

    def list_blobs(self) -> Iterator[BlobInfo]:
        """Every blob with its size and creation time, read in pages (no particular order is
        promised; today it is by digest)."""
        last = ""
        while True:
            with self._op("list_blobs"):
                docs = list(
                    self._blobs.find({"_id": {"$gt": last}}, {"size": 1, "created_at": 1})
                    .sort("_id", pymongo.ASCENDING)
                    .limit(_SCAN_PAGE)
                )
            for doc in docs:
                yield BlobInfo(str(doc["_id"]), int(doc["size"]), _utc(doc.get("created_at")))
            if len(docs) < _SCAN_PAGE:
                return
            last = str(docs[-1]["_id"])

    # lifecycle ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the client and its connections. Idempotent."""
        self._client.close()

    def destroy(self) -> None:
        """Drop every collection of this store (its data is gone for good). For tests and ``keepup
        store destroy``; the driver cannot be used afterwards except to close it."""
        with self._op("destroy"):
            for collection in (self._chunks, self._blobs, self._kv):
                collection.drop()

    # test hooks: let the corruption tests damage stored bytes the way a disk would
    def _raw_blob(self, digest: str) -> bytes:
        doc = self._blobs.find_one({"_id": digest}, {"u": 1})
        assert doc is not None
        return b"".join(
            bytes(c["data"]) for c in self._chunks.find({"u": doc["u"]}).sort("n", pymongo.ASCENDING)
        )

    def _set_raw_blob(self, digest: str, data: bytes) -> None:
        doc = self._blobs.find_one({"_id": digest}, {"u": 1})
        assert doc is not None
        self._chunks.delete_many({"u": doc["u"]})
        parts = list(rechunk([data], _STORED_CHUNK))
        for n, part in enumerate(parts):
            self._chunks.insert_one({"u": doc["u"], "n": n, "data": part})
        self._blobs.update_one({"_id": digest}, {"$set": {"chunks": len(parts)}})


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
