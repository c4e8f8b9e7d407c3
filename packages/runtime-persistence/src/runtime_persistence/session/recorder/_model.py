"""The I/O-free half of the message store: the recorded-message record, how a wire body is read,
per-sender sequence tracking (gaps), the key layout and the fallback snippet highlighter. Shared
by the async source in ``_async/messages.py`` and the sync twin generated from it."""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from runtime_core import ValidationError

__all__ = [
    "BatchResult",
    "Incoming",
    "RecordedMessage",
    "RecorderState",
    "SearchHit",
    "WireFields",
    "parse_body",
]

MESSAGE_NS = "msg"
"""``{offset:016d}`` -> a :class:`RecordedMessage` (layout 1, stores begun before chunks)."""
MESSAGE_CHUNK_NS = "msg.chunk"
"""``{first offset:016d}`` -> up to :data:`CHUNK` consecutive records (layout 2, every newer
store): one envelope and one row for many messages."""
CHUNK = 16
"""Records per chunk: large enough that a chunk's row and envelope cost little per message,
small enough that reading one message (a search hit) decodes only a few kilobytes (64 made each
hit cost about 1 ms in the envelope's checks over 1M messages)."""
LAYOUT_RECORDS = 1
LAYOUT_CHUNKS = 2
LAYOUT_INDEXED_IDS = 3
"""Chunks, and no ``msg.id`` rows: the ids are found through the SQLite search index, which
indexes each message's id beside its words (derived data, caught up from the chunks before a
batch is checked against it). Every new store on SQLite with its index; layout 2 elsewhere."""
MESSAGE_ID_NS = "msg.id"
"""``{sha256(id)[:32]}`` -> the offset of the message with that id (the dedup index; layouts 1
and 2)."""
MESSAGE_CONV_NS = "msg.conv"
"""``{sha256(conversation)[:32]}/{offset:016d}`` -> mark: the messages of a conversation (layout
1: the message's offset; layout 2: the first offset of a chunk holding some of them)."""
MESSAGE_THREAD_NS = "msg.thread"
"""``{sha256(conversation)[:32]}`` -> the id of the checkpoint thread of that conversation."""
MESSAGE_STATE_NS = "msg.state"
"""``recorder`` -> the :class:`RecorderState`, moved by compare-and-set with every batch."""
STATE_KEY = "recorder"
MARK = b"\x01"
MAX_FIELD_CHARS = 200
MAX_BATCH = 10_000

Kind = Literal["message", "gap"]


class RecordedMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One recorded message (``kind="message"``) or one recorded gap (``kind="gap"``: the
    sequence numbers ``gap_from``..``gap_to`` of ``sender`` never arrived).

    ``body`` is the message body exactly as it crossed the wire; ``is_json`` says whether it
    parsed as a JSON object (then ``id``, ``sender``, ``seq``, ``conversation``, ``role`` and
    ``text`` were read from it when present and well typed). ``enrichment`` holds what the
    enrichers computed, by enricher name: stored beside the message, never changing it.
    ``late``: a sequence number below the sender's newest (it fills an earlier gap)."""

    offset: int
    kind: Kind
    topic: str
    received_at: datetime
    source: str = ""
    id: str | None = None
    sender: str | None = None
    seq: int | None = None
    conversation: str | None = None
    role: str | None = None
    text: str | None = None
    body: bytes = b""
    is_json: bool = False
    gap_from: int | None = None
    gap_to: int | None = None
    late: bool = False
    enrichment: dict[str, Any] = {}

    def to_json(self) -> dict[str, Any]:
        """The message as JSON-ready data (the body as text when it is UTF-8 JSON, else base64
        under ``body_base64``)."""
        import base64

        out: dict[str, Any] = {
            "offset": self.offset,
            "kind": self.kind,
            "topic": self.topic,
            "received_at": self.received_at.isoformat(),
            "source": self.source,
            "id": self.id,
            "sender": self.sender,
            "seq": self.seq,
            "conversation": self.conversation,
            "role": self.role,
            "text": self.text,
        }
        if self.kind == "gap":
            out["gap_from"], out["gap_to"] = self.gap_from, self.gap_to
        if self.late:
            out["late"] = True
        if self.is_json:
            out["body"] = self.body.decode("utf-8")
        else:
            out["body_base64"] = base64.b64encode(self.body).decode("ascii")
        out["enrichment"] = self.enrichment
        return out


