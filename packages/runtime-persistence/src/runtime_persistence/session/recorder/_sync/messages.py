# Generated from packages/runtime-persistence/src/runtime_persistence/session/recorder/_async/messages.py by scripts/gen_sync.py: edit that file and rerun the script.
"""The message store (:class:`MessageStore`): every message a recorder received, once, in
the order it was recorded, with its gaps, beside a full-text index. Written once as async code;
the sync :class:`MessageStore` is generated from it by scripts/gen_sync.py.

Layout (see ``_model.py``)::

    msg         {offset:016d}                    the message or gap (offsets from 1, no holes)
    msg.id      {sha256(id)[:32]}                the offset of the message with that id (dedup)
    msg.conv    {sha256(conversation)[:32]}/{offset:016d}   the messages of a conversation
    msg.thread  {sha256(conversation)[:32]}      the conversation's checkpoint thread
    msg.state   recorder                         the RecorderState, compare-and-set per batch

One :meth:`append` is one driver batch (one transaction, one fsync on SQLite): the records, their
index entries and the state that covers them commit together, so a recorder killed at any moment
restarts exactly after its last committed batch. The state moves by compare-and-set, so two
recorders on one store cannot interleave: the second gets ConflictError. On a driver without
atomic batches the records are written before the state that names them, and an id index entry
is trusted only when its message carries that id."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import msgspec
from runtime_core import (
    ConflictError,
    CorruptionError,
    Driver,
    NotFoundError,
    Put,
    ValidationError,
)

from runtime_persistence.session.recorder._model import (
    MARK,
    MAX_BATCH,
    MESSAGE_CONV_NS,
    MESSAGE_ID_NS,
    MESSAGE_NS,
    MESSAGE_STATE_NS,
    MESSAGE_THREAD_NS,
    STATE_KEY,
    BatchResult,
    Incoming,
    RecordedMessage,
    RecorderState,
    SearchHit,
    check_limit,
    check_offset,
    digest_key,
    highlight,
    matches_all,
    offset_key,
    parse_body,
    query_terms,
    sequence_step,
)
from runtime_persistence.session.recorder.search import SearchIndex, search_index_for
from runtime_persistence.storage.serialization import EnvelopeSerializer

__all__ = ["MessageStore"]

Enrich = Callable[[RecordedMessage], Mapping[str, Any]]
_AUTO: Any = object()
_T = TypeVar("_T")


class _IdTaken(Exception):
    """The optimistic batch met an id that is already recorded."""


def _off_loop(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Run a call of the (sync) search index on a worker thread: its I/O is local file I/O."""
    return fn(*args, **kwargs)


