"""The MongoDB driver (``mongodb://user:password@host:port/db?prefix=p_``, also ``mongodb+srv://``),
pymongo (extra ``[mongodb]``). The database is the one named in the URL (``keepup`` if none).

Layout: a collection ``<prefix>keepup_kv`` whose documents have ``_id = "<namespace>|<key>"``
(strings compare by their UTF-8 bytes in MongoDB's default binary comparison, and ``|`` cannot
occur in a namespace, so one ``_id`` range is one namespace in key byte order), the value as
binary ``v`` and the version ``ver``; blobs in ``<prefix>keepup_blobs`` (``_id`` = digest) over
1 MiB chunk documents in ``<prefix>keepup_blob_chunks``.

Two twins with the same guarantees and errors: :class:`AsyncMongoDriver` on pymongo's native async
API (``AsyncMongoClient``; what :func:`~runtime_persistence.open_store_async` gives for
``mongodb://``) and :class:`MongoDriver` on ``MongoClient``, generated from the async source
(``_async/mongodb.py``) by scripts/gen_sync.py.

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
``max_value_size``, ``password_file`` (the password is the file's first line, read when the
store is opened, so it never has to be in the URL); every other query parameter is a pymongo URI option
(``serverSelectionTimeoutMS`` and ``connectTimeoutMS`` default to 5 seconds).

**Untested against a server in this repository's CI** (no MongoDB there): the conformance suite
runs against it wherever ``KEEPUP_TEST_MONGODB_URL`` is set."""

from runtime_persistence.storage.drivers._async.mongodb import AsyncMongoDriver
from runtime_persistence.storage.drivers._sync.mongodb import MongoDriver

__all__ = ["AsyncMongoDriver", "MongoDriver"]