class RecorderState(msgspec.Struct, kw_only=True):
    """The recorder's durable state, written in the same batch as the messages it covers, so a
    restarted recorder resumes exactly where its last committed batch ended (the store itself is
    the recovery file)."""

    next_offset: int = 1
    senders: dict[str, tuple[int, bool]] = {}
    """Each sender's newest sequence number, and whether its current run has shown its 1."""
    messages: int = 0
    gaps: int = 0
    duplicates: int = 0
    bytes: int = 0
    batches: int = 0
    checkpointed_offset: int = 0
    checkpoints: int = 0
    starts: int = 0
    clean_stops: int = 0
    running: bool = False
    layout: int = LAYOUT_RECORDS
    """How records are stored: 1, a row per record (stores begun before layout 2, whose state
    has no such field); 2, chunks of up to :data:`CHUNK` records with an id row per message; 3,
    chunks, with the ids in the SQLite search index (:data:`LAYOUT_INDEXED_IDS`)."""

    def to_json(self) -> dict[str, Any]:
        """The state as JSON-ready data, with ``senders`` as the number of senders."""
        data: dict[str, Any] = msgspec.to_builtins(self)
        data["senders"] = len(self.senders)
        return data


@dataclass(frozen=True, slots=True)
class Incoming:
    """One delivery from a source, before it is recorded."""

    topic: str
    body: bytes
    received_at: datetime
    source: str = ""


@dataclass(frozen=True, slots=True)
class WireFields:
    """The recognised fields of a body (None where absent, malformed or not JSON)."""

    is_json: bool
    id: str | None = None
    sender: str | None = None
    seq: int | None = None
    conversation: str | None = None
    role: str | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one :meth:`append` recorded: the new records (messages and gaps, in offset order),
    the duplicates it dropped and the state after it."""

    recorded: list[RecordedMessage]
    duplicates: int
    state: RecorderState
    bytes: int = 0
    gaps: int = field(default=0)


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result: the message, its rank (higher is better) and a snippet of its text
    with each match wrapped in ``[`` ``]`` (the marks are :data:`MARK_OPEN` / :data:`MARK_CLOSE`)."""

    message: RecordedMessage
    rank: float
    snippet: str


MARK_OPEN = "["
MARK_CLOSE = "]"

_decoder = msgspec.json.Decoder()


_Short = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_FIELD_CHARS)]


class _Wire(msgspec.Struct):
    """The recognised fields, well typed and within bounds as :func:`_short` wants them (any
    other field is skipped by the decoder; a body with one out of bounds takes the slow path)."""

    id: _Short | None = None
    sender: _Short | None = None
    seq: Annotated[int, msgspec.Meta(ge=0)] | None = None
    conversation: _Short | None = None
    role: _Short | None = None
    text: str | None = None


_wire_decoder = msgspec.json.Decoder(_Wire)


def _short(value: Any) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= MAX_FIELD_CHARS and "\x00" not in value:
        return value
    return None


def parse_body(body: bytes) -> WireFields:
    """Read the recognised fields of ``body`` (UTF-8 JSON object). Anything else (not JSON, not
    an object, a field of the wrong type or too long) is not an error: the body is kept as is and
    the field is simply not recognised."""
    # the common case: an object whose recognised fields are well typed and within bounds,
    # decoded alone; a NUL can only be written \u0000 in JSON (a body that may hold one takes
    # the slow path, which drops such a field)
    if b"\\u0000" not in body:
        try:
            wire = _wire_decoder.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
            pass
        else:
            return WireFields(True, wire.id, wire.sender, wire.seq, wire.conversation, wire.role, wire.text)
    try:
        data = _decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return WireFields(is_json=False)
    if not isinstance(data, dict):
        return WireFields(is_json=False)
    seq = data.get("seq")
    text = data.get("text")
    return WireFields(
        is_json=True,
        id=_short(data.get("id")),
        sender=_short(data.get("sender")),
        seq=seq if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0 else None,
        conversation=_short(data.get("conversation")),
        role=_short(data.get("role")),
        text=text if isinstance(text, str) else None,
    )


