"""Private file modes for what Keepup stores on the local disk (issue 11, hole 7): other local
users must not read a store. Folders are created 0700 and files 0600 whatever the umask: the
Keepup home, a SQLite store (SQLite gives its ``-wal`` and ``-shm`` files the database's mode), every
file and folder of a file store, and the files the CLI exports. :func:`too_open` and
:func:`make_private` are what ``keepup store doctor`` (and ``--fix``) use on existing paths."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "KEYRING_ENV",
    "KEYRING_FILE",
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "create_private_file",
    "make_private",
    "too_open",
]

KEYRING_ENV = "KEEPUP_KEYRING"
"""The environment variable naming a keyring file (see
:func:`runtime_persistence.storage.encryption.read_keyring_file`)."""

KEYRING_FILE = "keyring.toml"
"""The keyring file's name in the Keepup home, used when neither an option nor
:data:`KEYRING_ENV` names one and the file exists. (Here, not in the encryption module, so a
command finds out whether a store is encrypted without loading the encryption code.)"""

PRIVATE_DIR = 0o700
"""The mode of a folder Keepup creates for its data."""

PRIVATE_FILE = 0o600
"""The mode of a file Keepup creates for its data."""


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist (nothing happens if it does), so
    whatever later opens it by name (SQLite) writes into a private file."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE))


def too_open(paths: Iterable[Path]) -> list[tuple[Path, int]]:
    """The paths among ``paths`` (existing files and folders; symlinks are not followed or
    reported) whose mode gives anything to the group or others, with that mode."""
    found: list[tuple[Path, int]] = []
    for path in paths:
        try:
            st = path.lstat()
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode):
            continue
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            found.append((path, mode))
    return found


def make_private(path: Path) -> None:
    """Take every group and other permission off ``path`` (a file or folder; a symlink is left
    alone): folders end at most 0700, files at most 0600, and the owner keeps what it had."""
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        return
    mode = stat.S_IMODE(st.st_mode) & ~0o077
    os.chmod(path, mode, follow_symlinks=False)
