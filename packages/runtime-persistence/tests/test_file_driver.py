"""The file driver's own guarantees: the lock file (stale locks broken by dead pid or age, live
ones waited for), refusal of foreign directories, long keys, and durable atomic writes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runtime_core import MAX_KEY_BYTES, Entry, StorageError, ValidationError
from runtime_persistence.storage.drivers.file import FileDriver


def write_lock(driver: FileDriver, *, host: str, pid: int, age: float) -> None:
    (driver.root / "lock").write_text(
        json.dumps({"host": host, "pid": pid, "time": time.time() - age, "token": "someone-else"})
    )


def dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    return int(proc.stdout)


def test_a_lock_held_by_a_dead_process_on_this_host_is_broken(tmp_path: Path) -> None:
    driver = FileDriver(tmp_path / "s", lock_timeout=5)
    write_lock(driver, host=socket.gethostname(), pid=dead_pid(), age=0)
    assert driver.put("ns", "k", b"v") == 1
    assert not (driver.root / "lock").exists()


def test_a_lock_older_than_stale_after_is_broken(tmp_path: Path) -> None:
    driver = FileDriver(tmp_path / "s", lock_timeout=5, stale_after=60)
    write_lock(driver, host="another-host", pid=1, age=120)
    assert driver.put("ns", "k", b"v") == 1


def test_a_live_lock_is_waited_for_and_then_reported(tmp_path: Path) -> None:
    driver = FileDriver(tmp_path / "s", lock_timeout=0.3, stale_after=60)
    write_lock(driver, host="another-host", pid=4242, age=0)
    with pytest.raises(StorageError, match="4242"):
        driver.put("ns", "k", b"v")
    assert driver.get("ns", "k") is None
    write_lock(driver, host=socket.gethostname(), pid=os.getpid(), age=0)
    with pytest.raises(StorageError, match=str(os.getpid())):
        driver.delete("ns", "k")


def test_a_live_lock_released_while_waiting_lets_the_writer_in(tmp_path: Path) -> None:
    driver = FileDriver(tmp_path / "s", lock_timeout=10)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import json, os, socket, sys, time\n"
            f"p = {str(driver.root / 'lock')!r}\n"
            "fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL)\n"
            "os.write(fd, json.dumps({'host': socket.gethostname(), 'pid': os.getpid(), 'time': time.time(), 'token': 't'}).encode())\n"
            "os.close(fd); print('held', flush=True); time.sleep(0.5); os.unlink(p)\n",
        ],
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
    assert driver.put("ns", "k", b"v") == 1
    holder.wait(timeout=10)


def test_an_unreadable_old_lock_is_judged_by_its_age(tmp_path: Path) -> None:
    driver = FileDriver(tmp_path / "s", lock_timeout=5, stale_after=1)
    lock = driver.root / "lock"
    lock.write_bytes(b"")
    old = time.time() - 10
    os.utime(lock, (old, old))
    assert driver.put("ns", "k", b"v") == 1


def test_a_non_empty_foreign_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(ValidationError, match="not a Keepup store"):
        FileDriver(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_a_newer_format_is_refused(tmp_path: Path) -> None:
    FileDriver(tmp_path / "s")
    (tmp_path / "s" / "keepup-store.json").write_text(
        json.dumps({"format": "keepup-file-store", "version": 99})
    )
    with pytest.raises(StorageError, match="newer"):
        FileDriver(tmp_path / "s")


def test_longest_keys_are_split_into_short_file_names(tmp_path: Path) -> None:
    driver = FileDriver(tmp_path / "s")
    keys = ["x" * MAX_KEY_BYTES, "x" * 120, "x" * 121, "x" * 240, "x" * 119 + "y"]
    for k in keys:
        driver.put("ns", k, k.encode())
    for path in (tmp_path / "s" / "kv").rglob("*"):
        assert len(path.name) <= 255
    assert [e.key for e in driver.scan("ns")] == sorted(keys)
    assert [e.key for e in driver.scan("ns", prefix="x" * 120)] == sorted(
        k for k in keys if k.startswith("x" * 120)
    )
    assert driver.get("ns", keys[0]) == Entry(keys[0], keys[0].encode(), 1)


def test_a_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    driver = FileDriver(tmp_path / "s")
    driver.put("ns", "k", b"v")
    driver.put_blob_stream(iter([b"a", b"b"]))
    assert list((tmp_path / "s" / "tmp").iterdir()) == []


def test_a_failed_blob_stream_leaves_nothing_behind(tmp_path: Path) -> None:
    driver = FileDriver(tmp_path / "s")

    def broken():  # type: ignore[no-untyped-def]
        yield b"part"
        raise OSError("source went away")

    with pytest.raises(OSError):
        driver.put_blob_stream(broken())
    assert list((tmp_path / "s" / "tmp").iterdir()) == [] and list(driver.list_blobs()) == []


def test_destroy_removes_the_store(tmp_path: Path) -> None:
    driver = FileDriver(tmp_path / "s")
    driver.put("ns", "k", b"v")
    driver.destroy()
    assert not (tmp_path / "s").exists()
