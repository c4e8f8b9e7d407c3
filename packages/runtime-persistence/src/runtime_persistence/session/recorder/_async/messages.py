"""The message store (:class:`AsyncMessageStore`): every message a recorder received, once, in
the order it was recorded, with its gaps, beside a full-text index. Written once as async code;
the sync :class:`MessageStore` is generated from it by scripts/gen_sync.py.

Layout (see ``_model.py``)::

    msg.chunk   {offset:016d}                    up to 16 consecutive records, from this offset
    msg.id      {sha256(id)[:32]}                the offset of the message with that id (dedup;
                                                 layouts 1 and 2)
    msg.conv    {sha256(conversation)[:32]}/{offset:016d}   a conversation's offsets in a batch
    msg.thread  {sha256(conversation)[:32]}      the conversation's checkpoint thread
    msg.state   recorder                         the RecorderState, compare-and-set per batch

One :meth:`append` is one driver batch (one transaction, one fsync on SQLite): the records, their
index entries and the state that covers them commit together, so a recorder killed at any moment
restarts exactly after its last committed batch. The state moves by compare-and-set, so two
recorders on one store cannot interleave: the second gets ConflictError. On a driver without
atomic batches the records are written before the state that names them (chunks a crash left
past the state's end are deleted by the next batch), and an id index entry is trusted only when
its message carries that id.

Records are stored in chunks (layout 2): a batch of 1000 messages is 63 chunk rows, 1000 id rows
and a row per conversation in it (listing its offsets), not three rows and an envelope per
message. Stores begun before
chunks (their state has no ``layout``: layout 1) keep a row per record under ``msg``, read and
written as before.

Layout 3 (every new store on SQLite with its search index) has no id rows: the SQLite search
index keeps each message's id beside its words (derived data, like the words). Before a batch is
checked for recorded ids, the index is caught up from the chunks to the state's last offset
(after a crash between a batch and its indexing), the batch's ids are looked up in one query,
and each id found is checked against the record it names. A store object without that index
(``index=None``, or the store copied to another backend) keeps the ids of a layout-3 store in
memory instead, read from the chunks once."""

from __future__ import annotations

import asyncio  # sync: -
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, TypeVar

import msgspec
from runtime_core import (
    AsyncDriver,
    ConflictError,
    CorruptionError,
    Delete,
    Entry,
    NotFoundError,
    Put,
    Serializer,
    StorageError,
    ValidationError,
)

from runtime_persistence.session.recorder._model import (
    CHUNK,
    LAYOUT_CHUNKS,
    LAYOUT_INDEXED_IDS,
    LAYOUT_RECORDS,
    MARK,
    MAX_BATCH,
    MESSAGE_CHUNK_NS,
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
    check_query,
    digest_key,
    highlight,
    id_digest,
    key_offset,
    match_count,
    matches_all,
    offset_key,
    pack_offsets,
    parse_body,
    sequence_step,
    unpack_offsets,
)
from runtime_persistence.session.recorder.search import (
    RANK_WINDOW,
    SearchIndex,
    SqliteSearchIndex,
    search_index_for,
)
from runtime_persistence.storage.serialization import EnvelopeSerializer

__all__ = ["AsyncMessageStore"]

Enrich = Callable[[RecordedMessage], Mapping[str, Any]]
_AUTO: Any = object()
_T = TypeVar("_T")
_PAGE = 64  # chunk or conversation rows read per scan
_CACHED_CHUNKS = 64


class _IdTaken(Exception):
    """The optimistic batch met an id that is already recorded."""


class _MemoryIds:
    """The recorded ids of a layout-3 store held by a store object without its SQLite index:
    id digest -> offsets, read from the chunks up to ``upto``."""

    def __init__(self) -> None:
        self.upto = 0
        self.offsets: dict[int, list[int]] = {}

    def add(self, messages: Sequence[RecordedMessage]) -> None:
        for message in messages:
            if message.offset <= self.upto:
                continue
            if message.id is not None:
                self.offsets.setdefault(id_digest(message.id), []).append(message.offset)
            self.upto = message.offset

    def offsets_of(self, digests: Sequence[int]) -> list[tuple[int, int]]:
        return [(d, o) for d in digests for o in self.offsets.get(d, ())]


