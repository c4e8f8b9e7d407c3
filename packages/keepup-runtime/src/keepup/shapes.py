"""The JSON shapes of Keepup's records: what ``keepup ... --json`` prints (documented in
docs/cli.md) and what the HTTP API (``keepup-server``) answers, so the two never drift.

Each shape is built field by field (in :mod:`keepup._cli.shapes`), so a change to a record class
cannot change the output by accident. ``plain`` turns any other value into JSON-ready data."""

from keepup._cli import shapes as _shapes
from keepup._cli.rendering import plain
from keepup._cli.shapes import *  # noqa: F403

__all__ = ["plain"]
__all__ += _shapes.__all__