def digest_key(value: str) -> str:
    """A fixed-length key for any string (32 hex digits of its SHA-256)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@functools.lru_cache(maxsize=16_384)  # a batch's ids are looked up, then indexed: hashed once
def id_digest(value: str) -> int:
    """A message id as the SQLite search index keys it: the first 8 bytes of its SHA-256 as a
    signed 64-bit integer (two ids may share one: every hit is checked against the record)."""
    data = hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(data[:8], "big", signed=True)


def offset_key(offset: int) -> str:
    return f"{offset:016d}"


def key_offset(key: str) -> int:
    """The offset a stored key spells (16 digits); CorruptionError for anything else (keys are
    read back from the store, which is untrusted)."""
    from runtime_core import CorruptionError

    if len(key) != 16 or not key.isdigit() or not key.isascii():
        raise CorruptionError(f"a recorder key {key!r:.40} is not a 16-digit offset")
    return int(key)


def pack_offsets(offsets: list[int]) -> bytes:
    """Ascending offsets as 8-byte big-endian numbers (a conversation row's value, layout 2)."""
    return b"".join(o.to_bytes(8, "big") for o in offsets)


def unpack_offsets(data: bytes, first: int) -> list[int]:
    """The offsets of a conversation row keyed by ``first``; CorruptionError unless they are
    whole numbers, ascending from ``first``."""
    from runtime_core import CorruptionError

    if not data or len(data) % 8:
        raise CorruptionError(f"a conversation row holds {len(data)} bytes, not 8-byte offsets")
    offsets = [int.from_bytes(data[i : i + 8], "big") for i in range(0, len(data), 8)]
    if offsets[0] != first or any(b <= a for a, b in itertools.pairwise(offsets)):
        raise CorruptionError(f"a conversation row keyed by offset {first} lists other offsets")
    return offsets


def check_limit(limit: object, most: int = 10_000) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= most:
        raise ValidationError(f"limit must be an integer from 0 to {most}, got {limit!r:.40}")
    return limit


def check_offset(offset: object) -> int:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationError(f"an offset is a non-negative integer, got {offset!r:.40}")
    return offset


def sequence_step(
    last: int | None, one_seen: bool, seq: int
) -> tuple[tuple[int, int] | None, bool, int, bool]:
    """What a new (non-duplicate) ``seq`` from a sender whose newest was ``last`` means:
    ``(gap, late, new_last, new_one_seen)``. A sender's sequence starts at 1; a jump records the
    missing numbers as a gap; a number at or below ``last`` is a late message filling an earlier
    gap (``last`` stays), except ``1`` once a 1 was seen: that is a restarted sender (no gap).
    ``one_seen`` tells whether this sender's current run has shown its 1."""
    if last is None:
        return ((1, seq - 1) if seq > 1 else None), False, seq, seq == 1
    if seq > last + 1:
        return (last + 1, seq - 1), False, seq, one_seen
    if seq == last + 1:
        return None, False, seq, one_seen
    if seq == 1 and one_seen:
        return None, False, 1, True
    return None, True, last, one_seen or seq == 1


_WORD = re.compile(r"\w+", re.UNICODE)
# a word as written: word characters and the combining marks that fold away
_WRITTEN = re.compile(r"[\w\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
MAX_QUERY_CHARS = 1000
MAX_QUERY_TERMS = 32


def fold(text: str) -> str:
    """``text`` as search compares it: case-folded, compatibility-decomposed (NFKD), without
    combining marks (so ``Café`` is ``cafe``, ``Straße`` is ``strasse``, ``ﬁ`` is ``fi``)."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.category(c).startswith("M"))


def words(text: str) -> list[str]:
    """The words of ``text`` as every search backend indexes them: the runs of word characters
    (letters, digits, ``_``) of the folded text. ``snake_case`` is one word, ``foo.bar`` and
    ``state-of-the-art`` are several."""
    return _WORD.findall(fold(text))


def query_terms(query: str) -> list[str]:
    """The words of a search query (a message matches when each is a word, or the start of a
    word, of its text). Nothing in a query is syntax."""
    return words(query)


def check_query(query: object) -> list[str]:
    """The terms of ``query``; ValidationError unless it is a string of at most 1,000
    characters with at most 32 words."""
    if not isinstance(query, str):
        raise ValidationError("a search query is a string")
    if len(query) > MAX_QUERY_CHARS:
        raise ValidationError(f"a search query is at most {MAX_QUERY_CHARS} characters, got {len(query)}")
    terms = query_terms(query)
    if len(terms) > MAX_QUERY_TERMS:
        raise ValidationError(f"a search query has at most {MAX_QUERY_TERMS} words, got {len(terms)}")
    return terms


def highlight(text: str, terms: list[str], width: int = 64) -> tuple[str, int]:
    """A snippet of ``text`` around its first match with every word that matches one of
    ``terms`` (see :func:`words`) wrapped in marks, and the number of such words (the scanning
    search's rank)."""
    if not terms:
        return text[:width], 0
    spans = [
        m.span()
        for m in _WRITTEN.finditer(text)
        if any(w.startswith(t) for w in words(m.group()) for t in terms)
    ]
    if not spans:
        return text[:width], 0
    start = max(0, spans[0][0] - width // 4)
    end = min(len(text), start + width)
    out, cursor = [], start
    for first, past in spans:
        if first >= end:
            break
        lo, hi = max(first, start), min(past, end)
        if lo < hi:
            out += [text[cursor:lo], MARK_OPEN, text[lo:hi], MARK_CLOSE]
            cursor = hi
    out.append(text[cursor:end])
    return ("…" if start else "") + "".join(out) + ("…" if end < len(text) else ""), len(spans)


def match_count(text: str, terms: list[str]) -> int:
    """How many words of ``text`` match one of ``terms`` (the scanning search's rank)."""
    return sum(1 for w in words(text) if any(w.startswith(t) for t in terms))


def matches_all(text: str, terms: list[str]) -> bool:
    """Whether every term is a word, or the start of a word, of ``text`` (see :func:`words`):
    the one definition of a match that every backend's results are checked against."""
    found = set(words(text))
    return all(any(w.startswith(t) for w in found) for t in terms)
