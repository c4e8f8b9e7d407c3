"""Encrypting an existing store (``keepup store encrypt``): every record of every Keepup
namespace rewritten bound to its place and encrypted under a key, then every checkpoint blob.
See :mod:`runtime_persistence.storage.encryption` for the records, and docs/security.md for why.

Checkpoint blobs (``ckpt.blob`` and the blob area) are content-addressed: a blob's name is the
SHA-256 of its stored bytes, so encrypting one gives it a new name. For each checkpoint record
and pending write, every blob it names that is not yet encrypted under the active key is
re-encrypted (its encoded payload kept byte for byte) and stored under its new name; then the
record is rewritten naming the new blobs (a compare-and-set on the version read: a concurrent
change is read and judged again). Last, every plaintext or old-key checkpoint blob that no record
names any more is deleted, at once rather than after gc's grace period: it is plaintext.

Resumable: a blob already under the active key is kept, a record naming only such blobs is left
alone, and an encrypted blob written by a run killed before its record was rewritten is garbage
that gc collects. Blobs of artifacts and snapshot packs are not envelopes and are never touched
(they are kept by the registered blob roots)."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from typing import Any

import msgspec
from runtime_core import ConflictError, CorruptionError, Driver, NotFoundError, StorageError

from runtime_persistence.artifact._records import ARTIFACT_HWM_NS, ARTIFACT_NS
from runtime_persistence.checkpoint._records import (
    CKPT_ID_NS,
    CKPT_KEY_NS,
    CKPT_META_NS,
    CKPT_NS,
    CKPT_PIN_NS,
    CKPT_WRITE_NS,
    FORK_NS,
    HEAD_NS,
    NS_NS,
    THREAD_KEY_NS,
    THREAD_NS,
    Record,
    WriteRecord,
    is_record_key,
)
from runtime_persistence.checkpoint._shared import check_place
from runtime_persistence.checkpoint._state import (
    BLOB_NS,
    KV_BLOB_MAX,
    LOC_AREA,
    LOC_KV,
    ChannelRef,
    iter_blob_refs,
    kv_envelope,
    ref_digest,
)
from runtime_persistence.session._message_records import MESSAGE_NS as SESSION_MESSAGE_NS
from runtime_persistence.session._message_records import SESSION_KEY_NS
from runtime_persistence.session._records import (
    EVENT_NS,
    EVENT_TOPIC_NS,
    RUN_NS,
    RUN_STATUS_NS,
    RUN_THREAD_NS,
    SESSION_NS,
    SESSION_RUN_NS,
    SESSION_STATUS_NS,
    SESSION_THREAD_NS,
    TASK_CHILD_NS,
    TASK_EXTERNAL_NS,
    TASK_INDEX_NS,
    TASK_LOG_NS,
    TASK_NS,
)
from runtime_persistence.session.recorder._model import (
    MESSAGE_CHUNK_NS,
    MESSAGE_CONV_NS,
    MESSAGE_ID_NS,
    MESSAGE_NS,
    MESSAGE_STATE_NS,
    MESSAGE_THREAD_NS,
)
from runtime_persistence.shadow_git._pack_records import PACK_NS
from runtime_persistence.storage._lease_record import LEASE_NS
from runtime_persistence.storage.blob_roots import blob_root_providers, provider_roots
from runtime_persistence.storage.encryption import (
    KEYRING_ENV,
    KEYRING_FILE,
    EncryptReport,
    add_keyring_key,
    decode_key,
    encrypt_records,
    read_keyring_file,
    write_keyring_file,
)
from runtime_persistence.storage.serialization import MAGIC, EnvelopeSerializer, Keyring

__all__ = [
    "KEYRING_ENV",
    "KEYRING_FILE",
    "RECORD_NAMESPACES",
    "UNENCRYPTED_NAMESPACES",
    "EncryptReport",
    "add_keyring_key",
    "decode_key",
    "encrypt_store",
    "read_keyring_file",
    "scrub_sqlite_store",
    "write_keyring_file",
]

RECORD_NAMESPACES: tuple[str, ...] = (
    THREAD_NS,
    HEAD_NS,
    FORK_NS,
    CKPT_NS,
    CKPT_ID_NS,
    CKPT_PIN_NS,
    ARTIFACT_NS,
    ARTIFACT_HWM_NS,
    SESSION_NS,
    SESSION_STATUS_NS,
    RUN_NS,
    RUN_STATUS_NS,
    RUN_THREAD_NS,
    TASK_NS,
    TASK_CHILD_NS,
    TASK_LOG_NS,
    EVENT_NS,
    EVENT_TOPIC_NS,
    LEASE_NS,
    THREAD_KEY_NS,
    CKPT_KEY_NS,
    CKPT_WRITE_NS,
    CKPT_META_NS,
    NS_NS,
    SESSION_MESSAGE_NS,
    SESSION_KEY_NS,
    SESSION_THREAD_NS,
    SESSION_RUN_NS,
    TASK_EXTERNAL_NS,
    PACK_NS,
    TASK_INDEX_NS,
    # the recorder's MessageStore (its id, conversation and thread index rows are raw offsets
    # and thread ids, not envelopes: encrypt_records counts them as such and leaves them)
    MESSAGE_NS,
    MESSAGE_CHUNK_NS,
    MESSAGE_STATE_NS,
    MESSAGE_ID_NS,
    MESSAGE_CONV_NS,
    MESSAGE_THREAD_NS,
    # keepup-adk's session service (its namespaces, spelled here: this package does not
    # import the adapter)
    "adk.session",
    "adk.state",
    "adk.event",
)
"""Every namespace whose values Keepup writes as records or index markers, read by repositories
that take a keyring. Not here: the checkpoint blob namespace (``ckpt.blob``) and the blob area,
whose names are digests of their bytes (:func:`encrypt_store` handles checkpoint blobs
separately, see the module docstring), and :data:`UNENCRYPTED_NAMESPACES`."""

UNENCRYPTED_NAMESPACES: dict[str, str] = {}
"""Namespaces whose records ``store encrypt`` leaves as they are, and why (a reader that cannot
take a keyring would be locked out of encrypted records). None today: every record writer takes
the runtime's serializer."""