class MessageStore:
    """Recorded messages over any driver. ``index``: the full-text index (by default the one
    :func:`search_index_for` finds for the driver: FTS5 on SQLite, none elsewhere, where search
    scans). Closing the store closes the index, not the driver."""

    def __init__(self, driver: Driver, *, index: SearchIndex | None = _AUTO) -> None:
        self._driver = driver
        self._index: SearchIndex | None = search_index_for(driver) if index is _AUTO else index
        self._ser = EnvelopeSerializer()
        # a message is encoded by msgspec as its own struct (fast, and decoded back only into
        # that type), then sealed in the checksummed envelope as bytes
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(RecordedMessage)
        self.index_error: Exception | None = None

    @property
    def index(self) -> SearchIndex | None:
        """The full-text index (None: search scans)."""
        return self._index

    # state -----------------------------------------------------------------------------------
    def _state_entry(self) -> tuple[RecorderState, int | None]:
        entry = self._driver.get(MESSAGE_STATE_NS, STATE_KEY)
        if entry is None:
            return RecorderState(), None
        return msgspec.convert(
            self._ser.loads(entry.value, at=(MESSAGE_STATE_NS, STATE_KEY)), RecorderState
        ), entry.version

    def _state_put(self, state: RecorderState, version: int | None) -> Put:
        data = self._ser.dumps(msgspec.to_builtins(state), at=(MESSAGE_STATE_NS, STATE_KEY))
        if version is None:
            return Put(MESSAGE_STATE_NS, STATE_KEY, data, if_absent=True)
        return Put(MESSAGE_STATE_NS, STATE_KEY, data, if_version=version)

    def state(self) -> RecorderState:
        """The recorder's durable state (the default state of an empty store)."""
        return (self._state_entry())[0]

    def update_state(self, change: Callable[[RecorderState], None]) -> RecorderState:
        """Apply ``change`` to the state and store it by compare-and-set (ConflictError if another
        writer moved it in between)."""
        state, version = self._state_entry()
        change(state)
        try:
            self._driver.batch([self._state_put(state, version)])
        except ConflictError:
            raise ConflictError(
                "the recorder state moved under us: is another recorder writing this store?"
            ) from None
        return state

    # writing ---------------------------------------------------------------------------------
    def _taken(self, message_id: str) -> bool:
        found = self._driver.get(MESSAGE_ID_NS, digest_key(message_id))
        if found is None:
            return False
        if self._driver.atomic_batch:
            return True
        key = offset_key(int(found.value))
        record = self._driver.get(MESSAGE_NS, key)
        return record is not None and self._decode(key, record.value).id == message_id

    def append(self, incoming: Sequence[Incoming], *, enrich: Enrich | None = None) -> BatchResult:
        """Record ``incoming`` (at most 10,000) as one durable batch: drop the ones whose id is
        already recorded (or repeated in the batch), record each jump in a sender's sequence as a
        gap before the message that revealed it, and run ``enrich`` on each new message (its
        result is stored under ``enrichment``). Durable (as the driver) when it returns; then
        the new messages are indexed for search. Raises ConflictError if another recorder moved
        the state, ValidationError for a batch that is too large."""
        if len(incoming) > MAX_BATCH:
            raise ValidationError(f"a batch holds at most {MAX_BATCH} messages, got {len(incoming)}")
        if self._driver.atomic_batch:
            # Optimistic: the id entries are written create-only, so a batch holding an id that
            # is already recorded fails whole, and only then is each id looked up. A clean batch
            # (the common case) costs no read per message.
            try:
                return self._append(incoming, enrich, check_ids=False)
            except _IdTaken:
                pass
        return self._append(incoming, enrich, check_ids=True)

    def _append(self, incoming: Sequence[Incoming], enrich: Enrich | None, *, check_ids: bool) -> BatchResult:
        state, version = self._state_entry()
        offset = state.next_offset
        senders = dict(state.senders)
        seen: set[str] = set()
        recorded: list[RecordedMessage] = []
        duplicates = gaps = size = 0
        for item in incoming:
            fields = parse_body(item.body)
            if fields.id is not None:
                if fields.id in seen or (check_ids and self._taken(fields.id)):
                    duplicates += 1
                    continue
                seen.add(fields.id)
            late = False
            if fields.sender is not None and fields.seq is not None:
                last, one_seen = senders.get(fields.sender, (None, False))
                gap, late, newest, one_seen = sequence_step(last, one_seen, fields.seq)
                senders[fields.sender] = (newest, one_seen)
                if gap is not None:
                    recorded.append(
                        RecordedMessage(
                            offset=offset,
                            kind="gap",
                            topic=item.topic,
                            received_at=item.received_at,
                            source=item.source,
                            sender=fields.sender,
                            conversation=fields.conversation,
                            gap_from=gap[0],
                            gap_to=gap[1],
                        )
                    )
                    offset += 1
                    gaps += 1
            message = RecordedMessage(
                offset=offset,
                kind="message",
                topic=item.topic,
                received_at=item.received_at,
                source=item.source,
                id=fields.id,
                sender=fields.sender,
                seq=fields.seq,
                conversation=fields.conversation,
                role=fields.role,
                text=fields.text,
                body=item.body,
                is_json=fields.is_json,
                late=late,
            )
            if enrich is not None:
                message = msgspec.structs.replace(message, enrichment=dict(enrich(message)))
            recorded.append(message)
            offset += 1
            size += len(item.body)
        ops: list[Put] = []
        for message in recorded:
            key = offset_key(message.offset)
            ops.append(
                Put(MESSAGE_NS, key, self._ser.dumps(self._encoder.encode(message), at=(MESSAGE_NS, key)))
            )
        for message in recorded:
            if message.id is not None:
                id_key = digest_key(message.id)
                ops.append(Put(MESSAGE_ID_NS, id_key, str(message.offset).encode(), if_absent=not check_ids))
            if message.conversation is not None:
                key = f"{digest_key(message.conversation)}/{offset_key(message.offset)}"
                ops.append(Put(MESSAGE_CONV_NS, key, MARK))
        state.next_offset = offset
        state.senders = senders
        state.messages += len(recorded) - gaps
        state.gaps += gaps
        state.duplicates += duplicates
        state.bytes += size
        state.batches += 1 if recorded else 0
        if recorded or duplicates:
            ops.append(self._state_put(state, version))
            try:
                self._driver.batch(ops)
            except ConflictError:
                if not check_ids:
                    raise _IdTaken from None  # an id is recorded already (or the state moved): look
                raise ConflictError(
                    "the recorder state moved under us: is another recorder writing this store?"
                ) from None
        self._index_messages(recorded)
        return BatchResult(recorded=recorded, duplicates=duplicates, state=state, bytes=size, gaps=gaps)

    def _index_messages(self, messages: Sequence[RecordedMessage]) -> None:
        if self._index is None or not messages:
            return
        try:
            upto = _off_loop(self._index.indexed_upto)
            if upto < messages[0].offset - 1:  # an earlier batch was never indexed (a crash)
                self.catch_up_index()
            else:
                _off_loop(self._index.add, messages)
        except Exception as exc:  # derived data: catch_up_index() rebuilds it from the store
            self.index_error = exc

    def catch_up_index(self) -> int:
        """Index every recorded message the index has not reached (after a crash between a
        batch and its indexing); returns how many were indexed."""
        if self._index is None:
            return 0
        upto = _off_loop(self._index.indexed_upto)
        done = 0
        while True:
            page = [m for m in self.read(after=upto, limit=1000)]
            if not page:
                return done
            _off_loop(self._index.add, page)
            done += len(page)
            upto = page[-1].offset

    def thread_of(self, conversation: str) -> str | None:
        """The checkpoint thread id of ``conversation`` (None: never checkpointed)."""
        entry = self._driver.get(MESSAGE_THREAD_NS, digest_key(conversation))
        return None if entry is None else entry.value.decode()

    def set_thread_of(self, conversation: str, thread_id: str) -> None:
        """Remember the checkpoint thread of ``conversation`` (create-only)."""
        self._driver.put(MESSAGE_THREAD_NS, digest_key(conversation), thread_id.encode(), if_absent=True)

    # reading ---------------------------------------------------------------------------------
    def _decode(self, key: str, data: bytes) -> RecordedMessage:
        """The message stored at ``key`` (its envelope is bound to that key)."""
        inner: bytes = self._ser.loads(data, bytes, at=(MESSAGE_NS, key))
        try:
            return self._decoder.decode(inner)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CorruptionError(f"a recorded message does not decode: {exc}") from None

    def get(self, offset: int) -> RecordedMessage:
        """The record at ``offset``. NotFoundError, ValidationError for a bad offset."""
        check_offset(offset)
        entry = self._driver.get(MESSAGE_NS, offset_key(offset))
        if entry is None:
            raise NotFoundError(f"no message at offset {offset}")
        return self._decode(entry.key, entry.value)

    def get_by_id(self, message_id: str) -> RecordedMessage:
        """The message whose body carried ``id``. NotFoundError."""
        if not isinstance(message_id, str) or not message_id:
            raise ValidationError("a message id is a non-empty string")
        found = self._driver.get(MESSAGE_ID_NS, digest_key(message_id))
        if found is not None:
            message = self.get(int(found.value))
            if message.id == message_id:
                return message
        raise NotFoundError(f"no message with id {message_id!r:.80}")

    def read(
        self, *, after: int = 0, limit: int = 100, conversation: str | None = None, reverse: bool = False
    ) -> Iterator[RecordedMessage]:
        """Records in offset order (newest first with ``reverse``), after the offset ``after``
        (before it with ``reverse``, 0 meaning from the newest), only those of ``conversation``
        if given, at most ``limit`` (up to 10,000). Arguments are checked when called."""
        check_offset(after)
        check_limit(limit)
        return self._read(after, limit, conversation, reverse)

    def _read(
        self, after: int, limit: int, conversation: str | None, reverse: bool
    ) -> Iterator[RecordedMessage]:
        if limit == 0:
            return
        bound = offset_key(after) if after else None
        if conversation is None:
            scan = self._driver.scan(
                MESSAGE_NS,
                after=None if reverse else bound,
                before=bound if reverse else None,
                reverse=reverse,
                limit=limit,
            )
            for entry in [e for e in scan]:
                yield self._decode(entry.key, entry.value)
            return
        prefix = digest_key(conversation) + "/"
        scan = self._driver.scan(
            MESSAGE_CONV_NS,
            prefix=prefix,
            after=None if reverse or bound is None else prefix + bound,
            before=prefix + bound if reverse and bound is not None else None,
            reverse=reverse,
            limit=limit,
        )
        for entry in [e for e in scan]:
            found = self._driver.get(MESSAGE_NS, entry.key[len(prefix) :])
            if found is not None:
                message = self._decode(found.key, found.value)
                if message.conversation == conversation:
                    yield message

    def recent(self, limit: int = 20, *, conversation: str | None = None) -> list[RecordedMessage]:
        """The newest ``limit`` records (of ``conversation`` if given), oldest first."""
        found = [m for m in self.read(limit=limit, conversation=conversation, reverse=True)]
        found.reverse()
        return found

    def search(self, query: str, *, limit: int = 20, conversation: str | None = None) -> list[SearchHit]:
        """The messages whose text matches every word of ``query`` (as a word or word prefix,
        case-insensitive), best first, with a highlighted snippet; only those of
        ``conversation`` if given. Through the index where there is one (ranked by BM25 on
        SQLite), followed by a scan of any tail it has not indexed yet; without an index, a scan
        of every message ranked by the number of matches, newer first on ties."""
        if not isinstance(query, str):
            raise ValidationError("a search query is a string")
        check_limit(limit, 1000)
        terms = query_terms(query)
        if not terms or limit == 0:
            return []
        hits: list[SearchHit] = []
        upto = 0
        if self._index is not None:
            upto = _off_loop(self._index.indexed_upto)
            rows = _off_loop(self._index.search, query, limit=limit, conversation=conversation)
            for offset, rank, snippet in rows:
                entry = self._driver.get(MESSAGE_NS, offset_key(offset))
                if entry is not None:
                    hits.append(
                        SearchHit(message=self._decode(entry.key, entry.value), rank=rank, snippet=snippet)
                    )
        tail: list[SearchHit] = []
        cursor = upto
        last = (self.state()).next_offset - 1
        while cursor < last:  # the records the index has not reached (all of them without one)
            page = [m for m in self.read(after=cursor, limit=1000, conversation=conversation)]
            for message in page:
                text = message.text or ""
                if message.kind == "message" and matches_all(text, terms):
                    snippet, count = highlight(text, terms)
                    tail.append(SearchHit(message=message, rank=float(count), snippet=snippet))
            if len(page) < 1000:
                break
            cursor = page[-1].offset
        tail.sort(key=lambda h: (-h.rank, -h.message.offset))
        return (hits + tail)[:limit]

    def close(self) -> None:
        """Close the search index (the driver stays open: its owner closes it)."""
        if self._index is not None:
            self._index.close()
