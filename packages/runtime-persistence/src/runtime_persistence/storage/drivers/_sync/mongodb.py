# Generated from packages/runtime-persistence/src/runtime_persistence/storage/drivers/_async/mongodb.py by scripts/gen_sync.py: edit that file and rerun the script.
"""The MongoDB driver's I/O: the layout, guarantees and options are described in
:mod:`runtime_persistence.storage.drivers.mongodb`, the names, queries and the batch's condition
check are in ``_mongodb_core.py`` and the loops shared with Redis in ``_kv.py``.

Written once, as async code on pymongo's native async API in ``drivers/_async/mongodb.py``; the
blocking twin in ``drivers/_sync/mongodb.py`` is generated from it by scripts/gen_sync.py."""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime, timedelta
from typing import ClassVar

from bson.int64 import Int64
from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.errors import (
    CollectionInvalid,
    ConfigurationError,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern
from runtime_core import BlobInfo, ConflictError, Delete, Entry, KeepupError, Put, utc_now

from runtime_persistence.storage.drivers import _mongodb_core as core
from runtime_persistence.storage.drivers._servers import rechunk, unavailable
from runtime_persistence.storage.drivers._sync._kv import (
    SCAN_PAGE,
    STORED_CHUNK,
    UPLOAD_TTL,
    Published,
    _KeyValueServer,
)
from runtime_persistence.storage.drivers._sync._streams import password_from_file

__all__ = ["MongoDriver"]


class MongoDriver(_KeyValueServer):
    """An ordered key-value store and blob area in three MongoDB collections (see
    :mod:`runtime_persistence.storage.drivers.mongodb` for the layout and guarantees). Safe to
    share between threads (sync) or tasks (async): the client pools connections. Open it with
    :meth:`from_url`, one per process (the async one per event loop: pymongo's async client
    belongs to the loop it first ran on)."""

    _kind = core.KIND
    _errors = (PyMongoError,)
    _default_max_value = core.DOCUMENT_LIMIT - core.ROOM  # until the server says
    _max_value_ceiling = core.MAX_VALUE_CEILING
    _atomic_batch = False  # see the module docstring: conditions checked first, then applied
    _read_ahead = 4  # chunk documents fetched per query
    _options: ClassVar[tuple[str, ...]] = ("prefix", "max_value_size", "password_file")

    def _make_client(self, password: str | None = None) -> None:
        options = core.client_options(self._client_url, password)
        self._missing_password: PyMongoError | None = None
        try:
            self._client: MongoClient[core.Doc] = MongoClient(self._client_url, **options)
        except ConfigurationError as exc:  # a user name without a password: password_file= may give it
            if password is not None or core.without_userinfo(self._client_url) == self._client_url:
                raise unavailable(self._kind, self._raw_url, exc) from None
            self._client = MongoClient(core.without_userinfo(self._client_url), **options)
            self._missing_password = exc  # reported by _open unless a password file is given
        except PyMongoError as exc:  # a malformed URL or option
            raise unavailable(self._kind, self._raw_url, exc) from None
        self._db = self._client.get_default_database(
            "keepup",
            write_concern=WriteConcern(**core.write_concern(self._durability)),
            read_concern=ReadConcern("local"),
        )
        self._kv = self._db.get_collection(core.collection_name(self._prefix, "kv"))
        self._blobs = self._db.get_collection(core.collection_name(self._prefix, "blobs"))
        self._chunks = self._db.get_collection(core.collection_name(self._prefix, "blob_chunks"))

    def _open(self) -> None:
        """Ask the server its limits, create the collections and indexes (each opener may race
        another: creating what exists is harmless) and refuse a non-binary collation."""
        self._apply_password_file()
        if self._missing_password is not None:
            self._client.close()
            raise unavailable(self._kind, self._raw_url, self._missing_password)
        try:
            try:
                hello = self._db.command("hello")
            except OperationFailure:  # servers before 4.4.2 know only the old name
                hello = self._db.command("isMaster")
            existing = set(self._db.list_collection_names())
            for collection in (self._kv, self._blobs, self._chunks):
                if collection.name not in existing:
                    with suppress(CollectionInvalid):  # created concurrently by another opener
                        self._db.create_collection(collection.name)
                core.check_collation(collection.name, self._url, collection.options())
            self._chunks.create_index([("u", 1), ("n", 1)], unique=True, name="upload_seq")
            self._chunks.create_index("expires", expireAfterSeconds=0, name="unfinished_uploads")
        except KeepupError:
            self._client.close()
            raise
        except PyMongoError as exc:
            self._client.close()
            raise unavailable(self._kind, self._raw_url, exc) from None
        self._max_value_size = core.value_limit(hello, self._requested_max_value)

    def _apply_password_file(self) -> None:
        """With the ``password_file=`` option (URL or keyword), read the password from that file
        (on a worker thread in the async driver) and make the client anew with it: the password
        is never in the URL, so ``ps`` never shows it. ValidationError if the file cannot be
        read (naming the path, never the content)."""
        path = self._opened_with.get("password_file")
        if not path:
            return
        password = password_from_file(str(path), self._kind)
        self._client.close()
        self._make_client(password)

    # key-value ---------------------------------------------------------------------------------
    def _read(self, namespace: str, key: str) -> Entry | None:
        doc = self._kv.find_one({"_id": core.doc_id(namespace, key)}, {"v": 1, "ver": 1})
        return Entry(key, bytes(doc["v"]), int(doc["ver"])) if doc else None

    def _scan_page(
        self, namespace: str, low: bytes, low_inclusive: bool, high: bytes | None, reverse: bool, page: int
    ) -> list[Entry]:
        docs = (
            self._kv.find(core.scan_query(namespace, low, low_inclusive, high), {"v": 1, "ver": 1})
            .sort("_id", DESCENDING if reverse else ASCENDING)
            .limit(page)
            .to_list()
        )
        return [Entry(core.key_of(namespace, d["_id"]), bytes(d["v"]), int(d["ver"])) for d in docs]

    def _write(self, namespace: str, key: str, value: bytes, if_absent: bool, if_version: int | None) -> int:
        """Create-only is an insert (a duplicate id means someone else won), compare-and-set an
        update filtered on the version, and an unconditional put an upsert."""
        doc_id = core.doc_id(namespace, key)
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
        for attempt in range(core.UPSERT_RETRIES):
            try:
                doc = self._kv.find_one_and_update(
                    {"_id": doc_id},
                    {"$set": {"v": value, "ns": namespace}, "$inc": {"ver": Int64(1)}},
                    projection={"ver": 1},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:  # two upserts created the key at once: the loser updates
                if attempt == core.UPSERT_RETRIES - 1:
                    raise
                continue
            assert doc is not None
            return int(doc["ver"])
        raise AssertionError("unreachable")  # pragma: no cover

    def _erase(self, namespace: str, key: str, if_version: int | None) -> bool:
        query: core.Doc = {"_id": core.doc_id(namespace, key)}
        if if_version is not None:
            query["ver"] = if_version
        result = self._kv.delete_one(query)
        deleted = result.deleted_count == 1
        if if_version is not None and not deleted:
            raise ConflictError(f"key {key!r} in {namespace!r} is no longer at version {if_version}")
        return deleted

    def _apply(self, ops: list[Put | Delete]) -> list[int | bool]:
        """Not atomic (see the module docstring): every condition is checked against the current
        versions before the first write, so a batch that would conflict writes nothing; ops are
        then applied in order, each with its own condition, and a concurrent writer can still
        make a later op conflict after earlier ones were applied."""
        ids = list({core.doc_id(op.namespace, op.key) for op in ops})
        found = self._kv.find({"_id": {"$in": ids}}, {"ver": 1}).to_list()
        core.check_conditions(ops, {str(d["_id"]): int(d["ver"]) for d in found})
        results: list[int | bool] = []
        for position, op in enumerate(ops):
            try:
                if isinstance(op, Put):
                    results.append(
                        self._write(op.namespace, op.key, bytes(op.value), op.if_absent, op.if_version)
                    )
                else:
                    results.append(self._erase(op.namespace, op.key, op.if_version))
            except ConflictError as exc:
                raise core.lost_midway(position, exc) from None
        return results

    # blobs -------------------------------------------------------------------------------------
    def _write_chunks(self, upload: str, first: int, chunks: list[bytes]) -> None:
        expires = utc_now() + timedelta(seconds=UPLOAD_TTL)
        self._chunks.insert_many(
            [
                {"u": upload, "n": first + i, "data": chunk, "expires": expires}
                for i, chunk in enumerate(chunks)
            ]
        )

    def _publish(self, upload: str, digest: str, size: int, count: int, created: datetime) -> Published:
        kept = self._chunks.update_many({"u": upload}, {"$unset": {"expires": ""}})
        if kept.matched_count != count:
            return Published.EXPIRED
        try:
            self._blobs.insert_one(
                {"_id": digest, "u": upload, "size": Int64(size), "chunks": count, "created_at": created}
            )
        except DuplicateKeyError:
            return Published.EXISTS
        return Published.NEW

    def _discard(self, upload: str, count: int) -> None:
        self._chunks.delete_many({"u": upload})

    def _read_blob_info(self, digest: str) -> BlobInfo | None:
        doc = self._blobs.find_one({"_id": digest}, {"size": 1, "created_at": 1})
        return BlobInfo(digest, int(doc["size"]), core.utc(doc.get("created_at"))) if doc else None

    def _blob_layout(self, digest: str) -> tuple[str, int] | None:
        doc = self._blobs.find_one({"_id": digest}, {"u": 1, "chunks": 1})
        return None if doc is None else (str(doc["u"]), int(doc["chunks"]))

    def _read_chunks(self, upload: str, start: int, end: int) -> list[bytes | None]:
        docs = (
            self._chunks.find({"u": upload, "n": {"$gte": start, "$lt": end}}, {"n": 1, "data": 1})
            .sort("n", ASCENDING)
            .to_list()
        )
        by_seq = {int(d["n"]): bytes(d["data"]) for d in docs}
        return [by_seq.get(seq) for seq in range(start, end)]

    def _blob_exists(self, digest: str) -> bool:
        return self._blobs.find_one({"_id": digest}, {"_id": 1}) is not None

    def _remove_blob(self, digest: str) -> bool:
        """Remove the blob document, then its chunks (a crash in between leaks chunks, never
        leaves a blob that cannot be read)."""
        doc = self._blobs.find_one_and_delete({"_id": digest}, projection={"u": 1})
        if doc is None:
            return False
        self._chunks.delete_many({"u": doc["u"]})
        return True

    def _blob_page(self, token: str | None) -> tuple[list[BlobInfo], str | None]:
        """By digest (no order is promised)."""
        docs = (
            self._blobs.find({"_id": {"$gt": token or ""}}, {"size": 1, "created_at": 1})
            .sort("_id", ASCENDING)
            .limit(SCAN_PAGE)
            .to_list()
        )
        infos = [BlobInfo(str(d["_id"]), int(d["size"]), core.utc(d.get("created_at"))) for d in docs]
        return infos, infos[-1].digest if len(infos) == SCAN_PAGE else None

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
        layout = self._blob_layout(digest)
        assert layout is not None
        docs = self._chunks.find({"u": layout[0]}).sort("n", ASCENDING).to_list()
        return b"".join(bytes(d["data"]) for d in docs)

    def _set_raw_blob(self, digest: str, data: bytes) -> None:
        layout = self._blob_layout(digest)
        assert layout is not None
        self._chunks.delete_many({"u": layout[0]})
        parts = list(rechunk([data], STORED_CHUNK))
        for n, part in enumerate(parts):
            self._chunks.insert_one({"u": layout[0], "n": n, "data": part})
        self._blobs.update_one({"_id": digest}, {"$set": {"chunks": len(parts)}})
