"""The old import path ``runtime_persistence.serialization``, kept working: the code lives in :mod:`runtime_persistence.storage.serialization`."""

from runtime_persistence.storage.serialization import (
    DEFAULT_MAX_RECORD_SIZE,
    MAX_DEPTH,
    MAX_PAYLOAD,
    EnvelopeSerializer,
    Keyring,
    dumps,
    loads,
)

__all__ = [
    "DEFAULT_MAX_RECORD_SIZE",
    "MAX_DEPTH",
    "MAX_PAYLOAD",
    "EnvelopeSerializer",
    "Keyring",
    "dumps",
    "loads",
]
