"""Where a workspace's shadow repository lives, and which folders may not be a workspace.

Pure path logic: Keepup's state directory (``state_dir``, ``$KEEPUP_HOME`` or the user's state
directory), the shadow directory of a workspace under it, and the check that refuses the filesystem
root, home directories (and their ancestors) and system folders."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from pathlib import Path

import platformdirs
from runtime_core import UnsafeWorkspaceError, ValidationError

__all__ = ["STATE_ENV", "check_workspace", "keepup_state_dir", "shadow_git_dir"]

STATE_ENV = "KEEPUP_HOME"

# Folders refused as a workspace, with everything under them.
_SYSTEM_TREES = tuple(
    Path(p)
    for p in (
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/proc",
        "/run",
        "/sbin",
        "/sys",
        "/usr",
        "/var/lib",
        "/var/log",
        "/var/cache",
        "/var/run",
        "/System",
        "/Library",
        "/private/etc",
        "/private/var/db",
        "/nix/store",
    )
)
# Folders refused as a workspace themselves (their subfolders are fine).
_PROTECTED_DIRS = tuple(
    Path(p)
    for p in (
        "/",
        "/home",
        "/Users",
        "/root",
        "/tmp",  # noqa: S108
        "/var",
        "/var/tmp",  # noqa: S108
        "/opt",
        "/srv",
        "/mnt",
        "/media",
        "/Volumes",
        "/private",
        "/private/tmp",
        "/private/var",
        "/snap",
        "/nix",
        "/Applications",
    )
)


def keepup_state_dir(state_dir: str | os.PathLike[str] | None = None) -> Path:
    """Keepup's state directory: ``state_dir`` if given, else ``$KEEPUP_HOME``, else the user's
    state directory (``platformdirs.user_state_dir("keepup")``). Not created here."""
    if state_dir is not None:
        return Path(state_dir).expanduser().resolve()
    env = os.environ.get(STATE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return Path(platformdirs.user_state_dir("keepup")).resolve()


def _home_dirs() -> set[Path]:
    homes: set[Path] = set()
    with contextlib.suppress(RuntimeError, KeyError, OSError):
        homes.add(Path.home().resolve())
    if sys.platform != "win32":  # the account's home, even when $HOME points elsewhere
        import pwd

        with contextlib.suppress(KeyError, OSError):
            homes.add(Path(pwd.getpwuid(os.getuid()).pw_dir).resolve())
    return homes


def check_workspace(workspace: str | os.PathLike[str]) -> Path:
    """Resolve ``workspace`` (symlinks included) and return it if it may be snapshotted.

    Raises ValidationError when it is not an existing directory, and UnsafeWorkspaceError when it is
    the filesystem root, a home directory or one of its ancestors, or a system folder."""
    try:
        resolved = Path(workspace).expanduser().resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise ValidationError(f"workspace {os.fspath(workspace)!r} does not exist: {exc}") from None
    if not resolved.is_dir():
        raise ValidationError(f"workspace {str(resolved)!r} is not a directory")
    homes = _home_dirs()
    if resolved in homes:
        raise UnsafeWorkspaceError(
            f"refusing to snapshot the home directory {str(resolved)!r}: choose a project folder inside it"
        )
    if any(home.is_relative_to(resolved) for home in homes):
        raise UnsafeWorkspaceError(
            f"refusing to snapshot {str(resolved)!r}: it contains a home directory; choose a project folder"
        )
    if resolved in _PROTECTED_DIRS or resolved == Path(resolved.anchor):
        raise UnsafeWorkspaceError(
            f"refusing to snapshot the protected folder {str(resolved)!r}: choose a project folder"
        )
    for tree in _SYSTEM_TREES:
        if resolved.is_relative_to(tree):
            raise UnsafeWorkspaceError(
                f"refusing to snapshot {str(resolved)!r}: it is inside the system folder {str(tree)!r}"
            )
    return resolved


def shadow_git_dir(
    workspace: str | os.PathLike[str], state_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Where the shadow repository of ``workspace`` lives (one per resolved workspace path)."""
    resolved = Path(workspace).expanduser().resolve()
    key = hashlib.sha256(os.fsencode(resolved)).hexdigest()[:32]
    return keepup_state_dir(state_dir) / "shadow" / key
