"""Confining paths to a workspace root.

A path given by an agent is accepted only if it is relative, has no ``..`` component, does not
start with ``~``, holds no NUL, and resolves (following every symlink that exists, including
symlinked parent directories and dangling links) to the root or somewhere under it. Symlinks that
stay inside the root are allowed. The check is made at call time; tools then open the resolved
path without following a final symlink, so a link swapped in afterwards is not followed. A process
racing the tools by replacing parent directories with symlinks is outside this threat model
(the tools are not a sandbox for hostile local users; run_command in particular runs a program
with the user's rights)."""

from __future__ import annotations

import os
from pathlib import Path

from runtime_core import UnsafeWorkspaceError, ValidationError

__all__ = ["WorkspaceRoot"]

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
        it is not a non-empty string."""
        if not isinstance(path, str):
            raise ValidationError(f"a workspace path must be a string, got {type(path).__name__}")
        if not path:
            raise ValidationError("a workspace path must not be empty (use '.' for the root)")
        if "\x00" in path:
            raise UnsafeWorkspaceError("a workspace path must not contain NUL characters")
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