async def _off_loop(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Run a call of the (sync) search index on a worker thread: its I/O is local file I/O."""
    return await asyncio.to_thread(fn, *args, **kwargs)  # sync: return fn(*args, **kwargs)


class AsyncMessageStore:
    """Recorded messages over any driver. ``index``: the full-text index (by default the one
    :func:`search_index_for` finds for the driver: FTS5 on SQLite, a tsvector table on
    PostgreSQL, a FULLTEXT table on MySQL, none elsewhere, where search scans). Closing the store closes the index, not the driver.

    ``serializer``: seals every record (messages, chunks, the recorder state); by default the
    plain :class:`EnvelopeSerializer`. On an encrypted store pass the runtime's (the one with its
    keyring): records are then encrypted, and a plaintext or misplaced one is refused with
    CorruptionError. The id, conversation and thread index rows hold only offsets and thread ids
    (raw bytes, not envelopes), and the full-text index holds the words of every message in
    plaintext by design (docs/security.md)."""

    def __init__(
        self,
        driver: AsyncDriver,
        *,
        index: SearchIndex | None = _AUTO,
        serializer: Serializer | None = None,
    ) -> None:
        self._driver = driver
        self._index: SearchIndex | None = search_index_for(driver) if index is _AUTO else index
        self._ser: Serializer = serializer if serializer is not None else EnvelopeSerializer()
        # a message is encoded by msgspec as its own struct (fast, and decoded back only into
        # that type), then sealed in the checksummed envelope as bytes
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(RecordedMessage)
        self._chunk_decoder = msgspec.msgpack.Decoder(list[RecordedMessage])
        # decoded chunks (immutable once their batch committed), for search hits and
        # conversation reads that land in the same chunk; not on a driver without atomic
        # batches, where a crash can leave a chunk that the next batch rewrites
        self._chunks: dict[str, list[RecordedMessage]] = {}
        self._layout: int | None = None
        self._indexed: int | None = None
        self._memory_ids: _MemoryIds | None = None
        self.index_error: Exception | None = None

    @property
    def index(self) -> SearchIndex | None:
        """The full-text index (None: search scans)."""
        return self._index

    # state -----------------------------------------------------------------------------------
    async def _state_entry(self) -> tuple[RecorderState, int | None]:
        entry = await self._driver.get(MESSAGE_STATE_NS, STATE_KEY)
        if entry is None:  # a new store: chunks, with the ids in the SQLite index if it has one
            return RecorderState(layout=LAYOUT_INDEXED_IDS if self._sqlite_ids() else LAYOUT_CHUNKS), None
        try:
            state = msgspec.convert(
                self._ser.loads(entry.value, at=(MESSAGE_STATE_NS, STATE_KEY)), RecorderState
            )
        except msgspec.ValidationError as exc:
            raise CorruptionError(f"the recorder state does not decode: {exc}") from None
        if state.layout not in (LAYOUT_RECORDS, LAYOUT_CHUNKS, LAYOUT_INDEXED_IDS):
            raise CorruptionError(f"the recorder state names an unknown record layout {state.layout!r:.20}")
        self._layout = state.layout
        return state, entry.version

    def _sqlite_ids(self) -> SqliteSearchIndex | None:
        """The SQLite index that keeps this store's ids (layout 3), if this store object writes
        through one (and its driver's batches are atomic)."""
        index = self._index
        if isinstance(index, SqliteSearchIndex) and index.writable and self._driver.atomic_batch:
            return index
        return None

    async def _recorded_ids(self, ids: Sequence[str], state: RecorderState) -> set[str]:
        """Which of ``ids`` a layout-3 store has recorded before ``state.next_offset``: looked up
        in the SQLite index (caught up from the chunks first) or, without it, in the ids held in
        memory; each one found is checked against its record."""
        last = state.next_offset - 1
        lookup: Callable[[Sequence[int]], list[tuple[int, int]]]
        index = self._sqlite_ids()
        if index is not None:
            upto = self._indexed if self._indexed is not None else await _off_loop(index.indexed_upto)
            if upto < last:  # a batch was committed but never indexed (a crash, another writer)
                await self.catch_up_index()
                upto = await _off_loop(index.indexed_upto)
                if upto < last:
                    raise StorageError(f"the id index reaches offset {upto}, the store {last}")
                self._indexed = upto
            lookup = index.offsets_of
        else:
            if self._memory_ids is None:
                self._memory_ids = _MemoryIds()
            memory = self._memory_ids
            while memory.upto < last:  # never past the state's end (a crash's stale chunks)
                page = [m async for m in self.read(after=memory.upto, limit=min(1000, last - memory.upto))]
                if not page:
                    raise CorruptionError(f"the records end before offset {last}, the state's last")
                memory.add(page)
            lookup = memory.offsets_of
        if not ids:
            return set()
        by_digest: dict[int, list[str]] = {}
        for message_id in ids:
            by_digest.setdefault(id_digest(message_id), []).append(message_id)
        found = lookup(list(by_digest)) if index is None else await _off_loop(lookup, list(by_digest))
        taken: set[str] = set()
        for digest, offset in found:
            if offset > last:
                continue  # not covered by the state (only a damaged index names one)
            record = await self._load(offset)
            if record is not None and record.id is not None and record.id in by_digest.get(digest, ()):
                taken.add(record.id)
        return taken

    async def _layout_of_store(self) -> int:
        """The store's record layout (fixed once its state exists; an empty store reads as
        chunks, which it will be)."""
        if self._layout is None:
            return (await self._state_entry())[0].layout
        return self._layout

    def _state_put(self, state: RecorderState, version: int | None) -> Put:
        data = self._ser.dumps(msgspec.to_builtins(state), at=(MESSAGE_STATE_NS, STATE_KEY))
        if version is None:
            return Put(MESSAGE_STATE_NS, STATE_KEY, data, if_absent=True)
        return Put(MESSAGE_STATE_NS, STATE_KEY, data, if_version=version)

    async def state(self) -> RecorderState:
        """The recorder's durable state (the default state of an empty store)."""
        return (await self._state_entry())[0]

    async def update_state(self, change: Callable[[RecorderState], None]) -> RecorderState:
        """Apply ``change`` to the state and store it by compare-and-set (ConflictError if another
        writer moved it in between)."""
        state, version = await self._state_entry()
        change(state)
        try:
            await self._driver.batch([self._state_put(state, version)])
        except ConflictError:
            raise ConflictError(
                "the recorder state moved under us: is another recorder writing this store?"
            ) from None
        return state

    # writing ---------------------------------------------------------------------------------
    async def _taken(self, message_id: str) -> bool:
        found = await self._driver.get(MESSAGE_ID_NS, digest_key(message_id))
        if found is None:
            return False
        if self._driver.atomic_batch:
            return True
        record = await self._load(int(found.value))
        return record is not None and record.id == message_id

    async def append(self, incoming: Sequence[Incoming], *, enrich: Enrich | None = None) -> BatchResult:
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
                return await self._append(incoming, enrich, check_ids=False)
            except _IdTaken:
                pass
        return await self._append(incoming, enrich, check_ids=True)

    async def _append(
        self, incoming: Sequence[Incoming], enrich: Enrich | None, *, check_ids: bool
    ) -> BatchResult:
        state, version = await self._state_entry()
        offset = state.next_offset
        senders = dict(state.senders)
        seen: set[str] = set()
        recorded: list[RecordedMessage] = []
        duplicates = gaps = size = 0
        parsed = [parse_body(item.body) for item in incoming]
        indexed_ids = state.layout == LAYOUT_INDEXED_IDS
        taken: set[str] = set()
        if indexed_ids:  # the ids are in the index: one lookup for the batch, no id rows
            taken = await self._recorded_ids([f.id for f in parsed if f.id is not None], state)
            check_ids = False
        for item, fields in zip(incoming, parsed, strict=True):
            if fields.id is not None:
                if (
                    fields.id in seen
                    or (indexed_ids and fields.id in taken)
                    or (check_ids and await self._taken(fields.id))
                ):
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
        ops: list[Put | Delete] = []
        if state.layout != LAYOUT_RECORDS:
            if recorded and not self._driver.atomic_batch:
                ops.extend(await self._stale_chunks(state.next_offset))
            ops.extend(self._chunk_ops(recorded))
        else:
            for message in recorded:
                key = offset_key(message.offset)
                ops.append(
                    Put(MESSAGE_NS, key, self._ser.dumps(self._encoder.encode(message), at=(MESSAGE_NS, key)))
                )
            for message in recorded:
                if message.conversation is not None:
                    key = f"{digest_key(message.conversation)}/{offset_key(message.offset)}"
                    ops.append(Put(MESSAGE_CONV_NS, key, MARK))
        for message in recorded if not indexed_ids else ():
            if message.id is not None:
                id_key = digest_key(message.id)
                ops.append(Put(MESSAGE_ID_NS, id_key, str(message.offset).encode(), if_absent=not check_ids))
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
                await self._driver.batch(ops)
            except ConflictError:
                if not check_ids and not indexed_ids:
                    raise _IdTaken from None  # an id is recorded already (or the state moved): look
                raise ConflictError(
                    "the recorder state moved under us: is another recorder writing this store?"
                ) from None
        self._layout = state.layout
        await self._index_messages(recorded)
        return BatchResult(recorded=recorded, duplicates=duplicates, state=state, bytes=size, gaps=gaps)

    def _chunk_ops(self, recorded: Sequence[RecordedMessage]) -> list[Put | Delete]:
        """The chunk rows of a batch's records, and a row per conversation listing its offsets
        in the batch (keyed by the first)."""
        ops: list[Put | Delete] = []
        for start in range(0, len(recorded), CHUNK):
            part = recorded[start : start + CHUNK]
            key = offset_key(part[0].offset)
            self._chunks.pop(key, None)
            data = self._ser.dumps(self._encoder.encode(part), at=(MESSAGE_CHUNK_NS, key))
            ops.append(Put(MESSAGE_CHUNK_NS, key, data))
        conversations: dict[str, list[int]] = {}
        for message in recorded:
            if message.conversation is not None:
                conversations.setdefault(message.conversation, []).append(message.offset)
        for conversation, offsets in conversations.items():
            key = f"{digest_key(conversation)}/{offset_key(offsets[0])}"
            ops.append(Put(MESSAGE_CONV_NS, key, pack_offsets(offsets)))
        return ops

    async def _stale_chunks(self, next_offset: int) -> list[Put | Delete]:
        """Deletes of the chunks at or past ``next_offset``: written by a batch whose state never
        followed (a crash on a driver without atomic batches); the next batch reuses the offsets."""
        stale = self._driver.scan(MESSAGE_CHUNK_NS, after=offset_key(next_offset - 1))
        return [Delete(MESSAGE_CHUNK_NS, entry.key) async for entry in stale]

    async def _index_messages(self, messages: Sequence[RecordedMessage]) -> None:
        memory = self._memory_ids
        if memory is not None and messages and memory.upto == messages[0].offset - 1:
            memory.add(messages)
        if self._index is None or not messages:
            return
        try:
            # this store's own last indexed offset when it indexed the previous batch itself
            upto = self._indexed if self._indexed is not None else await _off_loop(self._index.indexed_upto)
            if upto < messages[0].offset - 1:  # an earlier batch was never indexed (a crash)
                await self.catch_up_index()
            else:
                await _off_loop(self._index.add, messages)
            self._indexed = messages[-1].offset
        except Exception as exc:  # derived data: catch_up_index() rebuilds it from the store
            self._indexed = None
            self.index_error = exc

    async def catch_up_index(self) -> int:
        """Index every recorded message the index has not reached (after a crash between a
        batch and its indexing); returns how many were indexed."""
        if self._index is None:
            return 0
        upto = await _off_loop(self._index.indexed_upto)
        done = 0
        while True:
            page = [m async for m in self.read(after=upto, limit=1000)]
            if not page:
                return done
            await _off_loop(self._index.add, page)
            done += len(page)
            upto = page[-1].offset

    async def thread_of(self, conversation: str) -> str | None:
        """The checkpoint thread id of ``conversation`` (None: never checkpointed)."""
        entry = await self._driver.get(MESSAGE_THREAD_NS, digest_key(conversation))
        return None if entry is None else entry.value.decode()

    async def set_thread_of(self, conversation: str, thread_id: str) -> None:
        """Remember the checkpoint thread of ``conversation`` (create-only)."""
        await self._driver.put(
            MESSAGE_THREAD_NS, digest_key(conversation), thread_id.encode(), if_absent=True
        )

    # reading ---------------------------------------------------------------------------------
    def _decode(self, key: str, data: bytes) -> RecordedMessage:
        """The message stored at ``key`` (layout 1; its envelope is bound to that key)."""
        inner: bytes = self._ser.loads(data, bytes, at=(MESSAGE_NS, key))
        try:
            message = self._decoder.decode(inner)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CorruptionError(f"a recorded message does not decode: {exc}") from None
        if offset_key(message.offset) != key:
            raise CorruptionError(f"the record at {key} names offset {message.offset}")
        return message

    def _decode_chunk(self, entry: Entry) -> list[RecordedMessage]:
        """The records of the chunk ``entry`` (layout 2), checked to run from its key's offset
        without a hole; kept for the next read on a driver with atomic batches."""
        cached = self._chunks.get(entry.key)
        if cached is not None:
            return cached
        inner: bytes = self._ser.loads(entry.value, bytes, at=(MESSAGE_CHUNK_NS, entry.key))
        try:
            records = self._chunk_decoder.decode(inner)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CorruptionError(f"a chunk of recorded messages does not decode: {exc}") from None
        first = key_offset(entry.key)
        if not 0 < len(records) <= CHUNK or any(m.offset != first + i for i, m in enumerate(records)):
            raise CorruptionError(f"the chunk at {entry.key} does not hold the records from its offset")
        if self._driver.atomic_batch:
            if len(self._chunks) >= _CACHED_CHUNKS:
                self._chunks.pop(next(iter(self._chunks)))
            self._chunks[entry.key] = records
        return records

    async def _load(self, offset: int) -> RecordedMessage | None:
        """The record at ``offset`` (None: none)."""
        if await self._layout_of_store() == LAYOUT_RECORDS:
            entry = await self._driver.get(MESSAGE_NS, offset_key(offset))
            return None if entry is None else self._decode(entry.key, entry.value)
        for cached in self._chunks.values():
            if cached[0].offset <= offset <= cached[-1].offset:
                return cached[offset - cached[0].offset]
        # the chunk holding it is the last one starting at or before it
        scan = self._driver.scan(MESSAGE_CHUNK_NS, before=offset_key(offset + 1), reverse=True, limit=1)
        for entry in [e async for e in scan]:
            records = self._decode_chunk(entry)
            index = offset - records[0].offset
            if index < len(records):
                return records[index]
        return None

    async def get(self, offset: int) -> RecordedMessage:
        """The record at ``offset``. NotFoundError, ValidationError for a bad offset."""
        check_offset(offset)
        message = await self._load(offset)
        if message is None:
            raise NotFoundError(f"no message at offset {offset}")
        return message

    async def get_by_id(self, message_id: str) -> RecordedMessage:
        """The message whose body carried ``id``. NotFoundError."""
        if not isinstance(message_id, str) or not message_id:
            raise ValidationError("a message id is a non-empty string")
        if await self._layout_of_store() == LAYOUT_INDEXED_IDS:
            return await self._get_by_indexed_id(message_id)
        found = await self._driver.get(MESSAGE_ID_NS, digest_key(message_id))
        if found is not None:
            message = await self.get(int(found.value))
            if message.id == message_id:
                return message
        raise NotFoundError(f"no message with id {message_id!r:.80}")

    async def _get_by_indexed_id(self, message_id: str) -> RecordedMessage:
        """Layout 3: the message with ``message_id``, through the ids the index (or this object's
        memory) holds, then the records it has not reached."""
        digest = id_digest(message_id)
        upto, found = 0, []
        if isinstance(self._index, SqliteSearchIndex):
            upto = await _off_loop(self._index.indexed_upto)
            found = await _off_loop(self._index.offsets_of, [digest])
        elif self._memory_ids is not None:
            upto, found = self._memory_ids.upto, self._memory_ids.offsets_of([digest])
        for _, offset in found:
            message = await self._load(offset)
            if message is not None and message.id == message_id:
                return message
        while True:
            page = [m async for m in self.read(after=upto, limit=1000)]
            for message in page:
                if message.id == message_id:
                    return message
            if len(page) < 1000:
                raise NotFoundError(f"no message with id {message_id!r:.80}")
            upto = page[-1].offset

    def read(
        self, *, after: int = 0, limit: int = 100, conversation: str | None = None, reverse: bool = False
    ) -> AsyncIterator[RecordedMessage]:
        """Records in offset order (newest first with ``reverse``), after the offset ``after``
        (before it with ``reverse``, 0 meaning from the newest), only those of ``conversation``
        if given, at most ``limit`` (up to 10,000). Arguments are checked when called."""
        check_offset(after)
        check_limit(limit)
        return self._read(after, limit, conversation, reverse)

    async def _read(
        self, after: int, limit: int, conversation: str | None, reverse: bool
    ) -> AsyncIterator[RecordedMessage]:
        if limit == 0:
            return
        if await self._layout_of_store() != LAYOUT_RECORDS:
            left = limit
            async for message in self._read_chunks(after, conversation, reverse):
                yield message
                left -= 1
                if not left:
                    return
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
            for entry in [e async for e in scan]:
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
        for entry in [e async for e in scan]:
            found = await self._driver.get(MESSAGE_NS, entry.key[len(prefix) :])
            if found is not None:
                message = self._decode(found.key, found.value)
                if message.conversation == conversation:
                    yield message

    async def _read_chunks(
        self, after: int, conversation: str | None, reverse: bool
    ) -> AsyncIterator[RecordedMessage]:
        """Layout 2: the records past ``after`` (before it with ``reverse``; 0: from the newest),
        of ``conversation`` if given, read chunk by chunk (or conversation row by row) in pages."""

        def wanted(offset: int) -> bool:
            return (offset < after or not after) if reverse else offset > after

        prefix = "" if conversation is None else digest_key(conversation) + "/"
        namespace = MESSAGE_CHUNK_NS if conversation is None else MESSAGE_CONV_NS
        high = prefix + offset_key(after) if reverse and after else None
        low = None
        if not reverse and after:
            # start at the row holding ``after`` (the last one keyed at or before it)
            scan = self._driver.scan(
                namespace, prefix=prefix, before=prefix + offset_key(after + 1), reverse=True, limit=1
            )
            for entry in [e async for e in scan]:
                low = prefix + offset_key(key_offset(entry.key[len(prefix) :]) - 1)
        while True:
            scan = self._driver.scan(
                namespace, prefix=prefix, after=low, before=high, reverse=reverse, limit=_PAGE
            )
            page = [e async for e in scan]
            for entry in page:
                if conversation is None:
                    for message in (
                        reversed(self._decode_chunk(entry)) if reverse else self._decode_chunk(entry)
                    ):
                        if wanted(message.offset):
                            yield message
                    continue
                offsets = unpack_offsets(entry.value, key_offset(entry.key[len(prefix) :]))
                for offset in reversed(offsets) if reverse else offsets:
                    if wanted(offset):
                        found = await self._load(offset)
                        if found is not None and found.conversation == conversation:
                            yield found
            if len(page) < _PAGE:
                return
            if reverse:
                high = page[-1].key
            else:
                low = page[-1].key

    async def recent(self, limit: int = 20, *, conversation: str | None = None) -> list[RecordedMessage]:
        """The newest ``limit`` records (of ``conversation`` if given), oldest first."""
        found = [m async for m in self.read(limit=limit, conversation=conversation, reverse=True)]
        found.reverse()
        return found

    async def search(
        self, query: str, *, limit: int = 20, conversation: str | None = None
    ) -> list[SearchHit]:
        """The messages whose text holds each word of ``query`` as a word or the start of a
        word (words as :func:`~runtime_persistence.session.recorder._model.words` finds them:
        case and diacritics folded; nothing in a query is syntax), best first, with a
        highlighted snippet; only those of ``conversation`` if given. The same messages match on
        every store: through the index where there is one (FTS5 ranked by BM25 on SQLite, a
        tsvector ranked by ts_rank on PostgreSQL, FULLTEXT on MySQL), followed by a scan of any tail it has not
        indexed yet; without an index, a scan of every message ranked by the number of matching
        words. Only the newest 5,000 matches are ranked; newer first on ties. ValidationError
        for a query that is not a string, is over 1,000 characters or 32 words, or a bad
        ``limit`` or ``conversation``."""
        terms = check_query(query)
        check_limit(limit, 1000)
        if conversation is not None and (not isinstance(conversation, str) or "\x00" in conversation):
            raise ValidationError("a conversation is a string without NUL")
        if not terms or limit == 0:
            return []
        hits: list[SearchHit] = []
        upto = 0
        if self._index is not None:
            upto = await _off_loop(self._index.indexed_upto)
            # a few more than asked: the index may name a message whose long words only start
            # alike (PostgreSQL) or one stored whole (overflow), and the text decides
            rows = await _off_loop(
                self._index.search, terms, limit=min(2 * limit + 10, 2000), conversation=conversation
            )
            for offset, rank in rows:
                message = await self._load(offset)
                if message is None or message.kind != "message":
                    continue
                if conversation is not None and message.conversation != conversation:
                    continue
                text = message.text or ""
                if matches_all(text, terms):
                    hits.append(SearchHit(message=message, rank=rank, snippet=highlight(text, terms)[0]))
                    if len(hits) == limit:
                        break
        tail: list[tuple[RecordedMessage, int]] = []
        cursor = upto
        last = (await self.state()).next_offset - 1
        while cursor < last:  # the records the index has not reached (all of them without one)
            page = [m async for m in self.read(after=cursor, limit=1000, conversation=conversation)]
            for message in page:
                text = message.text or ""
                if message.kind == "message" and matches_all(text, terms):
                    tail.append((message, match_count(text, terms)))
            if len(tail) > 2 * RANK_WINDOW:
                del tail[:-RANK_WINDOW]
            if len(page) < 1000:
                break
            cursor = page[-1].offset
        best = sorted(tail[-RANK_WINDOW:], key=lambda h: (-h[1], -h[0].offset))[: limit - len(hits)]
        for message, count in best:
            snippet = highlight(message.text or "", terms)[0]
            hits.append(SearchHit(message=message, rank=float(count), snippet=snippet))
        return hits

    async def close(self) -> None:
        """Close the search index (the driver stays open: its owner closes it)."""
        if self._index is not None:
            self._index.close()
