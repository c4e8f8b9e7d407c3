"""The message recorder beside a broker: every message kept once, none invented.

* :mod:`.messages`: the :class:`MessageStore` (group-committed batches, dedup by id, per-sender
  gap records, resume state, search) and its async twin;
* :mod:`.search`: the full-text indexes (SQLite FTS5, PostgreSQL tsvector, MySQL FULLTEXT; a
  scanning fallback on other stores), one definition of a match on all of them;
* :mod:`.sources`: ZeroMQ, NATS JetStream and MQTT sources behind one :class:`Source` interface,
  each loaded by URL scheme (client libraries are extras, imported only in their module);
* :mod:`.enrichers`: pluggable metadata stored beside each message;
* :mod:`.daemon`: the :class:`Recorder` loop (group commit, acks after commit, incremental
  conversation checkpoints, final checkpoint on stop).

docs/recorder.md describes the whole and its guarantees."""

# Made lazy by scripts/gen_facade.py: add a re-export to the imports under TYPE_CHECKING,
# then run the script, which rewrites __all__, _SOURCES and __getattr__ from them.

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime_persistence.session.recorder.daemon import (
        Recorder,
        RecorderConfig,
        RecorderStats,
    )
    from runtime_persistence.session.recorder.enrichers import (
        Enricher,
        KeywordTagger,
        combine_enrichers,
    )
    from runtime_persistence.session.recorder.messages import (
        AsyncMessageStore,
        BatchResult,
        Incoming,
        MessageStore,
        RecordedMessage,
        RecorderState,
        SearchHit,
    )
    from runtime_persistence.session.recorder.search import (
        SearchIndex,
        SqliteSearchIndex,
        search_index_for,
    )
    from runtime_persistence.session.recorder.sources import (
        Delivery,
        MessageSource,
        open_source,
    )

__all__ = [
    "AsyncMessageStore",
    "BatchResult",
    "Delivery",
    "Enricher",
    "Incoming",
    "KeywordTagger",
    "MessageSource",
    "MessageStore",
    "RecordedMessage",
    "Recorder",
    "RecorderConfig",
    "RecorderState",
    "RecorderStats",
    "SearchHit",
    "SearchIndex",
    "SqliteSearchIndex",
    "combine_enrichers",
    "open_source",
    "search_index_for",
]

# Where each name is imported from, on first use.
_SOURCES: dict[str, str] = {
    "AsyncMessageStore": "runtime_persistence.session.recorder.messages",
    "BatchResult": "runtime_persistence.session.recorder.messages",
    "Delivery": "runtime_persistence.session.recorder.sources",
    "Enricher": "runtime_persistence.session.recorder.enrichers",
    "Incoming": "runtime_persistence.session.recorder.messages",
    "KeywordTagger": "runtime_persistence.session.recorder.enrichers",
    "MessageSource": "runtime_persistence.session.recorder.sources",
    "MessageStore": "runtime_persistence.session.recorder.messages",
    "RecordedMessage": "runtime_persistence.session.recorder.messages",
    "Recorder": "runtime_persistence.session.recorder.daemon",
    "RecorderConfig": "runtime_persistence.session.recorder.daemon",
    "RecorderState": "runtime_persistence.session.recorder.messages",
    "RecorderStats": "runtime_persistence.session.recorder.daemon",
    "SearchHit": "runtime_persistence.session.recorder.messages",
    "SearchIndex": "runtime_persistence.session.recorder.search",
    "SqliteSearchIndex": "runtime_persistence.session.recorder.search",
    "combine_enrichers": "runtime_persistence.session.recorder.enrichers",
    "open_source": "runtime_persistence.session.recorder.sources",
    "search_index_for": "runtime_persistence.session.recorder.search",
}

# Submodules reachable as attributes, as they were when this module imported them.
_SUBMODULES = frozenset(
    {"__main__", "_async", "_model", "_sync", "daemon", "enrichers", "messages", "search", "sources"}
)


if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        source = _SOURCES.get(name)
        if source is not None:
            value = getattr(importlib.import_module(source), name)
            globals()[name] = value  # later lookups skip this function
            return value
        if name in _SUBMODULES:
            return importlib.import_module(f"{__name__}.{name}")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
