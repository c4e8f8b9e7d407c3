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

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from runtime_core import ConflictError, CorruptionError, Driver, ValidationError

from runtime_persistence.storage.serialization import MAGIC, EnvelopeSerializer

__all__ = ["EncryptReport", "encrypt_records"]

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
