"""Garbage collection of blobs nothing references, safe against concurrent writers.

**Roots.** Checkpoint records and pending writes are marked here. Every other repository that
keeps blobs in the driver's blob area registers a *root provider* with
:func:`register_blob_roots` (``fn(driver) -> iterable of hex digests``); the artifact store does
so when imported, and gc imports the built-in repositories before collecting so their roots are
never missing. Third-party packages register through the ``keepup.blob_roots`` entry-point group
(``name = "module:function"``). A blob in the blob area that no provider names is garbage: a
package that stores blobs must register its roots.

**Safety.** Writes go bottom-up (blobs, then the record that names them, then the head) and
collection top-down: mark from every live record, then delete only unreferenced blobs older than
``grace``. A writer that stored a blob but has not yet published its record is protected by the
grace period (each KV blob carries its write time, refreshed whenever a save writes it again;
a re-put between our read and our delete wins through the delete's version check). Records
published during the collection that reuse old blobs without rewriting them (restore, fork,
copy) are found by a second look at every checkpoint id created since shortly before the
collection began, and their blobs are spared.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

from runtime_core import (
    Clock,
    ConflictError,
    Delete,
    Driver,
    GcReport,
    NotFoundError,
    Serializer,
    SystemClock,
    ValidationError,
    id_timestamp,
    validate_digest,
)

from runtime_persistence.checkpoint._records import (
    CKPT_ID_NS,
    CKPT_NS,
    THREAD_NS,
    IdEntry,
    Record,
    WriteRecord,
    is_record_key,
    slot_key,
)
from runtime_persistence.checkpoint._state import (
    BLOB_NS,
    LOC_AREA,
    LOC_KV,
    iter_blob_refs,
    kv_blob_written_ms,
)
from runtime_persistence.storage.blob_roots import (
    ENTRY_POINT_GROUP,
    BlobRootProvider,
    blob_root_providers,
    register_blob_roots,
    unregister_blob_roots,
)
from runtime_persistence.storage.serialization import EnvelopeSerializer

__all__ = [
    "DEFAULT_GRACE",
    "ENTRY_POINT_GROUP",
    "BlobRootProvider",
    "blob_root_providers",
    "collect",
    "register_blob_roots",
    "unregister_blob_roots",
]

DEFAULT_GRACE = timedelta(hours=1)
RECENT_MARGIN = timedelta(minutes=10)

_T = TypeVar("_T")


def _decode(ser: Serializer, data: bytes, cls: type[_T]) -> _T:
    return ser.loads(data, cls)


def collect(
    driver: Driver,
    *,
    grace: timedelta | None = None,
    dry_run: bool = False,
    clock: Clock | None = None,
    serializer: Serializer | None = None,
) -> GcReport:
    """Remove unreferenced blobs older than ``grace`` (default one hour), id entries of
    checkpoints that were never published, and records of threads that no longer exist
    (older than ``grace``). With ``dry_run`` nothing is deleted and the report says what would be."""

    grace = DEFAULT_GRACE if grace is None else grace
    if not isinstance(grace, timedelta) or grace < timedelta(0):
        raise ValidationError(f"grace must be a non-negative timedelta, got {grace!r:.40}")
    clock = clock or SystemClock()
    ser = serializer or EnvelopeSerializer()
    started = clock.now()
    cutoff = started - grace
    cutoff_ms = int(cutoff.timestamp() * 1000)
    providers = blob_root_providers()

    live: set[bytes] = set()
    threads = {entry.key for entry in driver.scan(THREAD_NS)}
    published: dict[str, str] = {}  # checkpoint id -> slot key
    orphan_keys: list[str] = []
    orphan_ids: list[str] = []
    for entry in driver.scan(CKPT_NS):
        thread_id = entry.key.split("/", 1)[0]
        is_record = is_record_key(entry.key, thread_id)
        if is_record:
            rec = _decode(ser, entry.value, Record)
            refs = list(iter_blob_refs(rec.channels))
            published[rec.id] = entry.key
            created = rec.created_at
        else:
            write = _decode(ser, entry.value, WriteRecord)
            refs = list(write.value.blobs)
            created = write.created_at
        if thread_id not in threads and created < cutoff:
            orphan_keys.append(entry.key)
            if is_record:
                orphan_ids.append(rec.id)
            continue
        live.update(refs)
    for provider in providers.values():
        fn = provider.sync
        for digest in fn(driver):
            raw = bytes.fromhex(validate_digest(digest))
            live.add(bytes((LOC_KV,)) + raw)
            live.add(bytes((LOC_AREA,)) + raw)

    dangling: set[str] = set()
    for entry in driver.scan(CKPT_ID_NS):
        if entry.key in published:
            continue
        try:
            old = id_timestamp(entry.key) < cutoff
        except ValidationError:
            old = True
        if old:
            dangling.add(entry.key)

    # a second look at checkpoints published since shortly before we started
    since = started - RECENT_MARGIN
    since_key = f"{int(since.timestamp() * 1000):012x}"
    since_key = f"{since_key[:8]}-{since_key[8:]}"
    for entry in driver.scan(CKPT_ID_NS, after=since_key):
        if entry.key in published:
            continue
        loc = _decode(ser, entry.value, IdEntry)
        found = driver.get(CKPT_NS, slot_key(loc.thread_id, loc.seq))
        if found is not None:
            found_rec = _decode(ser, found.value, Record)
            live.update(iter_blob_refs(found_rec.channels))
            if found_rec.id == entry.key:
                dangling.discard(entry.key)

    removed = freed = young = 0
    for entry in driver.scan(BLOB_NS):
        if bytes((LOC_KV,)) + bytes.fromhex(entry.key) in live:
            continue
        if kv_blob_written_ms(entry.value) >= cutoff_ms:
            young += 1
            continue
        if not dry_run:
            try:
                driver.delete(BLOB_NS, entry.key, if_version=entry.version)
            except ConflictError:
                continue  # rewritten meanwhile: it is young again
        removed += 1
        freed += len(entry.value)
    for info in list(driver.list_blobs()):
        if bytes((LOC_AREA,)) + bytes.fromhex(info.digest) in live:
            continue
        if info.created_at is None or info.created_at >= cutoff:
            young += 1
            continue
        if not dry_run:
            try:
                driver.delete_blob(info.digest)
            except NotFoundError:
                continue
        removed += 1
        freed += info.size

    records = len(orphan_ids) + len(dangling)
    if not dry_run:
        ops = [Delete(CKPT_NS, k) for k in orphan_keys]
        ops += [Delete(CKPT_ID_NS, k) for k in orphan_ids]
        ops += [Delete(CKPT_ID_NS, k) for k in sorted(dangling)]
        for i in range(0, len(ops), 200):
            driver.batch(ops[i : i + 200])
    return GcReport(
        blobs_removed=removed,
        bytes_freed=freed,
        records_removed=records,
        blobs_kept_young=young,
        dry_run=dry_run,
    )
