"""Removing files and emptied folders of the workspace relative to directory file descriptors.

Restore plans first (checking that every folder above a path is a real folder), then deletes.
Between the two another process may swap a folder for a symlink that leads outside the workspace;
a delete through the path, resolved again by the kernel, would follow it. So nothing here uses
the path: each operation opens the workspace root, then every folder of the path relative to its
parent's descriptor with ``O_DIRECTORY | O_NOFOLLOW`` (``os.open(name, flags, dir_fd=parent)``),
and unlinks or removes the last name relative to the last folder's descriptor
(``os.unlink(name, dir_fd=fd)``, ``os.rmdir(name, dir_fd=fd)``). A symlink met on the way is not
followed: the operation reports it and changes nothing.

The same idea as ``runtime_tools/_dirfd.py`` (persistence may not import runtime_tools). The
window that remains is the same: a folder already opened here and then *renamed* out of the
workspace keeps its descriptor (see docs/security.md)."""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["Removal", "remove_empty_tree", "remove_file", "write_entry"]

_DIR_FLAGS = (
    os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)
# what opening a symlink (or a non-folder) with O_DIRECTORY | O_NOFOLLOW raises
_NOT_A_FOLDER = (errno.ELOOP, errno.ENOTDIR, getattr(errno, "EMLINK", errno.ELOOP))


class Removal(enum.Enum):
    """What :func:`remove_file` did."""

    REMOVED = "removed"
    MISSING = "missing"  # nothing there (or a folder there): nothing removed
    UNSAFE = "unsafe"  # a folder of the path is no longer a real folder: nothing removed


class _NotAFolder(Exception):
    """A folder of the path became a symlink (or a file) after the plan."""


@contextlib.contextmanager
def _folders(root: Path, parts: Sequence[str]) -> Iterator[list[int]]:
    """Yield descriptors ``[root, parts[0], parts[0]/parts[1], ...]``, each folder opened relative
    to its parent with ``O_NOFOLLOW``. Raises _NotAFolder on a symlink or a file on the way and
    FileNotFoundError when a folder is missing."""
    fds = [os.open(root, _DIR_FLAGS)]
    try:
        for name in parts:
            try:
                fds.append(os.open(name, _DIR_FLAGS, dir_fd=fds[-1]))
            except OSError as exc:
                if exc.errno in _NOT_A_FOLDER:
                    raise _NotAFolder(name) from None
                raise
        yield fds
    finally:
        for fd in fds:
            os.close(fd)


def _prune(fds: Sequence[int], parts: Sequence[str]) -> None:
    """Remove the folders ``parts`` (deepest first) while they are empty; ``fds[i]`` is the
    descriptor of the folder holding ``parts[i]``. ``rmdir`` by name in its parent's descriptor
    never follows a symlink that replaced the folder (it fails with ENOTDIR)."""
    for i in range(len(parts) - 1, -1, -1):
        try:
            os.rmdir(parts[i], dir_fd=fds[i])
        except OSError:
            return


def remove_file(root: Path, rel: str) -> Removal:
    """Unlink the file or symlink ``rel`` (``/``-separated, under ``root``) without following any
    symlink, then remove the folders above it that this left empty (never the root)."""
    parts = rel.split("/")
    try:
        with _folders(root, parts[:-1]) as fds:
            name = parts[-1]
            result = Removal.MISSING
            with contextlib.suppress(FileNotFoundError):
                st = os.stat(name, dir_fd=fds[-1], follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    os.unlink(name, dir_fd=fds[-1])
                    result = Removal.REMOVED
            _prune(fds, parts[:-1])
            return result
    except _NotAFolder:
        return Removal.UNSAFE
    except FileNotFoundError:
        return Removal.MISSING


def _remove_empty_folders(parent_fd: int, name: str) -> None:
    """Remove the folder ``name`` of ``parent_fd`` and its subfolders, children first, as far as
    they are empty. Symlinks are never followed (a symlink in the way stops it)."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError:
        return
    try:
        with os.scandir(fd) as it:
            subfolders = [e.name for e in it if e.is_dir(follow_symlinks=False)]
        for sub in subfolders:
            _remove_empty_folders(fd, sub)
    except OSError:
        pass
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.rmdir(name, dir_fd=parent_fd)


def remove_empty_tree(root: Path, rel: str) -> bool:
    """Remove the folder ``rel`` and its subfolders as far as they are empty, reached without
    following symlinks. False when a folder on the way is no longer a real folder."""
    parts = rel.split("/")
    try:
        with _folders(root, parts[:-1]) as fds:
            _remove_empty_folders(fds[-1], parts[-1])
    except _NotAFolder:
        return False
    except FileNotFoundError:
        pass
    return True


_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


@contextlib.contextmanager
def _folders_made(root: Path, parts: Sequence[str]) -> Iterator[int]:
    """Yield a descriptor of the folder ``parts`` under ``root``, reached one ``O_NOFOLLOW``
    folder at a time and made where missing (mode 0777 less the umask, as git does). Raises
    _NotAFolder on a symlink or a file on the way."""
    fd = os.open(root, _DIR_FLAGS)
    try:
        for name in parts:
            try:
                nfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):  # made meanwhile: the open decides
                    os.mkdir(name, 0o777, dir_fd=fd)
                try:
                    nfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in _NOT_A_FOLDER:
                        raise _NotAFolder(name) from None
                    raise
            except OSError as exc:
                if exc.errno in _NOT_A_FOLDER:
                    raise _NotAFolder(name) from None
                raise
            os.close(fd)
            fd = nfd
        yield fd
    finally:
        os.close(fd)


def write_entry(root: Path, rel: str, mode: int, chunks: Iterator[bytes]) -> bool:
    """Write the tree entry ``rel`` (git ``mode``: 100644, 100755 or 120000) from ``chunks``
    through a temporary name and a rename inside its folder's descriptor; folders on the way are
    reached without following symlinks (and made when missing). A symlink or a folder where the
    entry goes is replaced only when it is a symlink (never followed). False, with nothing
    written, when a folder on the way is no longer a real folder or a folder is in the way."""
    parts = rel.split("/")
    name = parts[-1]
    try:
        with _folders_made(root, parts[:-1]) as fd:
            try:
                if stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                    return False
            except FileNotFoundError:
                pass
            tmp = f".keepup-restore.{os.urandom(8).hex()}"
            try:
                if mode == 0o120000:
                    os.symlink(os.fsdecode(b"".join(chunks)), tmp, dir_fd=fd)
                else:
                    out = os.open(tmp, _TMP_FLAGS, 0o777 if mode == 0o100755 else 0o666, dir_fd=fd)
                    with os.fdopen(out, "wb") as fh:
                        for chunk in chunks:
                            fh.write(chunk)
                        fh.flush()
                        os.fsync(fh.fileno())  # a power loss keeps the old file or the new, never a torn one
                os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=fd)
                raise
            return True
    except _NotAFolder:
        return False
