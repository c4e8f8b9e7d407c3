# Generated from packages/runtime-persistence/src/runtime_persistence/checkpoint/_async/channels.py by scripts/gen_sync.py: edit that file and rerun the script.
"""Reads and writes of checkpoint state blobs (the I/O half of ``checkpoint/_state.py``).

Written once as async code; ``ChannelStore`` in ``_sync/channels.py`` is generated from it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime_core import Clock, CorruptionError, Driver, NotFoundError, Serializer

from runtime_persistence.checkpoint._state import (
    BLOB_NS,
    INLINE,
    LOC_KV,
    ChannelCodec,
    ChannelRef,
    EncodedState,
    assemble,
    check_ref,
    copy_plain,
    kv_envelope,
    kv_envelope_view,
    ref_digest,
)

__all__ = ["ChannelStore"]


class ChannelStore(ChannelCodec):
    """Encodes states into channel refs plus blobs (:class:`ChannelCodec`), writes those blobs and
    decodes refs back into states, verifying every blob it reads."""

    def __init__(
        self, driver: Driver, serializer: Serializer, clock: Clock, *, cache_bytes: int = 64 << 20
    ) -> None:
        super().__init__(driver.max_value_size, serializer, clock, cache_bytes=cache_bytes)
        self._driver = driver

    def write_area_blobs(self, encoded: EncodedState) -> None:
        """Store the large blobs of ``encoded`` in the driver's blob area (before the record)."""
        for envelope in encoded.area_blobs:
            self._driver.put_blob(envelope)

    def decode(self, refs: Mapping[str, ChannelRef]) -> dict[str, Any]:
        """Rebuild the state named by ``refs``. Raises CorruptionError when a blob is missing or
        damaged (a referenced blob is never collected, so a missing one means damage)."""
        state: dict[str, Any] = {}
        for name, ref in refs.items():
            if ref.kind == INLINE:
                state[name] = copy_plain(ref.value)
            else:
                state[name] = assemble(name, ref, [self._load(r) for r in ref.blobs])
        return state

    def _load(self, ref: bytes) -> Any:
        """The value of one blob. The first read verifies it fully (digest, envelope checksum,
        the serializer's allowlist); the verified value is then kept as plain MessagePack and
        later reads decode a fresh copy of it."""
        hit, value = self.cached(ref)  # checks the ref
        if hit:
            return value
        if ref[0] == LOC_KV:  # the common case, without copying the envelope out of its row
            digest = ref_digest(ref)
            entry = self._driver.get(BLOB_NS, digest)
            if entry is None:
                raise CorruptionError(f"blob {digest} named by a checkpoint is missing")
            return self.verified(ref, kv_envelope_view(digest, entry.value))
        return self.verified(ref, self.read_blob(ref))

    def read_blob(self, ref: bytes) -> bytes:
        """The verified envelope bytes of one blob reference (no cache)."""
        digest = ref_digest(check_ref(ref))
        if ref[0] == LOC_KV:
            entry = self._driver.get(BLOB_NS, digest)
            if entry is None:
                raise CorruptionError(f"blob {digest} named by a checkpoint is missing")
            return kv_envelope(digest, entry.value)
        try:
            return self._driver.get_blob(digest)
        except NotFoundError:
            raise CorruptionError(f"blob {digest} named by a checkpoint is missing") from None

    def blob_exists(self, ref: bytes) -> bool:
        digest = ref_digest(check_ref(ref))
        if ref[0] == LOC_KV:
            return self._driver.get(BLOB_NS, digest) is not None
        return self._driver.has_blob(digest)
