"""The message store on every available driver (sync and async twins): one batch is durable at
once, ids are recorded once, sender sequence jumps become gap records, the state resumes, and
search finds, ranks and highlights (FTS5 on SQLite, the scanning fallback elsewhere)."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from runtime_core import ConflictError, CorruptionError, NotFoundError, StorageError, ValidationError
from runtime_persistence import (
    Incoming,
    KeywordTagger,
    MessageStore,
    RecordedMessage,
    RecorderState,
    combine_enrichers,
)
from runtime_persistence.session.recorder._model import (
    CHUNK,
    LAYOUT_CHUNKS,
    LAYOUT_INDEXED_IDS,
    MESSAGE_CHUNK_NS,
    MESSAGE_ID_NS,
    MESSAGE_NS,
    MESSAGE_STATE_NS,
    STATE_KEY,
    id_digest,
    parse_body,
)
from runtime_persistence.session.recorder.search import SqliteSearchIndex
from runtime_persistence.storage.serialization import EnvelopeSerializer
from runtime_persistence.testing import TestStore, store_fixture, unwrap

message_store = store_fixture(modes=("sync", "async"))
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def wire(
    sender: str | None = "alice",
    seq: int | None = 1,
    text: str | None = "hello",
    *,
    mid: str | None = None,
    conversation: str | None = "c1",
    **extra: Any,
) -> Incoming:
    body: dict[str, Any] = {"id": mid if mid is not None else f"{sender}-{seq}", **extra}
    for name, value in (("sender", sender), ("seq", seq), ("text", text), ("conversation", conversation)):
        if value is not None:
            body[name] = value
    return Incoming("agents.chat", json.dumps(body).encode(), NOW, "zmq")


@pytest.fixture
def store(message_store: TestStore) -> Iterator[MessageStore]:
    made: MessageStore = message_store.make(MessageStore)
    yield made
    made.close()


def kinds(store: MessageStore) -> list[tuple[int, str, int | None, int | None, int | None]]:
    return [(m.offset, m.kind, m.seq, m.gap_from, m.gap_to) for m in store.read(limit=1000)]


def test_a_batch_is_recorded_in_order_with_offsets_from_one(store: MessageStore) -> None:
    result = store.append([wire(seq=1), wire(seq=2), wire(seq=3)])
    assert [m.offset for m in result.recorded] == [1, 2, 3]
    assert [m.seq for m in store.read()] == [1, 2, 3]
    assert store.state().next_offset == 4
    assert store.state().batches == 1


def test_a_repeated_id_is_recorded_once_within_and_across_batches(store: MessageStore) -> None:
    first = store.append([wire(seq=1), wire(seq=1)])
    second = store.append([wire(seq=1), wire(seq=2)])
    assert (first.duplicates, second.duplicates) == (1, 1)
    assert [m.id for m in store.read()] == ["alice-1", "alice-2"]
    assert store.state().duplicates == 2


def test_a_jump_in_a_senders_sequence_is_recorded_as_a_gap_before_the_message(store: MessageStore) -> None:
    store.append([wire(seq=1), wire(seq=2), wire(seq=6)])
    assert kinds(store) == [
        (1, "message", 1, None, None),
        (2, "message", 2, None, None),
        (3, "gap", None, 3, 5),
        (4, "message", 6, None, None),
    ]
    assert store.state().gaps == 1


def test_a_sender_first_seen_after_seq_one_has_a_gap_from_one(store: MessageStore) -> None:
    store.append([wire(seq=4)])
    assert kinds(store)[0] == (1, "gap", None, 1, 3)


def test_gaps_are_per_sender_and_span_batches(store: MessageStore) -> None:
    store.append([wire("a", 1), wire("b", 1)])
    store.append([wire("a", 2), wire("b", 3)])
    gaps = [m for m in store.read() if m.kind == "gap"]
    assert [(g.sender, g.gap_from, g.gap_to) for g in gaps] == [("b", 2, 2)]


def test_a_restarted_sender_at_seq_one_is_no_gap_and_a_late_message_is_marked(store: MessageStore) -> None:
    store.append([wire(seq=1, mid="x1"), wire(seq=2, mid="x2"), wire(seq=5, mid="x5"), wire(seq=3, mid="x3")])
    store.append([wire(seq=1, mid="y1"), wire(seq=2, mid="y2")])
    records = list(store.read())
    late = [m.seq for m in records if m.late]
    assert late == [3]
    assert [m.kind for m in records].count("gap") == 1  # only 3..4, the restart made none


def test_a_body_that_is_not_json_is_kept_as_bytes(store: MessageStore) -> None:
    raw = b"\xff\x00 not json"
    store.append([Incoming("bin", raw, NOW, "zmq"), Incoming("arr", b"[1, 2]", NOW, "zmq")])
    first, second = store.read()
    assert (first.body, first.is_json, first.id, first.text) == (raw, False, None, None)
    assert (second.body, second.is_json) == (b"[1, 2]", False)
    assert first.to_json()["body_base64"]


def test_unrecognised_and_mistyped_fields_stay_in_the_body_untouched(store: MessageStore) -> None:
    body = {"id": "m1", "sender": "s", "seq": "seven", "text": 5, "extra": {"deep": [1, 2.5]}}
    raw = json.dumps(body).encode()
    store.append([Incoming("t", raw, NOW, "zmq")])
    (message,) = store.read()
    assert message.body == raw
    assert (message.id, message.sender, message.seq, message.text) == ("m1", "s", None, None)
    assert json.loads(message.to_json()["body"]) == body


def test_a_batch_over_the_limit_is_refused_and_nothing_is_written(store: MessageStore) -> None:
    with pytest.raises(ValidationError):
        store.append([wire(seq=i) for i in range(1, 10_002)])
    assert list(store.read()) == []


def test_get_and_get_by_id_and_not_found(store: MessageStore) -> None:
    store.append([wire(seq=1), wire(seq=2)])
    assert store.get(2).id == "alice-2"
    assert store.get_by_id("alice-1").offset == 1
    with pytest.raises(NotFoundError):
        store.get(3)
    with pytest.raises(NotFoundError):
        store.get_by_id("nobody")
    with pytest.raises(ValidationError):
        store.get(-1)


def test_recent_and_read_by_conversation(store: MessageStore) -> None:
    store.append([wire(seq=i, conversation="even" if i % 2 == 0 else "odd") for i in range(1, 11)])
    assert [m.seq for m in store.recent(3)] == [8, 9, 10]
    assert [m.seq for m in store.recent(2, conversation="even")] == [8, 10]
    assert [m.seq for m in store.read(conversation="odd", after=3)] == [5, 7, 9]


def begin_with_records(message_store: TestStore) -> None:
    """Make the store one begun before chunks: its state written without ``layout``."""
    state = msgspec.to_builtins(RecorderState())
    del state["layout"]
    at = (MESSAGE_STATE_NS, STATE_KEY)
    message_store.driver.put(*at, EnvelopeSerializer().dumps(state, at=at))


@pytest.mark.parametrize("layout", [1, 2])
def test_reads_by_bound_direction_and_conversation_match_the_whole_log(
    message_store: TestStore, layout: int
) -> None:
    if layout == 1:
        begin_with_records(message_store)
    store: MessageStore = message_store.make(MessageStore, index=None)
    convs = ["c0", "c1", "c2", None]
    seq = 0
    for size in (70, 1, 90):  # chunk boundaries inside and between batches
        batch = []
        for _ in range(size):
            seq += 1 if seq % 17 else 3  # some gaps
            batch.append(wire(seq=seq, conversation=convs[seq % 4]))
        store.append(batch)
    assert store.state().layout == layout
    namespace = MESSAGE_NS if layout == 1 else MESSAGE_CHUNK_NS
    assert list(message_store.driver.scan(namespace, limit=1))
    log = list(store.read(limit=10_000))
    last = log[-1].offset
    assert [m.offset for m in log] == list(range(1, last + 1))
    for conversation in (None, "c1", "c3"):
        mine = [m for m in log if conversation is None or m.conversation == conversation]
        for after in (0, 1, 63, 64, 65, 72, last - 1, last + 5):
            for limit in (1, 1000):
                forward = [m.offset for m in mine if m.offset > after][:limit]
                got = [m.offset for m in store.read(after=after, limit=limit, conversation=conversation)]
                assert got == forward, (conversation, after, limit)
                backward = [m.offset for m in reversed(mine) if m.offset < after or not after][:limit]
                got = [
                    m.offset
                    for m in store.read(after=after, limit=limit, conversation=conversation, reverse=True)
                ]
                assert got == backward, (conversation, after, limit, "reverse")
    for message in log[::9]:
        assert store.get(message.offset) == message
        if message.id is not None:
            assert store.get_by_id(message.id) == message
    store.close()


def test_the_state_resumes_in_a_new_store_object(message_store: TestStore, store: MessageStore) -> None:
    store.append([wire(seq=1), wire(seq=2)])
    again: MessageStore = message_store.make(MessageStore)
    again.append([wire(seq=2), wire(seq=4)])  # 2 is a duplicate; 3 is missing
    assert kinds(again)[2:] == [(3, "gap", None, 3, 3), (4, "message", 4, None, None)]
    assert again.state().duplicates == 1
    again.close()


def test_a_second_writer_between_read_and_commit_gets_a_conflict(message_store: TestStore) -> None:
    if message_store.is_async:
        pytest.skip("the race is staged through the sync twin (the same generated logic)")
    other: MessageStore = message_store.make(MessageStore, index=None)
    other.append([wire("zed", 1)])  # the state exists: the race is on its version
    target = unwrap(message_store.driver)

    class Racing:  # the driver, with another recorder's batch landing just before ours
        def __getattr__(self, name: str) -> Any:
            return getattr(target, name)

        def batch(self, ops: Any) -> Any:
            other.append([wire("zed", 2)])
            return target.batch(ops)

    store = MessageStore(Racing(), index=None)  # type: ignore[arg-type]
    with pytest.raises(ConflictError):
        store.append([wire(seq=1)])
    assert [m.sender for m in other.read()] == ["zed", "zed"]  # the winner's batches, nothing of ours
    other.close()


def test_enrichment_is_stored_beside_the_message_and_a_failing_enricher_loses_nothing(
    store: MessageStore,
) -> None:
    class Broken:
        name = "broken"

        def __call__(self, message: RecordedMessage) -> Any:
            raise RuntimeError("no")

    enrich = combine_enrichers([KeywordTagger({"error": ["failed", "error"]}), Broken()])
    store.append([wire(seq=1, text="the build failed"), wire(seq=2, text="all good")], enrich=enrich)
    first, second = store.read()
    assert first.enrichment["tags"] == ["error"]
    assert second.enrichment["tags"] == []
    assert "RuntimeError" in first.enrichment["broken"]["error"]
    assert first.text == "the build failed"


def test_search_ranks_highlights_and_filters_by_conversation(store: MessageStore) -> None:
    store.append(
        [
            wire(seq=1, text="the deploy failed on staging", conversation="ops"),
            wire(seq=2, text="lunch at noon", conversation="ops"),
            wire(seq=3, text="deploy deploy deploy: the deploy is done", conversation="dev"),
            wire(seq=4, text="DEPLOYMENT notes", conversation="dev"),
        ]
    )
    hits = store.search("deploy")
    assert {h.message.seq for h in hits} == {1, 3, 4}
    assert hits[0].message.seq == 3  # the most matches ranks first
    assert "[deploy]" in hits[0].snippet
    assert "[DEPLOYMENT]" in next(h.snippet for h in hits if h.message.seq == 4)  # prefixes match
    assert [h.message.seq for h in store.search("deploy staging")] == [1]  # every word must match
    assert [h.message.seq for h in store.search("deploy", conversation="ops")] == [1]
    assert store.search("nothing-here") == []
    assert store.search("") == []
    assert len(store.search("deploy", limit=1)) == 1


def test_search_query_syntax_is_never_an_error(store: MessageStore) -> None:
    store.append([wire(seq=1, text='he said "quote" AND (or) NEAR* -x')])
    for query in ['"', "AND", "(", "NEAR*", "-x", "a:b", "'"]:
        store.search(query)
    assert [h.message.seq for h in store.search('"quote"')] == [1]


INDEXED = ("sqlite", "postgres", "mysql")
LONG = "a" * 250 + "b" * 50
CORPUS = [
    "Le Café est ouvert",
    "use snake_case_names here",
    "see foo.bar.example.com or mail bob@example.org",
    "state-of-the-art deploy",
    "東京タワー is tall",
    "Straße und ﬁle",
    f"{LONG} end",
    "deploy deploy deploy deploy now",
    "deploy once, then stop",
    "it's 3.14 o'clock",
    "tie breaker",
    "tie breaker",
]
# query -> the corpus positions (1-based seq) that match, whatever the store and its index
MEANING: dict[str, set[int]] = {
    "cafe": {1},
    "CAFÉ": {1},
    "café OUVERT": {1},
    "caf": {1},
    "afe": set(),  # not the start of a word
    "snake": {2},
    "snake_case": {2},
    "case": set(),  # ``_`` joins a word
    "bar": {3},
    "example org": {3},
    "bob": {3},
    "art": {4},
    "of the": {4},
    "東京": {5},
    "タワー": set(),
    "strasse": {6},
    "file": {6},
    LONG[:250]: {7},
    LONG[:251]: {7},
    LONG[:250] + "c": set(),  # indexed by its first 200 characters on PostgreSQL: the text decides
    LONG[:201] + "x": set(),
    "3 14 clock": {10},
    "deploy": {4, 8, 9},
    "deploy*": {4, 8, 9},
    "-deploy": {4, 8, 9},
    "\x00deploy": {4, 8, 9},
    "deploy now": {8},
    # hostile strings: words only, never syntax, never an error
    "'); DROP TABLE kv; --": set(),
    "a:* & !b | c": set(),
    '"deploy" OR stop': set(),
    '"deploy" stop': {9},
    "NEAR(deploy now)": set(),
    "deploy:* & now": {8},
    "%": set(),
    "_": set(),
    "\\": set(),
    "' OR 1=1": set(),
    "": set(),
}


@pytest.mark.parametrize("indexed", [True, False], ids=["index", "scan"])
def test_search_means_the_same_on_every_store_with_or_without_its_index(
    message_store: TestStore, indexed: bool
) -> None:
    if indexed and message_store.name not in INDEXED:
        pytest.skip("no separate index on this store: the scan is its search")
    store: MessageStore = (
        message_store.make(MessageStore) if indexed else message_store.make(MessageStore, index=None)
    )
    assert (store.index is not None) == indexed
    store.append([wire(seq=n, text=t, conversation=f"c{n % 2}") for n, t in enumerate(CORPUS[:6], start=1)])
    store.append([wire(seq=n, text=t, conversation=f"c{n % 2}") for n, t in enumerate(CORPUS, start=1)][6:])
    for query, expected in MEANING.items():
        hits = store.search(query, limit=50)
        assert {h.message.seq for h in hits} == expected, query
        assert all(h.message.kind == "message" for h in hits)
    deploy = store.search("deploy")
    assert deploy[0].message.seq == 8  # the most occurrences first
    assert deploy[0].snippet == "[deploy] [deploy] [deploy] [deploy] now"
    assert [h.message.seq for h in store.search("tie")] == [12, 11]  # newer first on a tie
    assert store.search("cafe")[0].snippet == "Le [Café] est ouvert"
    assert store.search("bar")[0].snippet == "see foo.[bar].example.com or mail bob@example.org"
    assert {h.message.seq for h in store.search("deploy", conversation="c0")} == {4, 8}
    assert [h.message.seq for h in store.search("deploy", limit=1)] == [8]
    for bad in ("x" * 1001, " ".join(["w"] * 33)):
        with pytest.raises(ValidationError):
            store.search(bad)
    with pytest.raises(ValidationError):
        store.search(7)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        store.search("deploy", conversation="c\x000")
    store.close()


def test_search_finds_messages_the_index_has_not_reached(message_store: TestStore) -> None:
    if message_store.name not in INDEXED:
        pytest.skip("only SQLite, PostgreSQL and MySQL keep a separate index")
    unindexed: MessageStore = message_store.make(MessageStore, index=None)
    unindexed.append([wire(seq=1, text="alpha beta")])
    store: MessageStore = message_store.make(MessageStore)
    store.append([wire(seq=2, text="alpha gamma")])
    assert store.index is not None and store.index.indexed_upto() == 2
    assert {h.message.seq for h in store.search("alpha")} == {1, 2}
    assert store.search("beta")[0].snippet == "alpha [beta]"
    unindexed.close()
    store.close()


def test_catch_up_index_indexes_the_missing_tail(message_store: TestStore) -> None:
    if message_store.name not in INDEXED:
        pytest.skip("only SQLite, PostgreSQL and MySQL keep a separate index")
    unindexed: MessageStore = message_store.make(MessageStore, index=None)
    unindexed.append([wire(seq=i, text=f"word{i}") for i in range(1, 6)])
    store: MessageStore = message_store.make(MessageStore)
    assert store.index is not None and store.index.indexed_upto() == 0
    assert store.catch_up_index() == 5
    assert store.index.indexed_upto() == 5
    assert store.catch_up_index() == 0
    unindexed.close()
    store.close()


def test_the_fts5_table_over_raw_text_is_replaced_and_rebuilt(message_store: TestStore) -> None:
    if message_store.name != "sqlite" or message_store.is_async:
        pytest.skip("the SQLite index")
    path = message_store.driver.path  # type: ignore[attr-defined]
    unindexed: MessageStore = message_store.make(MessageStore, index=None)
    unindexed.append([wire(seq=1, text="the Café on snake_case street")])
    conn = sqlite3.connect(path)  # the index as stores had it: unicode61 over the raw text
    conn.execute("CREATE VIRTUAL TABLE keepup_message_fts USING fts5(text, conversation UNINDEXED)")
    conn.execute("INSERT INTO keepup_message_fts(rowid, text) VALUES (1, 'the Café on snake_case street')")
    conn.commit()
    store: MessageStore = message_store.make(MessageStore)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "keepup_message_fts" not in tables and "keepup_message_words" in tables
    conn.close()
    assert [h.message.seq for h in store.search("cafe")] == [1]  # the unindexed tail, scanned
    assert store.search("case") == []  # one word with its _, as on every store
    assert store.catch_up_index() == 1
    assert store.index is not None and store.index.search(["snake_case"], limit=5)[0][0] == 1
    assert [h.message.seq for h in store.search("cafe snake")] == [1]
    unindexed.close()
    store.close()


def test_storage_grows_linearly_with_the_number_of_messages(message_store: TestStore) -> None:
    if message_store.name != "sqlite" or message_store.is_async:
        pytest.skip("measured on the SQLite file")
    store: MessageStore = message_store.make(MessageStore)
    path = message_store.driver.path  # type: ignore[attr-defined]
    sizes = []
    seq = 0
    for _ in range(4):
        for _ in range(4):
            batch = []
            for _ in range(1000):
                seq += 1
                batch.append(wire(seq=seq, text=f"message {seq} about the plan and the deploy"))
            store.append(batch)
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # measure the database file itself
        conn.close()
        sizes.append(path.stat().st_size)
    steps = [b - a for a, b in itertools.pairwise(sizes)]
    assert all(s > 0 for s in steps), sizes
    # linear: the bytes per message so far stay about the same (within 20%) at 4k, 8k, 12k and
    # 16k messages, not more and more (the FTS5 index merges its segments now and then, so
    # single steps vary by a third)
    per_message = [size / (4000 * n) for n, size in enumerate(sizes, start=1)]
    assert max(per_message) <= 1.2 * min(per_message), (sizes, per_message)
    assert max(per_message) < 2000, per_message  # bytes per message, a few hundred in fact
    store.close()


def test_records_are_stored_in_chunks_from_their_first_offset(
    message_store: TestStore, store: MessageStore
) -> None:
    assert CHUNK == 16
    store.append([wire(seq=1)])
    store.append([wire(seq=n) for n in range(2, 132)])  # 130 messages: 8 chunks of 16, one of 2
    assert [e.key for e in message_store.driver.scan(MESSAGE_CHUNK_NS)] == [
        f"{offset:016d}" for offset in [1, *range(2, 132, 16)]
    ]
    assert not list(message_store.driver.scan(MESSAGE_NS))
    assert store.state().layout == (LAYOUT_INDEXED_IDS if message_store.name == "sqlite" else LAYOUT_CHUNKS)
    assert [m.offset for m in store.read(after=60, limit=10)] == list(range(61, 71))
    assert [m.offset for m in store.read(after=70, limit=3, reverse=True)] == [69, 68, 67]
    assert [m.seq for m in store.read(after=129, limit=5)] == [130, 131]
    assert store.get(66).seq == 66 and store.get(131).seq == 131
    with pytest.raises(NotFoundError):
        store.get(132)


def _sqlite_only(message_store: TestStore) -> None:
    if message_store.name != "sqlite":
        pytest.skip("layout 3: the ids in the SQLite search index")


def test_a_sqlite_store_finds_its_ids_in_the_index_not_in_id_rows(message_store: TestStore) -> None:
    _sqlite_only(message_store)
    store: MessageStore = message_store.make(MessageStore)
    store.append([wire(seq=n) for n in range(1, 40)])
    result = store.append([wire(seq=2), wire(seq=39), wire(seq=40), wire(seq=40)])
    assert [m.seq for m in result.recorded] == [40] and result.duplicates == 3
    assert store.state().layout == LAYOUT_INDEXED_IDS
    assert not list(message_store.driver.scan(MESSAGE_ID_NS))  # no id row per message
    assert store.get_by_id("alice-17").offset == 17 and store.get_by_id("alice-40").offset == 40
    with pytest.raises(NotFoundError):
        store.get_by_id("alice-41")
    store.close()


def test_ids_of_a_batch_that_was_never_indexed_are_still_recorded_once(message_store: TestStore) -> None:
    """A crash between a batch's commit and its indexing leaves the index behind the store: the
    next batch catches it up from the chunks before it trusts it."""
    _sqlite_only(message_store)
    store: MessageStore = message_store.make(MessageStore)
    store.append([wire(seq=1)])
    index = store.index
    assert isinstance(index, SqliteSearchIndex)

    def fail(messages: Any) -> None:
        raise StorageError("the recorder died before it indexed this batch")

    index.add = fail  # type: ignore[method-assign]
    store.append([wire(seq=n) for n in range(2, 6)])  # committed, not indexed
    assert store.index_error is not None
    del index.add
    again: MessageStore = message_store.make(MessageStore)  # the restarted recorder
    result = again.append([wire(seq=3), wire(seq=5), wire(seq=6)])
    assert [m.seq for m in result.recorded] == [6] and result.duplicates == 2
    assert again.index is not None and again.index.indexed_upto() == 6
    assert again.get_by_id("alice-4").offset == 4
    store.close()
    again.close()


def test_a_store_object_without_the_index_keeps_the_ids_of_a_layout_3_store(
    message_store: TestStore,
) -> None:
    _sqlite_only(message_store)
    store: MessageStore = message_store.make(MessageStore)
    store.append([wire(seq=n) for n in range(1, 21)])
    bare: MessageStore = message_store.make(MessageStore, index=None)
    assert bare.get_by_id("alice-20").offset == 20  # found by reading the records
    result = bare.append([wire(seq=7), wire(seq=21)])
    assert [m.seq for m in result.recorded] == [21] and result.duplicates == 1
    assert bare.append([wire(seq=21), wire(seq=22)]).duplicates == 1
    assert store.append([wire(seq=22), wire(seq=23)]).duplicates == 1  # and the index catches up
    assert [m.seq for m in store.read(after=20, limit=10)] == [21, 22, 23]
    store.close()
    bare.close()


def test_indexing_a_message_again_replaces_it(message_store: TestStore) -> None:
    _sqlite_only(message_store)
    if message_store.is_async:
        pytest.skip("the sync twin (the same generated logic)")
    store: MessageStore = message_store.make(MessageStore)
    store.append([wire(seq=1, text="alpha"), wire(seq=2, text="gamma")])
    index = store.index
    assert index is not None
    first = store.get(1)
    index.add([msgspec.structs.replace(first, text="beta"), store.get(2)])  # a catch-up over indexed rows
    assert [o for o, _ in index.search(["beta"], limit=5)] == [1]
    assert index.search(["alpha"], limit=5) == [] and len(index.search(["gamma"], limit=5)) == 1
    assert store.get_by_id("alice-1").offset == 1
    store.close()


def test_an_id_the_index_names_wrongly_is_checked_against_the_record(message_store: TestStore) -> None:
    """The index is derived data in the file, not sealed: an entry that names another message
    (a damaged index, or two ids sharing 64 bits of digest) never drops a new message."""
    _sqlite_only(message_store)
    if message_store.is_async:
        pytest.skip("the sync twin (the same generated logic)")
    store: MessageStore = message_store.make(MessageStore)
    store.append([wire(seq=1), wire(seq=2)])
    conn = sqlite3.connect(message_store.driver.path)  # type: ignore[attr-defined]
    conn.execute("INSERT INTO keepup_message_ids VALUES (?, 1)", (id_digest("alice-3"),))
    conn.execute("INSERT INTO keepup_message_ids VALUES (?, 9)", (id_digest("alice-4"),))
    conn.commit()
    conn.close()
    result = store.append([wire(seq=3), wire(seq=4)])
    assert [m.seq for m in result.recorded] == [3, 4] and result.duplicates == 0
    assert store.get_by_id("alice-3").offset == 3
    store.close()


def test_a_damaged_chunk_is_a_corruption_error(message_store: TestStore, store: MessageStore) -> None:
    store.append([wire(seq=n) for n in range(1, 4)])
    other = message_store.make(MessageStore)
    # a chunk that claims the wrong offsets (sealed for its place, so only the content is wrong)
    wrong = [msgspec.structs.replace(m, offset=m.offset + 1) for m in store.read()]
    data = EnvelopeSerializer().dumps(
        msgspec.msgpack.encode(wrong), at=(MESSAGE_CHUNK_NS, "0000000000000001")
    )
    message_store.driver.put(MESSAGE_CHUNK_NS, "0000000000000001", data)
    with pytest.raises(CorruptionError):
        other.get(2)
    # a key that is not an offset, read back from the store
    message_store.driver.delete(MESSAGE_CHUNK_NS, "0000000000000001")
    bad = "000000000000000x"
    message_store.driver.put(
        MESSAGE_CHUNK_NS,
        bad,
        EnvelopeSerializer().dumps(msgspec.msgpack.encode(wrong), at=(MESSAGE_CHUNK_NS, bad)),
    )
    with pytest.raises(CorruptionError):
        list(other.read(limit=100))
    other.close()


def test_a_late_first_message_fills_the_gap_and_a_second_one_is_a_restart(store: MessageStore) -> None:
    store.append([wire(seq=3, mid="a3"), wire(seq=1, mid="a1"), wire(seq=2, mid="a2"), wire(seq=4, mid="a4")])
    store.append([wire(seq=1, mid="b1"), wire(seq=2, mid="b2"), wire(seq=3, mid="b3")])
    records = list(store.read())
    assert [(m.kind, m.seq, m.late) for m in records] == [
        ("gap", None, False),
        ("message", 3, False),
        ("message", 1, True),
        ("message", 2, True),
        ("message", 4, False),
        ("message", 1, False),  # a restarted sender: its run shows a second 1
        ("message", 2, False),
        ("message", 3, False),
    ]
    assert (records[0].gap_from, records[0].gap_to) == (1, 2)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"id": "a", "seq": 3, "text": "hi", "extra": {"deep": [1]}}', ("a", 3, "hi", True)),
        (b'{"id": "a", "seq": -1}', ("a", None, None, True)),  # a negative seq is not one
        (b'{"id": "a", "seq": true}', ("a", None, None, True)),  # nor is a boolean
        (b'{"id": "a", "seq": 1.5}', ("a", None, None, True)),
        (b'{"id": 5, "seq": 2}', (None, 2, None, True)),  # a mistyped field, the others kept
        (b'{"id": "", "text": 7}', (None, None, None, True)),
        (b'{"id": "a\\u0000b"}', (None, None, None, True)),  # NUL: not recognised
        (b'{"id": "' + b"x" * 201 + b'"}', (None, None, None, True)),  # over 200 characters
        (b'{"id": "a", "id": "b"}', ("b", None, None, True)),
        (b"[1, 2]", (None, None, None, False)),
        (b'"text"', (None, None, None, False)),
        (b"not json", (None, None, None, False)),
        (b"\xff\xfe", (None, None, None, False)),
    ],
)
def test_the_recognised_fields_of_a_body(body: bytes, expected: tuple[Any, ...]) -> None:
    fields = parse_body(body)
    assert (fields.id, fields.seq, fields.text, fields.is_json) == expected