def encrypt_store(
    driver: Driver,
    keyring: Keyring,
    *,
    dry_run: bool = False,
    namespaces: tuple[str, ...] = RECORD_NAMESPACES,
    progress: Callable[[EncryptReport], None] | None = None,
    blobs: bool = True,
) -> EncryptReport:
    """Rewrite every record of ``driver`` bound to its place and encrypted with ``keyring``'s
    active key. Records under other keys of the ring are rewritten under the active one
    (rotation); records already under it are left alone, so running it again after an
    interruption finishes the job. Then, with ``blobs``, every checkpoint blob is re-encrypted
    under the active key and the records naming it are relinked, and plaintext blobs no record
    names are deleted (see the module docstring): afterwards no checkpoint content is left in
    plaintext. With ``dry_run`` nothing is written. Afterwards open the store with
    ``EnvelopeSerializer(keyring=keyring)``: plaintext is then refused."""
    serializer = EnvelopeSerializer(keyring=keyring, accept_plaintext=True)
    report = encrypt_records(driver, serializer, namespaces, dry_run=dry_run, progress=progress)
    if blobs:
        _Blobs(driver, serializer, report).run(progress)
    return report


def scrub_sqlite_store(url: str) -> bool:
    """After :func:`encrypt_store` on a ``sqlite://`` store: ``VACUUM`` it and truncate its WAL,
    so the old plaintext pages (free pages of the file, frames of the WAL) are gone from disk
    too; False for any other store. Needs no other writer for the moment it runs (SQLite waits
    for one up to 30 s, then raises)."""
    import sqlite3

    from runtime_persistence.storage.drivers._sqlite_backup import sqlite_path_of

    path = sqlite_path_of(url)
    if path is None:
        return False
    con = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    try:
        con.execute("PRAGMA secure_delete = ON")
        con.execute("VACUUM")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        raise StorageError(f"could not compact {path} after encrypting it: {exc}") from exc
    finally:
        con.close()
    return True


_PAGE = 256
_RETRIES = 20


