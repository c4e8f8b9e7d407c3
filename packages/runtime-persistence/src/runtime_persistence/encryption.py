"""Encrypting an existing store (``keepup store encrypt``): every record of every Keepup
namespace rewritten bound to its place and encrypted under a key. See
:mod:`runtime_persistence.storage.encryption` for how, and docs/security.md for why."""

from __future__ import annotations

from collections.abc import Callable

from runtime_core import Driver

from runtime_persistence.artifact._records import ARTIFACT_HWM_NS, ARTIFACT_NS
from runtime_persistence.checkpoint._records import (
    CKPT_ID_NS,
    CKPT_NS,
    CKPT_PIN_NS,
    FORK_NS,
    HEAD_NS,
    THREAD_NS,
)
from runtime_persistence.session._records import (
    EVENT_NS,
    EVENT_TOPIC_NS,
    RUN_NS,
    RUN_STATUS_NS,
    RUN_THREAD_NS,
    SESSION_NS,
    SESSION_STATUS_NS,
    TASK_CHILD_NS,
    TASK_LOG_NS,
    TASK_NS,
)
from runtime_persistence.storage._lease_record import LEASE_NS
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
from runtime_persistence.storage.serialization import EnvelopeSerializer, Keyring

__all__ = [
    "KEYRING_ENV",
    "KEYRING_FILE",
    "RECORD_NAMESPACES",
    "EncryptReport",
    "add_keyring_key",
    "decode_key",
    "encrypt_store",
    "read_keyring_file",
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
)
"""Every namespace whose values Keepup writes as records or index markers. Not here: the
checkpoint blob namespace (``ckpt.blob``) and the blob area, whose names are digests of their
bytes; their blobs stay as they were written (see docs/security.md)."""


def encrypt_store(
    driver: Driver,
    keyring: Keyring,
    *,
    dry_run: bool = False,
    namespaces: tuple[str, ...] = RECORD_NAMESPACES,
    progress: Callable[[EncryptReport], None] | None = None,
) -> EncryptReport:
    """Rewrite every record of ``driver`` bound to its place and encrypted with ``keyring``'s
    active key. Records under other keys of the ring are rewritten under the active one
    (rotation); records already under it are left alone, so running it again after an
    interruption finishes the job. With ``dry_run`` nothing is written. Afterwards open the
    store with ``EnvelopeSerializer(keyring=keyring)``: plaintext is then refused."""
    serializer = EnvelopeSerializer(keyring=keyring, accept_plaintext=True)
    return encrypt_records(driver, serializer, namespaces, dry_run=dry_run, progress=progress)
