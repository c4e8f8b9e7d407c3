"""Portable backups of every store (memory, files, SQLite, PostgreSQL, MySQL, Redis): a round trip
that brings back every namespace, entry and blob; a tampered, truncated or cut file refused with
CorruptionError before anything is written; a non-empty target refused unless forced; an
interrupted restore finished by running it again; the fallback to the previous good backup; and
the read snapshot that makes a server backup one moment of the store."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from runtime_core import ConflictError, CorruptionError, Driver, NotFoundError, ValidationError
from runtime_persistence import Checkpoints, Tasks
from runtime_persistence.storage._backup_stream import BACKUP_MAGIC
from runtime_persistence.storage.backup import (
    RESTORE_NS,
    BackupDamagedError,
    backup_store,
    list_store_backups,
    restore_newest,
    restore_store,
    verify_backup,
    write_backup,
)
from runtime_persistence.storage.drivers.memory import MemoryDriver
from runtime_persistence.testing import TestStore, open_test_store, store_fixture

DRIVERS = ("memory", "file", "sqlite", "postgres", "mysql", "redis")
store = store_fixture(*DRIVERS)
BIG = bytes(range(256)) * (5 << 12)  # 5 MiB: several 1 MiB pieces


def _fill(driver: Driver) -> dict[str, Any]:
    tasks = Tasks(driver)
    root = tasks.create("root", description="d" * 3000)
    child = tasks.create("child", parent_id=root.id)
    tasks.log(child.id, "a line")
    cps = Checkpoints(driver)
    thread = cps.create_thread("t")
    cps.save(thread.id, {"messages": [f"m{i}" for i in range(400)]})
    driver.put_blob(BIG)
    driver.put_blob(b"")
    driver.put("odd.ns", "ключ/é 😀", b"\x00raw bytes, not an envelope")
    return {"root": root.id, "child": child.id, "thread": thread.id}


def _everything(driver: Driver) -> dict[str, Any]:
    names = list(driver.namespaces())  # type: ignore[attr-defined]
    return {
        "entries": {ns: [(e.key, e.value) for e in driver.scan(ns)] for ns in names if ns != RESTORE_NS},
        "blobs": {b.digest: driver.get_blob(b.digest) for b in driver.list_blobs()},
    }


@pytest.fixture
def target(store: TestStore, tmp_path: Path) -> Iterator[Driver]:
    """A second empty store of the same kind."""
    with open_test_store(store.name, tmp_path / "target") as other:
        yield other.driver


def test_a_backup_restores_every_namespace_entry_and_blob(
    store: TestStore, target: Driver, tmp_path: Path
) -> None:
    ids = _fill(store.driver)
    info = backup_store(store.driver, tmp_path / "backups")
    assert info.verified is not None and info.verified.ok and info.verified.blobs == 2
    assert Path(info.path).stat().st_mode & 0o077 == 0
    assert list_store_backups(store.driver.url, tmp_path / "backups")[0].path == info.path
    report = restore_store(info.path, target)
    assert report.entries == info.verified.records and report.blobs == 2 and not report.resumed
    assert _everything(target) == _everything(store.driver)
    tasks = Tasks(target)
    assert [t.id for t in tasks.roots()] == [ids["root"]]
    assert [n.task.title for n in tasks.tree()] == ["root", "child"]
    assert [line.message for line in tasks.logs(ids["child"])] == ["a line"]
    assert Checkpoints(target).latest(ids["thread"]).state["messages"][399] == "m399"
    assert target.get(RESTORE_NS, "in-progress") is None
    snapshot = write_backup(store.driver, tmp_path / "again.kbak")["snapshot"]
    assert snapshot == (store.name in ("memory", "sqlite", "postgres", "mysql"))


def test_namespaces_lists_the_namespaces_that_hold_keys(store: TestStore) -> None:
    driver = store.driver
    assert list(driver.namespaces()) == []  # type: ignore[attr-defined]
    driver.put("b.two", "k", b"1")
    driver.put("a", "k", b"1")
    driver.put("gone", "k", b"1")
    driver.delete("gone", "k")
    assert [n for n in driver.namespaces() if n != "gone"] == ["a", "b.two"]  # type: ignore[attr-defined]


def test_restore_refuses_a_store_that_holds_data_unless_forced(
    store: TestStore, target: Driver, tmp_path: Path
) -> None:
    _fill(store.driver)
    path = tmp_path / "one.kbak"
    write_backup(store.driver, path)
    target.put("mine", "keep", b"mine")
    target.put("odd.ns", "ключ/é 😀", b"older")
    with pytest.raises(ConflictError, match="not empty"):
        restore_store(path, target)
    assert [e.key for e in target.scan("task")] == []
    restore_store(path, target, force=True)
    assert target.get("mine", "keep") is not None  # other keys are kept
    found = target.get("odd.ns", "ключ/é 😀")
    assert found is not None and found.value == b"\x00raw bytes, not an envelope"


def _frames(data: bytes) -> list[tuple[int, int, bytes]]:
    """(offset, length, kind) of each frame of a backup file's bytes."""
    out = []
    at = len(BACKUP_MAGIC)
    while at < len(data):
        kind, size = struct.unpack(">cI", data[at : at + 5])
        out.append((at, 5 + size + 16, kind))
        at += 5 + size + 16
    return out


