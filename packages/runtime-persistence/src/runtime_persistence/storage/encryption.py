"""Rewriting a store's records under a key: the engine of ``keepup store encrypt``.

Every record of the given namespaces is read with the migration switch
(``EnvelopeSerializer(keyring=..., accept_plaintext=True)``) and written back bound to its place
and encrypted with the keyring's active key (:meth:`EnvelopeSerializer.reseal`: its encoded payload
is kept byte for byte, nothing is decoded). Each rewrite is a compare-and-set on the version read,
so a concurrent writer is never overwritten: the record is read again and judged again.

Resumable by construction: a record already bound and encrypted under the active key is left
alone, so a run that was killed part-way is finished by running it again (records are rewritten
one at a time; each is either the old or the new envelope, never a mix). A dry run reads
everything and writes nothing.

Values that are not envelopes (index markers) are counted and left alone. Namespaces whose keys
are content digests (blobs) must not be given: their bytes are what their names hash."""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runtime_core import ConflictError, CorruptionError, Driver, ValidationError

from runtime_persistence.storage.private import KEYRING_ENV, KEYRING_FILE, PRIVATE_FILE
from runtime_persistence.storage.serialization import MAGIC, EnvelopeSerializer, Keyring

__all__ = [
    "KEYRING_ENV",
    "KEYRING_FILE",
    "EncryptReport",
    "add_keyring_key",
    "decode_key",
    "encrypt_records",
    "read_keyring_file",
    "write_keyring_file",
]