class _Blobs:
    """The checkpoint-blob phase of :func:`encrypt_store` (see the module docstring)."""

    def __init__(self, driver: Driver, ser: EnvelopeSerializer, report: EncryptReport) -> None:
        self.driver = driver
        self.ser = ser
        self.report = report
        self.dry_run = report.dry_run
        self.kv_max = min(KV_BLOB_MAX, max(0, driver.max_value_size - 8))
        self.moved: dict[bytes, bytes] = {}  # old ref -> its encrypted replacement (itself if already)
        self.replaced: set[bytes] = set()  # old refs that got a replacement

    def run(self, progress: Callable[[EncryptReport], None] | None) -> None:
        for entry in self._scan(CKPT_NS):
            self._relink(entry.key, entry.value, entry.version)
            if progress is not None:
                progress(self.report)
        self._remove_plaintext()

    def _scan(self, namespace: str) -> Any:
        after: str | None = None
        while True:
            page = list(self.driver.scan(namespace, after=after, limit=_PAGE))
            yield from page
            if len(page) < _PAGE:
                return
            after = page[-1].key

    def _decode(self, key: str, value: bytes) -> Record | WriteRecord:
        kind: type[Record] | type[WriteRecord] = (
            Record if is_record_key(key, key.split("/", 1)[0]) else WriteRecord
        )
        return check_place(CKPT_NS, key, self.ser.loads(value, kind, at=(CKPT_NS, key)))

    def _relink(self, key: str, value: bytes, version: int) -> None:
        for _ in range(_RETRIES):
            try:
                rec = self._decode(key, value)
                refs = (
                    list(iter_blob_refs(rec.channels)) if isinstance(rec, Record) else list(rec.value.blobs)
                )
                new = {ref: self._blob(ref) for ref in refs}
            except CorruptionError as exc:
                if not any(ns == CKPT_NS and k == key for ns, k, _ in self.report.damaged):
                    self.report.damaged.append((CKPT_NS, key, str(exc)))  # once, if the records saw it
                return
            if all(new[ref] == ref for ref in refs):
                return
            self.report.records_relinked += 1
            if self.dry_run:
                return
            data = self.ser.dumps(_relinked(rec, new), at=(CKPT_NS, key))
            try:
                self.driver.put(CKPT_NS, key, data, if_version=version)
                return
            except ConflictError:
                self.report.records_relinked -= 1
                current = self.driver.get(CKPT_NS, key)
                if current is None:
                    return  # deleted meanwhile (pruned): its blobs are garbage
                value, version = current.value, current.version
        raise ConflictError(f"{CKPT_NS}/{key} kept changing while its blobs were encrypted; run again")

    def _envelope(self, ref: bytes) -> bytes:
        digest = ref_digest(ref)
        if ref[0] == LOC_KV:
            entry = self.driver.get(BLOB_NS, digest)
            if entry is None:
                raise CorruptionError(f"blob {digest} named by a checkpoint is missing")
            return kv_envelope(digest, entry.value)
        try:
            return self.driver.get_blob(digest)
        except NotFoundError:
            raise CorruptionError(f"blob {digest} named by a checkpoint is missing") from None

    def _blob(self, ref: bytes) -> bytes:
        """The reference of ``ref``'s blob encrypted under the active key (``ref`` itself when it
        already is), stored unless this is a dry run."""
        found = self.moved.get(ref)
        if found is not None:
            return found
        sealed = self.ser.reseal(self._envelope(ref), at=None)
        if sealed is None:
            self.report.blobs_already += 1
            self.moved[ref] = ref
            return ref
        digest = hashlib.sha256(sealed).digest()
        loc = LOC_KV if len(sealed) <= self.kv_max else LOC_AREA
        new = bytes((loc,)) + digest
        if not self.dry_run:
            if loc == LOC_KV:
                stamp = int(time.time() * 1000).to_bytes(8, "big")
                with contextlib.suppress(ConflictError):  # the same bytes are there already
                    self.driver.put(BLOB_NS, digest.hex(), stamp + sealed, if_absent=True)
            else:
                self.driver.put_blob(sealed, digest.hex())
        self.report.blobs_rewritten += 1
        self.moved[ref] = new
        self.replaced.add(ref)
        return new

    def _live(self) -> set[bytes] | None:
        """Every blob a checkpoint record or pending write names; None when one of them cannot be
        read (damaged): which blobs it names is then unknown, so nothing may be removed."""
        live: set[bytes] = set()
        for entry in self._scan(CKPT_NS):
            try:
                rec = self._decode(entry.key, entry.value)
            except CorruptionError:
                return None
            live.update(iter_blob_refs(rec.channels) if isinstance(rec, Record) else rec.value.blobs)
        return live

    def _stale(self, envelope: bytes) -> bool:
        """Whether a checkpoint blob's envelope is plaintext or under another key than the active
        one (so it must not stay once no record names it)."""
        try:
            return self.ser.reseal(envelope, at=None) is not None
        except CorruptionError:
            return False  # not ours to judge (damaged): gc decides

    def _remove_plaintext(self) -> None:
        live = self._live()
        if live is None:  # a damaged record (listed in the report) may name any blob: keep them all
            return
        if self.dry_run:
            # what a real run would remove: the replaced blobs, and stale ones no record names
            doomed = set(self.replaced)
            for entry in self._scan(BLOB_NS):
                ref = bytes((LOC_KV,)) + bytes.fromhex(entry.key)
                if ref not in live and len(entry.value) > 8 and self._stale(bytes(entry.value[8:])):
                    doomed.add(ref)
            self.report.blobs_removed = len(doomed)
            return
        roots: set[str] = set()
        for provider in blob_root_providers().values():
            roots.update(provider_roots(provider, self.driver, self.ser))
        for entry in list(self._scan(BLOB_NS)):
            ref = bytes((LOC_KV,)) + bytes.fromhex(entry.key)
            if ref in live or entry.key in roots:
                continue
            if len(entry.value) > 8 and self._stale(bytes(entry.value[8:])):
                try:
                    self.driver.delete(BLOB_NS, entry.key, if_version=entry.version)
                except ConflictError:
                    continue
                self.report.blobs_removed += 1
        for info in list(self.driver.list_blobs()):
            ref = bytes((LOC_AREA,)) + bytes.fromhex(info.digest)
            if ref in live or info.digest in roots:
                continue
            if ref not in self.replaced:
                try:
                    head = self.driver.get_blob(info.digest)
                except (NotFoundError, CorruptionError):
                    continue
                if bytes(head[:2]) != MAGIC or not self._stale(head):
                    continue
            if self.driver.delete_blob(info.digest):
                self.report.blobs_removed += 1


def _relinked(rec: Record | WriteRecord, new: dict[bytes, bytes]) -> Record | WriteRecord:
    def ref(channel: ChannelRef) -> ChannelRef:
        return msgspec.structs.replace(channel, blobs=[new[b] for b in channel.blobs])

    if isinstance(rec, Record):
        return msgspec.structs.replace(rec, channels={k: ref(v) for k, v in rec.channels.items()})
    return msgspec.structs.replace(rec, value=ref(rec.value))
