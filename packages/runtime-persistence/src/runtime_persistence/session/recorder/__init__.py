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

from runtime_persistence.session.recorder.daemon import Recorder, RecorderConfig, RecorderStats
from runtime_persistence.session.recorder.enrichers import Enricher, KeywordTagger, combine_enrichers
from runtime_persistence.session.recorder.messages import (
    AsyncMessageStore,
    BatchResult,
    Incoming,
    MessageStore,
    RecordedMessage,
    RecorderState,
    SearchHit,
)
from runtime_persistence.session.recorder.search import SearchIndex, SqliteSearchIndex, search_index_for
from runtime_persistence.session.recorder.sources import Delivery, MessageSource, open_source

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
