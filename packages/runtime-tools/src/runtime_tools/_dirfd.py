"""File work relative to directory file descriptors, never through a path resolved again.

The confinement check (``WorkspaceRoot.resolve``) turns a tool's path into a real path with no
symlink in it. Between that check and the change (the before-change hook takes a snapshot
there, which widens the window) another process may swap a folder of that path for a symlink
that leads outside. So nothing here opens the checked path by name: each change starts from a
descriptor of the root and opens every folder of the path with ``O_NOFOLLOW | O_DIRECTORY``
relative to its parent's descriptor (``os.open(name, flags, dir_fd=parent)``), then creates,
renames or unlinks the last name relative to the last folder's descriptor. A symlink met on the
way (which the check would have resolved, so it appeared afterwards) raises
UnsafeWorkspaceError; nothing is written, created or removed outside the root.

Errors come out typed: UnsafeWorkspaceError for a symlink that appeared, ValidationError for a
name the file system refuses as too long, ToolError for everything else the file system says
(not a directory, is a directory, permission denied ...).

What remains (see docs/security.md): a folder already opened here and then *moved* out of the
workspace by its rename keeps its descriptor, so a write can land in it; that needs write access
to the workspace and a destination on the same file system, at the exact moment between two
system calls."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

from runtime_core import UnsafeWorkspaceError, ValidationError

from runtime_tools.specs import ToolError

__all__ = ["open_dir", "open_parent", "read_regular", "unlink_in", "write_atomic"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _os_error(exc: OSError, dir_fd: int, name: str, shown: str) -> Exception:
    """A typed error for ``exc``, raised by an operation on ``name`` inside ``dir_fd``."""
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        with contextlib.suppress(OSError):
            if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                return UnsafeWorkspaceError(
                    f"{shown!r:.200}: {name!r:.100} became a symlink after the workspace check; "
                    "refusing to follow it"
                )
    if exc.errno == errno.ENAMETOOLONG:
        return ValidationError(f"{shown!r:.200}: a name is too long for the file system")
    if exc.errno == errno.ENOTDIR:
        return ToolError(f"{shown!r:.200}: {name!r:.100} is not a directory")
    if exc.errno == errno.EISDIR:
        return ToolError(f"{shown!r:.200} is a directory")
    if exc.errno == errno.ENOENT:
        return ToolError(f"{shown!r:.200} does not exist")
    return ToolError(f"{shown!r:.200}: {exc.strerror or exc}")


def _parts(root: Path, real: Path) -> tuple[str, ...]:
    return real.relative_to(root).parts


@contextlib.contextmanager
def open_parent(root: Path, real: Path, shown: str, *, create: bool = False) -> Iterator[tuple[int, str]]:
    """Yield ``(dir_fd, name)``: a descriptor of the folder holding ``real`` (a checked real
    path strictly under ``root``), reached from the root one ``O_NOFOLLOW`` folder at a time,
    and the last name. With ``create`` missing folders are made on the way."""
    parts = _parts(root, real)
    if not parts:
        raise ToolError(f"{shown!r:.200} is the workspace root")
    fd = os.open(root, _DIR_FLAGS)
    try:
        for name in parts[:-1]:
            try:
                nfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise ToolError(f"the directory of {shown!r:.200} does not exist") from None
                try:
                    os.mkdir(name, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass  # made meanwhile: the open below decides what it is
                except OSError as exc:
                    raise _os_error(exc, fd, name, shown) from None
                try:
                    nfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    raise _os_error(exc, fd, name, shown) from None
            except OSError as exc:
                raise _os_error(exc, fd, name, shown) from None
            os.close(fd)
            fd = nfd
        yield fd, parts[-1]
    finally:
        os.close(fd)


@contextlib.contextmanager
def open_dir(root: Path, real: Path, shown: str) -> Iterator[int]:
    """Yield a descriptor of the folder ``real`` (a checked real path, the root or under it),
    reached from the root one ``O_NOFOLLOW`` folder at a time."""
    if real == root:
        fd = os.open(root, _DIR_FLAGS)
    else:
        with open_parent(root, real, shown) as (dir_fd, name):
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            except OSError as exc:
                raise _os_error(exc, dir_fd, name, shown) from None
    try:
        yield fd
    finally:
        os.close(fd)


def read_regular(root: Path, real: Path, shown: str, *, limit: int, allow_hard_links: bool) -> bytes:
    """The bytes of the regular file at ``real``, at most ``limit`` of them (ToolError beyond).

    Opened ``O_NOFOLLOW | O_NONBLOCK`` relative to its folder's descriptor and checked with
    ``fstat`` on that descriptor: a FIFO, socket or device is refused at once (a FIFO never
    blocks the call), and so is a file with more than one hard link unless
    ``allow_hard_links`` (a hard link made from outside would otherwise expose that file)."""
    if real == root:
        raise ToolError(f"{shown!r:.200} is a directory")
    with open_parent(root, real, shown) as (dir_fd, name):
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            raise _os_error(exc, dir_fd, name, shown) from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ToolError(f"{shown!r:.200} is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise ToolError(f"{shown!r:.200} is not a regular file (a FIFO, socket or device is never read)")
        if st.st_nlink > 1 and not allow_hard_links:
            raise ToolError(
                f"{shown!r:.200} has {st.st_nlink} hard links; files linked from elsewhere are not "
                "read (a hard link can bring in a file from outside the workspace)"
            )
        if st.st_size > limit:
            raise ToolError(f"{shown!r:.200} is {st.st_size} bytes; the limit is {limit}")
        data = fh.read(limit + 1)
        if len(data) > limit:
            raise ToolError(f"{shown!r:.200} is over {limit} bytes; the limit is {limit}")
        return data


def write_atomic(root: Path, real: Path, data: bytes, shown: str, *, create_dirs: bool) -> bool:
    """Replace (or create) the file at ``real`` with ``data`` through a temporary file and a
    rename inside its folder's descriptor, keeping the old mode. Returns True if it was created.
    A symlink found at the last name is refused (the check resolved links, so it is new)."""
    with open_parent(root, real, shown, create=create_dirs) as (dir_fd, name):
        try:
            st: os.stat_result | None = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise _os_error(exc, dir_fd, name, shown) from None
        if st is not None and stat.S_ISLNK(st.st_mode):
            raise UnsafeWorkspaceError(
                f"{shown!r:.200} became a symlink after the workspace check; refusing to replace it"
            )
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise ToolError(f"{shown!r:.200} is a directory")
        tmp = f".keepup-tmp.{uuid.uuid4().hex[:16]}"
        try:
            fd = os.open(tmp, _TMP_FLAGS, 0o666, dir_fd=dir_fd)
        except OSError as exc:
            raise _os_error(exc, dir_fd, name, shown) from None
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                if st is not None:
                    os.fchmod(fh.fileno(), stat.S_IMODE(st.st_mode))
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            if isinstance(exc, OSError):
                raise _os_error(exc, dir_fd, name, shown) from None
            raise
        return st is None


def unlink_in(root: Path, parent_real: Path, name: str, shown: str) -> bool:
    """Remove the entry ``name`` (a file or a symlink, never followed) of the folder
    ``parent_real`` (a checked real path), relative to that folder's descriptor. False if it
    did not exist; ToolError if it is a directory."""
    with open_parent(root, parent_real / name, shown) as (dir_fd, last):
        try:
            st = os.stat(last, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise _os_error(exc, dir_fd, last, shown) from None
        if stat.S_ISDIR(st.st_mode):
            raise ToolError(f"{shown!r:.200} is a directory; delete_file deletes files only")
        try:
            os.unlink(last, dir_fd=dir_fd)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise _os_error(exc, dir_fd, last, shown) from None
        return True
