"""Sessions found by a caller-chosen external key: get-or-create is atomic on every driver and
across processes, and a key whose creator stopped half-way still resolves."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from runtime_core import CorruptionError, NotFoundError, ValidationError
from runtime_persistence import Sessions, open_store
from runtime_persistence.session._message_records import SESSION_KEY_NS, SessionKey
from runtime_persistence.storage.serialization import EnvelopeSerializer
from runtime_persistence.testing import TestStore, open_test_store, store_fixture

key_store = store_fixture(modes=("sync", "async"))


@pytest.fixture
def sessions(key_store: TestStore) -> Sessions:
    made: Sessions = key_store.make(Sessions)
    return made


def test_the_first_call_creates_and_later_calls_find_the_same_session(sessions: Sessions) -> None:
    first, created = sessions.get_or_create("conversation-42", "chat", metadata={"user": "ann"})
    assert created
    assert first.name == "chat" and first.metadata == {"user": "ann"}
    again, created_again = sessions.get_or_create("conversation-42", "ignored")
    assert not created_again
    assert again == first
    assert sessions.by_key("conversation-42") == first
    assert sessions.get(first.id) == first


def test_keys_are_case_sensitive_and_of_any_shape(sessions: Sessions) -> None:
    ids = {sessions.get_or_create(key)[0].id for key in ("Chat", "chat", "__start__", "a/b:c d", "ü")}
    assert len(ids) == 5


def test_an_unknown_key_is_not_found_and_bad_keys_are_refused(sessions: Sessions) -> None:
    with pytest.raises(NotFoundError):
        sessions.by_key("nobody")
    for bad in ("", "x\x00y", "k" * 600):
        with pytest.raises(ValidationError):
            sessions.get_or_create(bad)
    with pytest.raises(ValidationError):
        sessions.get_or_create("fine", metadata={"x": object()})
    with pytest.raises(NotFoundError):
        sessions.by_key("fine")


def test_a_key_whose_creator_stopped_before_the_session_record_still_resolves(
    sessions: Sessions, key_store: TestStore
) -> None:
    ser = EnvelopeSerializer()
    orphan_id = "01900000-0000-7000-8000-000000000001"
    key_store.driver.put(
        SESSION_KEY_NS, "half-made", ser.dumps(SessionKey("half-made", orphan_id)), if_absent=True
    )
    found, created = sessions.get_or_create("half-made")
    assert not created and found.id == orphan_id
    assert sessions.get(orphan_id) == found


def test_a_key_record_moved_under_another_key_is_corruption(sessions: Sessions, key_store: TestStore) -> None:
    sessions.get_or_create("victim")
    entry = key_store.driver.get(SESSION_KEY_NS, "victim")
    assert entry is not None
    key_store.driver.put(SESSION_KEY_NS, "thief", entry.value)
    with pytest.raises(CorruptionError):
        sessions.by_key("thief")


def _get_or_create_in_child(url: str, keys: list[str], start: Any, out: Any) -> None:
    try:
        driver = open_store(url)
        try:
            sessions = Sessions(driver)
            start.wait(30)
            out.put({key: sessions.get_or_create(key)[0].id for key in keys})
        finally:
            driver.close()
    except BaseException:  # the parent shows it, instead of waiting for a result that never comes
        import traceback

        out.put(traceback.format_exc())


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "redis"])
def test_processes_racing_on_the_same_keys_all_get_one_session_per_key(backend: str, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    with open_test_store(backend, tmp_path) as store:
        assert store.url is not None
        keys = [f"sdk-session-{i}" for i in range(20)]
        start, out = ctx.Event(), ctx.Queue()
        procs = [
            ctx.Process(target=_get_or_create_in_child, args=(store.url, keys, start, out)) for _ in range(3)
        ]
        for p in procs:
            p.start()
        start.set()
        results = [out.get(timeout=300) for _ in procs]
        failed = [r for r in results if isinstance(r, str)]
        assert not failed, failed[0]
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        sessions = Sessions(store.driver)
        for key in keys:
            assert len({r[key] for r in results}) == 1
            assert sessions.by_key(key).id == results[0][key]
        assert len(sessions.list(limit=100)) == len(keys)


class _ReadsTheKeyMidCreation:
    """A driver that, right after the creator's key record is stored, lets another caller read
    that key (the interleaving two processes racing on one key can produce)."""

    def __init__(self, driver: Any, on_key: Any) -> None:
        self._driver = driver
        self._on_key = on_key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._driver, name)

    def put(self, namespace: str, key: str, value: bytes, **kwargs: Any) -> Any:
        done = self._driver.put(namespace, key, value, **kwargs)
        if namespace == SESSION_KEY_NS and self._on_key is not None:
            on_key, self._on_key = self._on_key, None
            on_key(key)
        return done


def test_a_caller_reading_the_key_mid_creation_neither_breaks_nor_replaces_the_session(
    tmp_path: Path,
) -> None:
    """The creator's call succeeds with its own name and metadata, and the other caller gets that
    same session (it once wrote a bare record under the key's id first, and the creator then
    failed with ConflictError)."""
    driver = open_store(f"sqlite:///{tmp_path / 'k.db'}")
    try:
        other = Sessions(driver)
        seen: list[Any] = []
        creator = Sessions(_ReadsTheKeyMidCreation(driver, lambda key: seen.append(other.get_or_create(key))))
        made, created = creator.get_or_create("conversation-7", "chat", metadata={"user": "ann"})
        assert created and made.name == "chat" and made.metadata == {"user": "ann"}
        [(found, found_created)] = seen
        assert not found_created and found == made
        assert other.by_key("conversation-7") == made
        assert [s.id for s in other.list()] == [made.id]
    finally:
        driver.close()
