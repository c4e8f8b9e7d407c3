"""The writers' lock of the plain-files driver (see :mod:`runtime_persistence.storage.drivers.file`):
the ``lock`` file created in one step with its content, stale locks broken under ``flock`` on
``lock.guard``."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from runtime_core import (
    StorageError,
)

from runtime_persistence.storage.drivers._file_directory import _FileDirectory
from runtime_persistence.storage.private import PRIVATE_FILE


class LockInfo:
    """Who holds a store's lock file, parsed from its JSON content."""

    __slots__ = ("host", "pid", "raw", "time", "token")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        try:
            data = json.loads(raw.decode("utf-8"))
            self.host = str(data["host"])
            self.pid = int(data["pid"])
            self.time = float(data["time"])
            self.token = str(data["token"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            # an unreadable lock (e.g. its writer died before writing it) is judged by age alone
            self.host, self.pid, self.time, self.token = "", 0, 0.0, ""

    def describe(self) -> str:
        when = datetime.fromtimestamp(self.time, UTC).isoformat() if self.time else "an unknown time"
        return f"process {self.pid} on {self.host or 'an unknown host'} since {when}"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _FileLock(_FileDirectory):
    """The store's writer lock, shared by every thread and process."""

    # lock ----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the store's writer lock (this thread and every other process wait)."""
        with self._thread_lock:
            token = self._acquire()
            try:
                yield
            finally:
                self._release(token)

    def _acquire(self) -> str:
        token = secrets.token_hex(8)
        payload = json.dumps({"host": self._host, "pid": os.getpid(), "time": time.time(), "token": token})
        deadline = time.monotonic() + self._lock_timeout
        delay = 0.0005
        # the lock appears with its content in one step (hard link of a written file), so a
        # process killed while taking it never leaves an anonymous lock behind
        staged = self._root / f"lock.{os.getpid()}.{token}.tmp"
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        try:
            os.write(fd, payload.encode())
        finally:
            os.close(fd)
        try:
            return self._acquire_staged(staged, token, deadline, delay)
        finally:
            staged.unlink(missing_ok=True)

    def _acquire_staged(self, staged: Path, token: str, deadline: float, delay: float) -> str:
        while True:
            try:
                os.link(staged, self._lock_path)
            except FileExistsError:
                pass
            except OSError as exc:
                raise StorageError(f"cannot create the lock file {self._lock_path}: {exc}") from exc
            else:
                return token
            holder = self._break_if_stale()
            if holder is None:
                continue
            if time.monotonic() > deadline:
                raise StorageError(
                    f"the file store {self._root} is locked by {holder.describe()}; waited "
                    f"{self._lock_timeout:g}s (a dead holder's lock is broken automatically; "
                    f"a live one must finish first)"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.02)

    def _stale(self, info: LockInfo, mtime: float) -> bool:
        if info.host == self._host and info.pid and not _pid_alive(info.pid):
            return True
        written = info.time or mtime
        return time.time() - written > self._stale_after

    def _break_if_stale(self) -> LockInfo | None:
        """Return the live holder's info, or None when the lock vanished or was broken here."""
        try:
            raw = self._lock_path.read_bytes()
            mtime = self._lock_path.stat().st_mtime
        except FileNotFoundError:
            return None
        info = LockInfo(raw)
        if not info.token and time.time() - mtime < 1.0:
            return info  # being written right now
        if not self._stale(info, mtime):
            return info
        guard = os.open(self._root / "lock.guard", os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        try:
            fcntl.flock(guard, fcntl.LOCK_EX)
            try:
                if self._lock_path.read_bytes() == raw:  # still the same stale holder
                    self._lock_path.unlink()
            except FileNotFoundError:
                pass
            finally:
                fcntl.flock(guard, fcntl.LOCK_UN)
        finally:
            os.close(guard)
        return None

    def _release(self, token: str) -> None:
        try:
            info = LockInfo(self._lock_path.read_bytes())
        except FileNotFoundError:
            info = None
        if info is None or info.token != token:
            raise StorageError(
                f"the lock of {self._root} was broken while this process held it (held longer than "
                f"stale_after={self._stale_after:g}s?); the last write may have raced another writer"
            )
        self._lock_path.unlink()
