"""Confining paths to a workspace root.

A path given by an agent is accepted only if it is relative, has no ``..`` component, does not
start with ``~``, holds no NUL, and resolves (following every symlink that exists, including
symlinked parent directories and dangling links) to the root or somewhere under it. Symlinks that
stay inside the root are allowed. The check is made at call time; tools then open the resolved
path one folder at a time from a descriptor of the root with ``O_NOFOLLOW`` (runtime_tools._dirfd),
so a folder or file swapped for a symlink after the check is refused, never followed. run_command
is not confined by this: it runs a program with the user's rights (see docs/security.md)."""

from __future__ import annotations

import os
from pathlib import Path

from runtime_core import UnsafeWorkspaceError, ValidationError

__all__ = ["WorkspaceRoot"]

_NAME_MAX = 255  # bytes in one name (Linux, macOS)
_PATH_MAX = 4096  # bytes in a whole path, its final NUL included (Linux)

_PROTECTED = frozenset(
    {
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/lib",
        "/lib64",
        "/proc",
        "/root",
        "/sbin",
        "/sys",
        "/usr",
        "/var",
    }
)


class WorkspaceRoot:
    """A directory that tool paths are confined to.

    Raises UnsafeWorkspaceError when ``root`` is the filesystem root, the home directory or a
    system folder, and NotADirectoryError-like ValidationError when it is not a directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        real = Path(os.path.realpath(os.fspath(root)))
        if str(real) in _PROTECTED or real == Path(os.path.realpath(Path.home())):
            raise UnsafeWorkspaceError(
                f"refusing {str(real)!r} as a workspace root: it is a protected folder"
            )
        if not real.is_dir():
            raise ValidationError(f"workspace root {str(real)!r} is not a directory")
        self.path = real

    def __repr__(self) -> str:
        return f"WorkspaceRoot({str(self.path)!r})"

    def resolve(self, path: str) -> Path:
        """The real absolute path of ``path`` inside the root.

        Raises UnsafeWorkspaceError if ``path`` is absolute, has a ``..`` component, starts with
        ``~``, contains NUL, or resolves (through symlinks) outside the root; ValidationError if
        it is not a non-empty string, holds a lone surrogate (no file-system name), or has a
        name over 255 bytes or a whole path over 4095 bytes."""
        if not isinstance(path, str):
            raise ValidationError(f"a workspace path must be a string, got {type(path).__name__}")
        if not path:
            raise ValidationError("a workspace path must not be empty (use '.' for the root)")
        if "\x00" in path:
            raise UnsafeWorkspaceError("a workspace path must not contain NUL characters")
        try:
            encoded = os.fsencode(path)
        except UnicodeEncodeError:
            raise ValidationError(
                f"{path!r:.200}: a workspace path must not hold lone surrogates (it has no file-system name)"
            ) from None
        if any(len(name) > _NAME_MAX for name in encoded.split(b"/")):
            raise ValidationError(f"{path!r:.200}: a name is longer than {_NAME_MAX} bytes")
        if len(os.fsencode(self.path)) + 1 + len(encoded) >= _PATH_MAX:
            raise ValidationError(f"{path!r:.200}: the path is longer than {_PATH_MAX - 1} bytes")
        if path.startswith("~"):
            raise UnsafeWorkspaceError(
                f"{path!r:.200}: '~' paths are not allowed; give a path relative to the workspace"
            )
        if path.startswith("/") or os.path.isabs(path):
            raise UnsafeWorkspaceError(
                f"{path!r:.200}: absolute paths are not allowed; give a path relative to the workspace"
            )
        if ".." in path.split("/"):
            raise UnsafeWorkspaceError(f"{path!r:.200}: '..' components are not allowed in workspace paths")
        real = Path(os.path.realpath(self.path / path))
        if real != self.path and not real.is_relative_to(self.path):
            raise UnsafeWorkspaceError(f"{path!r:.200} resolves outside the workspace (through a symlink)")
        return real

    def relative(self, real: Path) -> str:
        """``real`` (an already resolved path inside the root) relative to the root, '.' for the root."""
        rel = real.relative_to(self.path).as_posix()
        return rel or "."
