"""The old import path ``runtime_persistence.checkpoints``, kept working: the code lives in :mod:`runtime_persistence.checkpoint.checkpoints`."""

# Made lazy by scripts/gen_facade.py: add a re-export to the imports under TYPE_CHECKING,
# then run the script, which rewrites __all__, _SOURCES and __getattr__ from them.

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime_persistence.checkpoint.checkpoints import (
        CKPT_ID_NS,
        CKPT_NS,
        CKPT_PIN_NS,
        FORK_NS,
        HEAD_NS,
        THREAD_NS,
        AsyncCheckpoints,
        AsyncRemovalListener,
        Checkpoints,
        RemovalListener,
        diff_states,
    )

__all__ = [
    "CKPT_ID_NS",
    "CKPT_NS",
    "CKPT_PIN_NS",
    "FORK_NS",
    "HEAD_NS",
    "THREAD_NS",
    "AsyncCheckpoints",
    "AsyncRemovalListener",
    "Checkpoints",
    "RemovalListener",
    "diff_states",
]

# Where each name is imported from, on first use.
_SOURCES: dict[str, str] = {
    "CKPT_ID_NS": "runtime_persistence.checkpoint.checkpoints",
    "CKPT_NS": "runtime_persistence.checkpoint.checkpoints",
    "CKPT_PIN_NS": "runtime_persistence.checkpoint.checkpoints",
    "FORK_NS": "runtime_persistence.checkpoint.checkpoints",
    "HEAD_NS": "runtime_persistence.checkpoint.checkpoints",
    "THREAD_NS": "runtime_persistence.checkpoint.checkpoints",
    "AsyncCheckpoints": "runtime_persistence.checkpoint.checkpoints",
    "AsyncRemovalListener": "runtime_persistence.checkpoint.checkpoints",
    "Checkpoints": "runtime_persistence.checkpoint.checkpoints",
    "RemovalListener": "runtime_persistence.checkpoint.checkpoints",
    "diff_states": "runtime_persistence.checkpoint.checkpoints",
}


if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        source = _SOURCES.get(name)
        if source is not None:
            value = getattr(importlib.import_module(source), name)
            globals()[name] = value  # later lookups skip this function
            return value
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
