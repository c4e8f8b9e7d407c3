"""The old import path ``runtime_persistence.retention``, kept working: the code lives in :mod:`runtime_persistence.checkpoint.retention`."""

from runtime_persistence.checkpoint.retention import (
    plan_prune,
)

__all__ = [
    "plan_prune",
]
