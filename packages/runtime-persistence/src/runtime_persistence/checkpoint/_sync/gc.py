# Generated from packages/runtime-persistence/src/runtime_persistence/checkpoint/_async/gc.py by scripts/gen_sync.py: edit that file and rerun the script.
"""The garbage collector, written once as async code (``collect`` over an :class:`Driver`);
``_sync/gc.py`` (``collect`` over a :class:`Driver`) is generated from it. The rules and the
safety argument are in :mod:`runtime_persistence.checkpoint.gc`."""

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

from runtime_persistence.checkpoint._collect import (
    RECENT_MARGIN,
    check_grace,
    id_floor,
    provider_roots,
)
from runtime_persistence.checkpoint._records import (
    CKPT_ID_NS,
    CKPT_META_NS,
    CKPT_NS,
    CKPT_WRITE_NS,
    THREAD_NS,
    IdEntry,
    KeyedWrite,
    KeyedWritePack,
    Record,
    WriteRecord,
    is_keyed_pack_key,
    is_record_key,
    lane_of,
    slot_key,
    thread_of_lane,
)
from runtime_persistence.checkpoint._shared import check_place
from runtime_persistence.checkpoint._state import (
    BLOB_NS,
    LOC_AREA,
    LOC_KV,
    iter_blob_refs,
    kv_blob_written_ms,
)
from runtime_persistence.storage.blob_roots import blob_root_providers
from runtime_persistence.storage.serialization import EnvelopeSerializer

__all__ = ["collect"]

_T = TypeVar("_T")


def _decode(ser: Serializer, data: bytes, cls: type[_T], namespace: str, key: str) -> _T:
    return check_place(namespace, key, ser.loads(data, cls, at=(namespace, key)))


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

    grace = check_grace(grace)
    clock = clock or SystemClock()
    ser = serializer or EnvelopeSerializer()
    started = clock.now()
    cutoff = started - grace
    cutoff_ms = int(cutoff.timestamp() * 1000)
    providers = blob_root_providers()

    # Blobs old enough to go are listed before any record is read: a record published after
    # this listing is then seen by the marking below, unless its writer took longer than the
    # grace period between writing its blobs and publishing it. (Marking first left a window as
    # long as the whole collection: a record published after its slot was scanned named blobs
    # that looked unreferenced, and blobs a growing list shares with later saves were lost.)
    young_refs: list[bytes] = []
    kv_old: list[tuple[str, int, int]] = []  # key, version, size
    for entry in driver.scan(BLOB_NS):
        if kv_blob_written_ms(entry.value) >= cutoff_ms:
            young_refs.append(bytes((LOC_KV,)) + bytes.fromhex(entry.key))
        else:
            kv_old.append((entry.key, entry.version, len(entry.value)))
    area_old: list[tuple[str, int]] = []
    for info in driver.list_blobs():
        if info.created_at is None or info.created_at >= cutoff:
            young_refs.append(bytes((LOC_AREA,)) + bytes.fromhex(info.digest))
        else:
            area_old.append((info.digest, info.size))

    live: set[bytes] = set()
    threads = {entry.key for entry in driver.scan(THREAD_NS)}
    published: dict[str, str] = {}  # checkpoint id -> slot key
    orphan_keys: list[str] = []
    orphan_ids: list[str] = []
    for entry in driver.scan(CKPT_NS):
        lane_key = entry.key.split("/", 1)[0]
        thread_id = thread_of_lane(lane_key)
        is_record = is_record_key(entry.key, lane_key)
        if is_record:
            rec = _decode(ser, entry.value, Record, CKPT_NS, entry.key)
            refs = list(iter_blob_refs(rec.channels))
            published[rec.id] = entry.key
            created = rec.created_at
        else:
            write = _decode(ser, entry.value, WriteRecord, CKPT_NS, entry.key)
            refs = list(write.value.blobs)
            created = write.created_at
        if thread_id not in threads and created < cutoff:
            orphan_keys.append(entry.key)
            if is_record:
                orphan_ids.append(rec.id)
            continue
        live.update(refs)
    for prov in providers.values():
        roots = provider_roots(prov, driver, ser)
        for digest in roots:
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
    for entry in driver.scan(CKPT_ID_NS, after=id_floor(started - RECENT_MARGIN)):
        if entry.key in published:
            continue
        loc = _decode(ser, entry.value, IdEntry, CKPT_ID_NS, entry.key)
        found_slot = slot_key(lane_of(loc), loc.seq)
        found = driver.get(CKPT_NS, found_slot)
        if found is not None:
            found_rec = _decode(ser, found.value, Record, CKPT_NS, found_slot)
            live.update(iter_blob_refs(found_rec.channels))
            if found_rec.id == entry.key:
                dangling.discard(entry.key)

    young = sum(1 for ref in young_refs if ref not in live)
    removed = freed = 0
    for key, version, size in kv_old:
        if bytes((LOC_KV,)) + bytes.fromhex(key) in live:
            continue
        if not dry_run:
            try:
                driver.delete(BLOB_NS, key, if_version=version)
            except ConflictError:
                continue  # rewritten meanwhile: it is young again
        removed += 1
        freed += size
    for digest, size in area_old:
        if bytes((LOC_AREA,)) + bytes.fromhex(digest) in live:
            continue
        if not dry_run:
            try:
                driver.delete_blob(digest)
            except NotFoundError:
                continue
        removed += 1
        freed += size

    # keyed pending writes of threads that no longer exist (a write that raced delete_thread),
    # and metadata index entries of checkpoints that no longer exist
    orphan_writes: list[str] = []
    for entry in driver.scan(CKPT_WRITE_NS):
        if (
            thread_of_lane(entry.key) not in threads
            and (
                _decode(ser, entry.value, KeyedWritePack, CKPT_WRITE_NS, entry.key).created_at
                if is_keyed_pack_key(entry.key)
                else _decode(ser, entry.value, KeyedWrite, CKPT_WRITE_NS, entry.key).created_at
            )
            < cutoff
        ):
            orphan_writes.append(entry.key)
    stale_meta: list[str] = []
    for entry in driver.scan(CKPT_META_NS):
        cp_id = entry.key.rsplit("/", 1)[-1]
        try:
            old_enough = id_timestamp(cp_id) < cutoff
        except ValidationError:
            old_enough = True
        if old_enough and cp_id not in published and driver.get(CKPT_ID_NS, cp_id) is None:
            stale_meta.append(entry.key)

    records = len(orphan_ids) + len(dangling) + len(orphan_writes) + len(stale_meta)
    if not dry_run:
        ops = [Delete(CKPT_WRITE_NS, k) for k in orphan_writes]
        ops += [Delete(CKPT_META_NS, k) for k in stale_meta]
        ops += [Delete(CKPT_NS, k) for k in orphan_keys]
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