_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def decode_key(text: bytes | str, where: str) -> bytes:
    """A 256-bit key from 32 raw bytes, 64 hex digits or base64; ValidationError naming
    ``where`` (never the key) otherwise."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    if isinstance(text, bytes) and len(raw) == 32:
        return raw
    stripped = raw.strip()
    for decode in (bytes.fromhex, base64.b64decode):
        try:
            key = decode(stripped.decode("ascii"))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            continue
        if len(key) == 32:
            return key
    raise ValidationError(f"{where} must hold a 256-bit key: 32 raw bytes, 64 hex digits or its base64")


def read_keyring_file(path: str | os.PathLike[str]) -> Keyring:
    """The keyring in the TOML file ``path``::

        active = "k2"            # the key new records are encrypted with
        [keys]
        k1 = "base64 or hex of 32 bytes"
        k2 = "..."

    Older keys stay so records written under them can be read (and re-encrypted by ``keepup
    store encrypt``). The file holds secrets: one that its group or others can read or write is
    refused, as is a symlink. Every error is a ValidationError naming the file, never a key."""
    file = Path(path).expanduser()
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise ValidationError(f"cannot read the keyring file {file}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValidationError(f"the keyring file {file} is not a regular file")
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise ValidationError(
                f"the keyring file {file} is open to other users (mode {stat.S_IMODE(st.st_mode):o}); "
                f"run `chmod 600 {file}` and consider its keys exposed"
            )
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(1 << 20)
    finally:
        os.close(fd)
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"the keyring file {file} is not valid TOML: {str(exc)[:120]}") from None
    keys = doc.get("keys")
    active = doc.get("active")
    if not isinstance(keys, dict) or not keys:
        raise ValidationError(f"the keyring file {file} has no [keys] table with at least one key")
    if extra := sorted(set(doc) - {"active", "keys"}):
        raise ValidationError(f"the keyring file {file} has unknown entries: {', '.join(extra)}")
    ring = Keyring()
    for key_id, text in keys.items():
        if not _KEY_ID.fullmatch(key_id):
            raise ValidationError(
                f"the keyring file {file} has a bad key id {key_id!r:.70} (letters, digits, '.', '_', '-')"
            )
        if not isinstance(text, str):
            raise ValidationError(f"key {key_id!r} in {file} is not a string")
        ring.add(key_id, decode_key(text, f"key {key_id!r} in {file}"), activate=False)
    if active is None:
        raise ValidationError(f'the keyring file {file} names no active key (active = "ID")')
    if not isinstance(active, str) or active not in keys:
        raise ValidationError(f"the active key {active!r:.70} of {file} is not in its [keys]")
    ring.activate(active)
    return ring


def write_keyring_file(path: str | os.PathLike[str], keys: Mapping[str, bytes], active: str) -> None:
    """Write ``keys`` (id -> 32-byte key) to the keyring file ``path``, mode 0600, atomically
    (a temporary file, fsync, rename, fsync of the folder): a crash leaves the old file or the new."""
    file = Path(path).expanduser()
    if active not in keys:
        raise ValidationError(f"the active key {active!r} is not among the keys")
    lines = [
        "# Keepup keyring. Keep it private (0600) and back it up: without it an encrypted store",
        "# cannot be read. `keepup store key new ID` adds a key; `keepup store encrypt` moves",
        "# every record to the active one.",
        f'active = "{active}"',
        "",
        "[keys]",
    ]
    for key_id, key in keys.items():
        if not _KEY_ID.fullmatch(key_id):
            raise ValidationError(f"a key id is letters, digits, '.', '_' and '-', got {key_id!r:.70}")
        if len(key) != 32:
            raise ValidationError("an AES-256-GCM key is exactly 32 bytes")
        lines.append(f'{key_id} = "{base64.b64encode(key).decode("ascii")}"')
    data = ("\n".join(lines) + "\n").encode("ascii")
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb", closefd=False) as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, file)
    dir_fd = os.open(file.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def add_keyring_key(
    path: str | os.PathLike[str], key_id: str, *, key: bytes | None = None, activate: bool = True
) -> Keyring:
    """Add a key (a fresh random one unless ``key`` is given) under ``key_id`` to the keyring file
    ``path``, creating the file; with ``activate`` new records are encrypted with it. Key ids are
    never reused. Returns the new keyring."""
    file = Path(path).expanduser()
    keys: dict[str, bytes] = {}
    active = key_id
    if file.exists() or file.is_symlink():
        doc_ring = read_keyring_file(file)  # checks the mode and every key
        keys = _raw_keys(file)
        if not activate:
            active = doc_ring.active_id
    if key_id in keys:
        raise ValidationError(f"key id {key_id!r} is already in {file}; key ids are never reused")
    keys[key_id] = key if key is not None else Keyring.generate_key()
    write_keyring_file(file, keys, active)
    return read_keyring_file(file)


def _raw_keys(file: Path) -> dict[str, bytes]:
    doc = tomllib.loads(file.read_text("utf-8"))
    return {k: decode_key(v, f"key {k!r} in {file}") for k, v in doc["keys"].items()}


_PAGE = 256
_RETRIES = 20


@dataclass(slots=True)
class EncryptReport:
    """What :func:`encrypt_records` did (or, with ``dry_run``, would do)."""

    key_id: str
    dry_run: bool
    rewritten: int = 0  # with dry_run: would be rewritten
    already: int = 0  # bound and encrypted under the active key already
    not_envelopes: int = 0  # index markers and other raw values, left alone
    damaged: list[tuple[str, str, str]] = field(default_factory=list)  # (namespace, key, error)
    by_namespace: dict[str, dict[str, int]] = field(default_factory=dict)
    # checkpoint blobs (content-addressed: re-encrypting one gives it a new name)
    blobs_rewritten: int = 0  # written again encrypted under the active key, under their new digest
    blobs_already: int = 0  # encrypted under the active key already
    records_relinked: int = 0  # checkpoint records and pending writes rewritten to name the new blobs
    blobs_removed: int = 0  # plaintext (or old-key) blobs no record names any more, deleted

    @property
    def seen(self) -> int:
        return self.rewritten + self.already + self.not_envelopes + len(self.damaged)

    def _count(self, namespace: str, what: str) -> None:
        counts = self.by_namespace.setdefault(namespace, {"rewritten": 0, "already": 0, "not_envelopes": 0})
        counts[what] = counts.get(what, 0) + 1


def encrypt_records(
    driver: Driver,
    serializer: EnvelopeSerializer,
    namespaces: Iterable[str],
    *,
    dry_run: bool = False,
    progress: Callable[[EncryptReport], None] | None = None,
) -> EncryptReport:
    """Rewrite every record of ``namespaces`` bound to its place and encrypted with the active
    key of ``serializer``'s keyring (see the module docstring). ``serializer`` must have a
    keyring and ``accept_plaintext=True``. A damaged record (CorruptionError) is listed in the
    report and left as it is; the others are still rewritten. ``progress`` is called after
    each record."""
    keyring = serializer.keyring
    if keyring is None or not serializer.accepts_plaintext:
        raise ValidationError(
            "encrypting a store needs a serializer with a keyring and accept_plaintext=True"
        )
    report = EncryptReport(key_id=keyring.active_id, dry_run=dry_run)
    for namespace in namespaces:
        report.by_namespace.setdefault(namespace, {"rewritten": 0, "already": 0, "not_envelopes": 0})
        after: str | None = None
        while True:
            page = list(driver.scan(namespace, after=after, limit=_PAGE))
            for entry in page:
                _one(driver, serializer, namespace, entry.key, entry.value, entry.version, report)
                if progress is not None:
                    progress(report)
            if len(page) < _PAGE:
                break
            after = page[-1].key
    return report


def _one(
    driver: Driver,
    serializer: EnvelopeSerializer,
    namespace: str,
    key: str,
    value: bytes,
    version: int,
    report: EncryptReport,
) -> None:
    for _ in range(_RETRIES):
        if bytes(value[: len(MAGIC)]) != MAGIC:
            report.not_envelopes += 1
            report._count(namespace, "not_envelopes")
            return
        try:
            new = serializer.reseal(value, at=(namespace, key))
        except CorruptionError as exc:
            report.damaged.append((namespace, key, str(exc)))
            return
        if new is None:
            report.already += 1
            report._count(namespace, "already")
            return
        if report.dry_run:
            report.rewritten += 1
            report._count(namespace, "rewritten")
            return
        try:
            driver.put(namespace, key, new, if_version=version)
        except ConflictError:
            current = driver.get(namespace, key)
            if current is None:
                return  # deleted meanwhile: nothing left to encrypt
            value, version = current.value, current.version
            continue
        report.rewritten += 1
        report._count(namespace, "rewritten")
        return
    raise ConflictError(f"{namespace}/{key} kept changing while it was being encrypted; run again")