@pytest.mark.parametrize("damage", ["flip", "truncate", "drop-frame", "reframed", "not-a-backup"])
def test_a_damaged_backup_is_refused_and_nothing_is_written(
    store: TestStore, target: Driver, tmp_path: Path, damage: str
) -> None:
    _fill(store.driver)
    path = tmp_path / "b.kbak"
    write_backup(store.driver, path)
    data = bytearray(path.read_bytes())
    frames = _frames(bytes(data))
    entries = [(at, n) for at, n, kind in frames if kind == b"E"]
    if damage == "flip":
        at, n = entries[len(entries) // 2]
        data[at + n // 2] ^= 0x01
        expected = "checksum"
    elif damage == "truncate":
        data = data[: len(data) - 40]
        expected = "truncated"
    elif damage == "drop-frame":  # a whole, intact frame removed: only the trailer can tell
        at, n = entries[0]
        del data[at : at + n]
        expected = "trailer"
    elif damage == "reframed":  # a value changed and its frame's checksum made right again
        at, n = entries[-1]
        head = bytes(data[at : at + 5])
        items = msgspec.msgpack.decode(bytes(data[at + 5 : at + n - 16]))
        items[0][2] = items[0][2] + b"!"
        payload = msgspec.msgpack.encode(items)
        head = struct.pack(">cI", b"E", len(payload))
        data[at : at + n] = head + payload + hashlib.blake2b(head + payload, digest_size=16).digest()
        expected = "digest does not match the frames"
    else:
        data = bytearray(b"SQLite format 3\x00" + bytes(data[16:]))
        expected = "not a Keepup backup"
    path.write_bytes(bytes(data))
    report = verify_backup(path)
    assert not report.ok and expected in report.problems["file"]
    with pytest.raises(CorruptionError, match=expected):
        restore_store(path, target)
    assert list(target.namespaces()) == []  # type: ignore[attr-defined]
    assert list(target.list_blobs()) == []


def test_an_interrupted_restore_is_finished_by_running_it_again(
    store: TestStore, target: Driver, tmp_path: Path
) -> None:
    _fill(store.driver)
    path = tmp_path / "b.kbak"
    write_backup(store.driver, path)
    calls = {"n": 0}
    real_batch = target.batch

    class Stop(Exception):
        pass

    def failing_batch(ops: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise Stop
        return real_batch(ops)

    half = _Wrapper(target, batch=failing_batch)
    small = pytest.MonkeyPatch()
    small.setattr("runtime_persistence.storage.backup._BATCH_OPS", 3)
    try:
        with pytest.raises(Stop):
            restore_store(path, half)  # type: ignore[arg-type]
    finally:
        small.undo()
    assert target.get(RESTORE_NS, "in-progress") is not None
    report = restore_store(path, target)  # the marker makes it count as empty
    assert report.resumed
    assert _everything(target) == _everything(store.driver)


class _Wrapper:
    """The target driver with one method replaced (a crash in the middle of a restore)."""

    def __init__(self, inner: Driver, **methods: Any) -> None:
        self._inner = inner
        self._methods = methods

    def __getattr__(self, name: str) -> Any:
        return self._methods.get(name) or getattr(self._inner, name)


def test_restore_newest_falls_back_to_the_previous_good_backup(tmp_path: Path) -> None:
    source = MemoryDriver()
    _fill(source)
    older = backup_store(source, tmp_path)
    source.put("later", "k", b"newer write")
    newer = backup_store(source, tmp_path)
    assert [b.path for b in list_store_backups(source.url, tmp_path)] == [newer.path, older.path]
    with open(newer.path, "r+b") as fh:
        fh.seek(200)
        byte = fh.read(1)
        fh.seek(200)
        fh.write(bytes([byte[0] ^ 0xFF]))
    target = MemoryDriver()
    report = restore_newest(
        [b.path for b in list_store_backups(source.url, tmp_path)], lambda p: restore_store(p, target)
    )
    assert report.backup == older.path
    assert list(report.skipped) == [newer.path] and "checksum" in report.skipped[newer.path]
    assert target.get("later", "k") is None  # the older backup lacks the newer write, and says so
    with pytest.raises(NotFoundError, match="no backup passed verification"):
        restore_newest([newer.path], lambda p: restore_store(p, MemoryDriver()))
    with pytest.raises(NotFoundError, match="there is no backup"):
        restore_newest([], lambda p: restore_store(p, MemoryDriver()))


def test_the_folders_a_backup_makes_are_private(tmp_path: Path) -> None:
    source = MemoryDriver()
    source.put("a", "k", b"v")
    info = backup_store(source, tmp_path / "home" / "backups")
    for folder in (tmp_path / "home", tmp_path / "home" / "backups"):
        assert folder.stat().st_mode & 0o077 == 0, oct(folder.stat().st_mode)
    assert Path(info.path).stat().st_mode & 0o077 == 0
    assert Path(info.path + ".verified").stat().st_mode & 0o077 == 0


def test_keep_removes_the_oldest_backups(tmp_path: Path) -> None:
    source = MemoryDriver()
    source.put("a", "k", b"v")
    made = [backup_store(source, tmp_path, keep=2).path for _ in range(4)]
    assert [b.path for b in list_store_backups(source.url, tmp_path)] == made[:1:-1]
    with pytest.raises(ValidationError):
        backup_store(source, tmp_path, keep=0)


@pytest.mark.parametrize("name", ["postgres", "mysql", "memory"])
def test_a_backup_reads_the_store_at_one_moment(name: str, tmp_path: Path) -> None:
    with open_test_store(name, tmp_path) as opened:
        driver: Any = opened.driver
        driver.put("a", "before", b"1")
        with driver.read_snapshot() as view:
            assert [e.key for e in view.scan("a")] == ["before"]
            driver.put("a", "during", b"2")
            driver.put("b", "during", b"2")
            driver.put_blob(b"written during the backup")
            assert [e.key for e in view.scan("a")] == ["before"]
            assert list(view.namespaces()) == ["a"]
            assert list(view.list_blobs()) == []
        assert [e.key for e in driver.scan("a")] == ["before", "during"]


def test_a_store_that_cannot_list_its_namespaces_is_refused(tmp_path: Path) -> None:
    class NoListing:
        url = "custom://x"

    with pytest.raises(ValidationError, match="cannot list its namespaces"):
        write_backup(NoListing(), tmp_path / "x.kbak")  # type: ignore[arg-type]
    assert not (tmp_path / "x.kbak").exists()


@pytest.mark.slow  # starts SeaweedFS: about 6 s
def test_a_store_with_s3_blobs_is_backed_up_with_its_blobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records on PostgreSQL, blobs on S3 (SeaweedFS): the records driver's snapshot would see
    none of the blobs, so the composite is read without one, and every blob comes from S3."""
    import secrets

    from runtime_persistence import open_store
    from runtime_persistence.testing import isolated_url
    from runtime_persistence.testing.seaweedfs import start_seaweedfs

    with start_seaweedfs(tmp_path / "seaweedfs") as server:
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        url = f"{isolated_url('postgres', tmp_path)}&blobs=s3://keepup-tests/t-{secrets.token_hex(4)}"
        driver = open_store(url)
        try:
            _fill(driver)
            path = tmp_path / "s3.kbak"
            counts = write_backup(driver, path)
            assert counts["blobs"] == 2 and counts["snapshot"] == 0
            target = MemoryDriver()
            restore_store(path, target)
            assert _everything(target) == _everything(driver)
        finally:
            driver.destroy()  # type: ignore[attr-defined]
            driver.close()


def _reframe(path: Path, index: int, kind: bytes, payload: bytes) -> None:
    """Replace frame ``index`` of the file with one of ``kind`` holding ``payload`` (checksum
    made right: only the parts after the checksum can tell)."""
    data = path.read_bytes()
    at, n, _ = _frames(data)[index]
    head = struct.pack(">cI", kind, len(payload))
    frame = head + payload + hashlib.blake2b(head + payload, digest_size=16).digest()
    path.write_bytes(data[:at] + frame + data[at + n :])


@pytest.mark.parametrize(
    "payload",
    [b"\x91" * 200_000 + b"\xc0", b"\x92\xa1k\x01", msgspec.msgpack.encode([["k", True, b"v"]])],
    ids=["deeply-nested", "wrong-shape", "bool-version"],
)
def test_a_crafted_frame_is_corruption_not_a_crash(tmp_path: Path, payload: bytes) -> None:
    source = MemoryDriver()
    source.put("a", "k", b"v")
    path = tmp_path / "b.kbak"
    write_backup(source, path)
    _reframe(path, 2, b"E", payload)  # H, N, E, T
    report = verify_backup(path)
    assert "does not decode" in report.problems["file"]
    with pytest.raises(CorruptionError):
        restore_store(path, MemoryDriver())


def test_a_value_too_large_for_the_target_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    source = MemoryDriver()
    source.put_blob(b"blob")
    source.put("a", "big", b"x" * 2000)
    path = tmp_path / "b.kbak"
    write_backup(source, path)
    small = MemoryDriver(max_value_size=1000)
    with pytest.raises(ValidationError, match="2000 bytes"):
        restore_store(path, small)
    assert list(small.list_blobs()) == [] and list(small.namespaces()) == []


@pytest.mark.slow  # 38 MB through SQLite twice under tracemalloc: about 6 s
def test_backup_verify_and_restore_run_in_bounded_memory(tmp_path: Path) -> None:
    import tracemalloc

    from runtime_persistence.storage.drivers.sqlite import SqliteDriver

    size = 32 << 20
    source = SqliteDriver(tmp_path / "source.db")
    target = SqliteDriver(tmp_path / "target.db")
    try:
        piece = bytes(range(256)) * 4096  # 1 MiB
        source.put_blob_stream(piece for _ in range(size // len(piece)))
        for n in range(300):
            source.put("many", f"k{n:04}", bytes([n % 256]) * 20_000)  # 6 MB of entries
        path = tmp_path / "b.kbak"
        peaks = []
        for step in (
            lambda: write_backup(source, path),
            lambda: verify_backup(path),
            lambda: restore_store(path, target),
        ):
            tracemalloc.start()
            try:
                step()
                peaks.append(tracemalloc.get_traced_memory()[1])
            finally:
                tracemalloc.stop()
        assert max(peaks) < 12 << 20, [p >> 20 for p in peaks]  # MiB, against a 38 MB store
        assert _everything(target) == _everything(source)
    finally:
        source.close()
        target.close()


def test_restore_newest_stops_at_a_damaged_store_instead_of_trying_older_backups(tmp_path: Path) -> None:
    source = MemoryDriver()
    source.put("a", "k", b"v")
    good = backup_store(source, tmp_path)
    tried: list[Path] = []

    def damaged_store(path: Path) -> Any:
        tried.append(path)
        raise CorruptionError("the store itself is damaged")  # not the backup's fault

    with pytest.raises(CorruptionError, match="store itself") as err:
        restore_newest([good.path, good.path], damaged_store)
    assert not isinstance(err.value, BackupDamagedError) and len(tried) == 1
    with pytest.raises(BackupDamagedError):  # a damaged backup has its own type
        Path(good.path).write_bytes(Path(good.path).read_bytes()[:-1])
        restore_store(good.path, MemoryDriver())


@pytest.mark.parametrize("name", ["postgres", "mysql"])
def test_a_checkpoint_saved_during_a_server_backup_leaves_no_dangling_head(name: str, tmp_path: Path) -> None:
    """A writer saves a checkpoint (record, then head) after the backup has read the checkpoint
    records and before it reads the heads: read without a snapshot, the backup would hold a head
    naming a checkpoint it lacks. Read in one snapshot, it holds the thread as it was."""
    from contextlib import contextmanager

    with open_test_store(name, tmp_path) as opened:
        real = opened.driver
        cps = Checkpoints(real)
        thread = cps.create_thread("t")
        saved = [cps.save(thread.id, {"n": n}).id for n in range(3)]

        class View:
            def __init__(self, inner: Any) -> None:
                self._inner = inner

            def __getattr__(self, attr: str) -> Any:
                return getattr(self._inner, attr)

            def scan(self, namespace: str, **kw: Any) -> Iterator[Any]:
                yield from self._inner.scan(namespace, **kw)
                if namespace == "ckpt":
                    saved.append(cps.save(thread.id, {"n": len(saved)}).id)  # the writer, meanwhile

        class Writing:
            url = real.url

            def __getattr__(self, attr: str) -> Any:
                return getattr(real, attr)

            @contextmanager
            def read_snapshot(self) -> Iterator[Any]:
                with real.read_snapshot() as view:  # type: ignore[attr-defined]
                    yield View(view)

        path = tmp_path / "b.kbak"
        write_backup(Writing(), path)  # type: ignore[arg-type]
        assert len(saved) == 4 and cps.latest(thread.id).id == saved[3]  # the write landed
        target = MemoryDriver()
        restore_store(path, target)
        restored = Checkpoints(target)
        assert restored.latest(thread.id).id == saved[2]
        assert [c.id for c in restored.list(thread.id)] == saved[2::-1]


def test_an_encrypted_store_is_backed_up_encrypted_and_restores_readable_with_its_key(tmp_path: Path) -> None:
    from runtime_persistence import EnvelopeSerializer, Keyring

    ser = EnvelopeSerializer(keyring=Keyring({"k1": b"\x07" * 32}))
    source = MemoryDriver()
    task = Tasks(source, serializer=ser).create("a secret title")
    path = tmp_path / "enc.kbak"
    write_backup(source, path)
    assert b"a secret title" not in path.read_bytes()
    assert verify_backup(path).ok  # checked by its frames; the verifier holds no key
    target = MemoryDriver()
    restore_store(path, target)
    assert Tasks(target, serializer=ser).get(task.id).title == "a secret title"
