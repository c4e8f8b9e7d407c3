"""The base of the session repositories (sessions, runs, tasks, events), written once as async
code: reading a record by id, changing it by compare-and-set with an optional status index, and
walking an index page by page. The sync base is generated from it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from enum import Enum
from typing import ClassVar, Generic, Protocol, TypeVar, cast

from runtime_core import (
    AsyncDriver,
    Clock,
    ConflictError,
    CorruptionError,
    NotFoundError,
    Serializer,
    SystemClock,
    validate_id,
)

from runtime_persistence.session._records import MARK, MAX_TRIES
from runtime_persistence.storage.serialization import EnvelopeSerializer

__all__ = ["AsyncRepository", "Unchanged"]

R = TypeVar("R")


class _Stated(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def status(self) -> Enum: ...


class Unchanged(Exception):
    """Raised inside a change function to leave the record as it is."""


class AsyncRepository(Generic[R]):
    """Records of type ``_record`` in namespace ``_ns``, keyed by id (``_what`` names one in
    errors). A subclass whose records have an ``id`` and a ``status`` keeps a status index
    (``{status}/{id}`` in ``_status_ns``) by setting ``_status_ns``.

    ``clock`` is injectable so time can be tested without sleeping; every write is as durable as
    the driver (durable by default) when the call returns."""

    _record: type[R]
    _ns: ClassVar[str]
    _what: ClassVar[str]
    _status_ns: ClassVar[str] = ""

    def __init__(
        self, driver: AsyncDriver, *, clock: Clock | None = None, serializer: Serializer | None = None
    ) -> None:
        self._driver = driver
        self._clock: Clock = clock or SystemClock()
        self._ser: Serializer = serializer or EnvelopeSerializer()

    def _index_entry(self, record: R) -> str:
        """The key of ``record`` in the status index."""
        stated = cast(_Stated, record)
        return f"{stated.status.value}/{stated.id}"

    def _index_key(self, record: R) -> str | None:
        """The key of ``record`` in the status index (None: this repository keeps none)."""
        return self._index_entry(record) if self._status_ns else None

    async def _read(self, record_id: str, what: str = "") -> tuple[R, int]:
        """The record and its version. ValidationError for a malformed id, NotFoundError."""
        validate_id(record_id, what or f"{self._what} id")
        entry = await self._driver.get(self._ns, record_id)
        if entry is None:
            raise NotFoundError(f"{self._what} {record_id} not found")
        return self._decode(record_id, entry.value), entry.version

    def _decode(self, record_id: str, data: bytes) -> R:
        """The record stored under ``record_id``: bound to it and carrying that id
        (CorruptionError for a record copied or moved there from another key)."""
        record = self._from_stored(data, (self._ns, record_id))
        own = getattr(record, "id", record_id)
        if own != record_id:
            raise CorruptionError(
                f"the {self._what} record at {record_id!r:.200} is {own!r:.200}: it was copied or "
                "moved from another key"
            )
        return record

    def _from_stored(self, data: bytes, at: tuple[str, str]) -> R:
        """The record ``data`` (read from ``at``) holds, as the current record type: a repository
        whose records have older formats overrides this to migrate them forward. CorruptionError
        for damaged bytes or a record bound to another place."""
        record: R = self._ser.loads(data, self._record, at=at)
        return record

    async def _change(self, record_id: str, fn: Callable[[R], R]) -> tuple[R, bool]:
        """Apply ``fn`` to the current record by compare-and-set, re-reading on each lost race
        (``fn`` raises :class:`Unchanged` to leave it). Returns the record as stored and whether
        this call changed it. A status index entry is added before the record moves and the old
        one removed after, so readers (who check the record) never miss it."""
        for _ in range(MAX_TRIES):
            current, version = await self._read(record_id)
            try:
                new = fn(current)
            except Unchanged:
                return current, False
            old_key, new_key = self._index_key(current), self._index_key(new)
            if new_key is not None and new_key != old_key:
                await self._driver.put(self._status_ns, new_key, MARK)
            try:
                await self._driver.put(
                    self._ns, record_id, self._ser.dumps(new, at=(self._ns, record_id)), if_version=version
                )
            except ConflictError:
                continue
            if old_key is not None and new_key != old_key:
                await self._driver.delete(self._status_ns, old_key)
            return new, True
        raise ConflictError(f"{self._what} {record_id} kept changing; try again")

    async def _candidates(
        self, ns: str, prefix: str, page: int, *, reverse: bool, cursor: str | None = None
    ) -> AsyncIterator[R]:
        """The records in ``ns`` (this repository's namespace) or named by an index in ``ns``
        (the rest of the key after ``prefix`` is the id; an entry whose record is missing is
        skipped), in key order after ``cursor`` (before it when ``reverse``), page by page (``page`` + 1 first, doubling up
        to 1024). Each page is read whole, so no driver cursor stays open between yields."""
        page = page + 1
        while True:
            scan = self._driver.scan(
                ns,
                prefix=prefix,
                after=None if reverse else cursor,
                before=cursor if reverse else None,
                reverse=reverse,
                limit=page,
            )
            entries = [entry async for entry in scan]
            for entry in entries:
                if ns == self._ns:
                    yield self._decode(entry.key, entry.value)
                    continue
                record_id = entry.key[len(prefix) :]
                found = await self._driver.get(self._ns, record_id)
                if found is not None:
                    yield self._decode(record_id, found.value)
            if len(entries) < page:
                return
            cursor = entries[-1].key
            page = min(page * 2, 1024)
