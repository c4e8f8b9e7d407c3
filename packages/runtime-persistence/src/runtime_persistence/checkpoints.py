"""The old import path ``runtime_persistence.checkpoints``, kept working: the code lives in :mod:`runtime_persistence.checkpoint.checkpoints`."""

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
