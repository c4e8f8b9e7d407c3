"""The built-in workspace tools: read, write, edit, list, delete and run a command, confined to a
workspace root. Every tool that changes the workspace calls the before-change hook first."""

from __future__ import annotations

import os
import shlex
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runtime_core import BeforeChangeHook, ChangedPaths, ValidationError

from runtime_tools._dirfd import open_dir, read_regular, unlink_in, write_atomic
from runtime_tools.commands import minimal_environment, run_process
from runtime_tools.confinement import WorkspaceRoot
from runtime_tools.registry import ToolRegistry
from runtime_tools.specs import ToolContext, ToolError, ToolSpec

__all__ = ["WORKSPACE_TOOL_NAMES", "WorkspaceTools"]

WORKSPACE_TOOL_NAMES = ("read_file", "write_file", "edit_file", "list_dir", "delete_file", "run_command")
_CHANGING = frozenset({"write_file", "edit_file", "delete_file", "run_command"})


class WorkspaceTools:
    """Workspace tools bound to one root directory.

    Paths are relative to the root; anything that escapes it (``..``, absolute paths, ``~``, NUL,
    symlinks that lead outside) raises UnsafeWorkspaceError before anything is read or written.
    Changes are made relative to directory descriptors opened from the root with ``O_NOFOLLOW``,
    so a folder swapped for a symlink after the check (even inside the hook) is refused, not
    followed. Reads refuse anything but regular files (a FIFO never blocks a call) and, unless
    ``allow_hard_links``, files with more than one hard link (one made from outside would expose
    that outside file).

    run_command gives a command a minimal environment (runtime_tools.MINIMAL_ENV_NAMES and
    ``LC_*`` from this process), never the rest of it: ``KEEPUP_STORE_URL``, cloud keys and
    tokens stay out. ``env`` sets variables for every command; ``pass_env`` names variables of
    this process to pass through (exact names or fnmatch patterns like ``"AWS_*"``).
    ``before_change(tool, paths)`` is called just before write_file, edit_file, delete_file and
    run_command change anything, with the root-relative paths they will touch ('.' for
    run_command, which may touch anything); if the hook raises, nothing is changed and the error
    propagates (the registry reports it as the call's failure). Calls whose inputs are refused
    (unsafe path, no match for an edit) never reach the hook.

    ``changes`` (a :class:`runtime_core.ChangedPaths`) is told what each call changed, after it
    changed it (also when the change failed part-way): the root-relative path of write_file,
    edit_file and delete_file, and, for run_command, that anything may have changed (before the
    command starts and after it ends). A shadow-git repository listening there may then stage
    only those paths. A report that raises fails the call after its change was made.

    The methods raise on failure; registered in a ToolRegistry they become tool calls whose
    failures are reported in the result instead."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        before_change: BeforeChangeHook | None = None,
        changes: ChangedPaths | None = None,
        max_read_bytes: int = 1024 * 1024,
        command_timeout: float = 60.0,
        max_command_timeout: float = 600.0,
        max_output_bytes: int = 1024 * 1024,
        allow_shell: bool = False,
        env: Mapping[str, str] | None = None,
        pass_env: Sequence[str] = (),
        allow_hard_links: bool = False,
    ) -> None:
        if max_read_bytes < 1 or max_output_bytes < 1:
            raise ValidationError("max_read_bytes and max_output_bytes must be positive")
        if not 0 < command_timeout <= max_command_timeout:
            raise ValidationError("command_timeout must be positive and at most max_command_timeout")
        self.root = WorkspaceRoot(root)
        self.before_change = before_change
        self.changes = changes
        self.max_read_bytes = max_read_bytes
        self.command_timeout = command_timeout
        self.max_command_timeout = max_command_timeout
        self.max_output_bytes = max_output_bytes
        self.allow_shell = allow_shell
        self.env = dict(env) if env is not None else {}
        self.pass_env = tuple(pass_env)
        self.allow_hard_links = allow_hard_links

    # registration

    def specs(self) -> list[ToolSpec]:
        """A ToolSpec for each workspace tool."""
        return [
            ToolSpec.from_function(getattr(self, name), changes_workspace=name in _CHANGING)
            for name in WORKSPACE_TOOL_NAMES
        ]

    def register(self, registry: ToolRegistry) -> list[ToolSpec]:
        """Register every workspace tool in ``registry``; raises ConflictError on a name clash."""
        specs = self.specs()
        for spec in specs:
            registry.register(spec)
        return specs

    # the tools

    def read_file(self, path: str, start_line: int = 1, max_lines: int | None = None) -> str:
        """Read a UTF-8 text file of the workspace.

        Args:
            path: file path relative to the workspace root.
            start_line: first line to return, counting from 1.
            max_lines: how many lines to return at most (all when omitted).
        """
        if start_line < 1 or (max_lines is not None and max_lines < 0):
            raise ValidationError("start_line counts from 1 and max_lines must not be negative")
        real = self.root.resolve(path)
        data = self._read_bytes(real, path)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ToolError(f"{path!r} is not a UTF-8 text file") from None
        if start_line == 1 and max_lines is None:
            return text
        lines = text.splitlines(keepends=True)
        end = None if max_lines is None else start_line - 1 + max_lines
        return "".join(lines[start_line - 1 : end])

    def write_file(self, path: str, content: str, create_dirs: bool = True) -> dict[str, Any]:
        """Write a text file (replace it whole, or create it), atomically.

        Args:
            path: file path relative to the workspace root.
            content: the complete new content of the file.
            create_dirs: create missing parent directories.
        """
        real = self.root.resolve(path)
        if real == self.root.path or real.is_dir():
            raise ToolError(f"{path!r} is a directory")
        parent = real.parent
        while parent != self.root.path and not os.path.lexists(parent):
            parent = parent.parent
        if not parent.is_dir():
            raise ToolError(f"{path!r}: {self.root.relative(parent)!r} is not a directory")
        if not real.parent.is_dir() and not create_dirs:
            raise ToolError(f"the directory of {path!r} does not exist (pass create_dirs=true)")
        data = _utf8(content, "content")
        shown = self.root.relative(real)
        self._before_change("write_file", [shown])
        try:
            created = write_atomic(self.root.path, real, data, path, create_dirs=create_dirs)
        finally:
            self._changed([shown])
        return {"path": self.root.relative(real), "bytes": len(data), "created": created}

    def edit_file(self, path: str, old: str, new: str, replace_all: bool = False) -> dict[str, Any]:
        """Replace exact text in a file. Fails if ``old`` is not found, or found more than once
        unless ``replace_all`` is set.

        Args:
            path: file path relative to the workspace root.
            old: the exact text to replace (must not be empty).
            new: the replacement text.
            replace_all: replace every occurrence instead of requiring exactly one.
        """
        if not old:
            raise ValidationError("old must not be empty")
        real = self.root.resolve(path)
        data = self._read_bytes(real, path)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ToolError(f"{path!r} is not a UTF-8 text file") from None
        count = text.count(old)
        if count == 0:
            raise ToolError(f"the text to replace was not found in {path!r}")
        if count > 1 and not replace_all:
            raise ToolError(
                f"the text to replace occurs {count} times in {path!r}; give more context or set replace_all"
            )
        data = _utf8(text.replace(old, new), "new")
        shown = self.root.relative(real)
        self._before_change("edit_file", [shown])
        try:
            write_atomic(self.root.path, real, data, path, create_dirs=False)
        finally:
            self._changed([shown])
        return {"path": self.root.relative(real), "replacements": count}

    def list_dir(self, path: str = ".", recursive: bool = False, max_entries: int = 1000) -> dict[str, Any]:
        """List a directory of the workspace (symlinks are listed, never followed).

        Args:
            path: directory path relative to the workspace root.
            recursive: include the contents of subdirectories.
            max_entries: stop after this many entries.
        """
        if max_entries < 1:
            raise ValidationError("max_entries must be positive")
        real = self.root.resolve(path)
        if not real.is_dir():
            raise ToolError(f"{path!r} is not a directory")
        base = real.relative_to(self.root.path)
        entries: list[dict[str, Any]] = []
        truncated = False
        with open_dir(self.root.path, real, path) as top:
            # fwalk works from descriptors and never follows a symlink, even one swapped in now
            for current, dirs, files, dir_fd in os.fwalk(".", dir_fd=top, follow_symlinks=False):
                dirs.sort()
                for name in [*sorted(dirs), *sorted(files)] if recursive else sorted([*dirs, *files]):
                    if len(entries) >= max_entries:
                        truncated = True
                        break
                    entry = _entry(dir_fd, name, (base / current / name).as_posix())
                    if entry is not None:
                        entries.append(entry)
                if truncated or not recursive:
                    break
        if recursive:
            entries.sort(key=lambda e: str(e["path"]))
        return {"path": self.root.relative(real), "entries": entries, "truncated": truncated}

    def delete_file(self, path: str, missing_ok: bool = False) -> dict[str, Any]:
        """Delete a file (or a symlink, not its target) of the workspace. Directories are refused.

        Args:
            path: file path relative to the workspace root.
            missing_ok: succeed without doing anything when the file does not exist.
        """
        self.root.resolve(path)  # refuses links that lead outside, and every other escape
        parent, _, name = path.rstrip("/").rpartition("/")
        if name in ("", "."):
            raise ToolError(f"{path!r} names a directory")
        parent_real = self.root.resolve(parent or ".")
        named = parent_real / name
        try:
            st = named.lstat()
        except FileNotFoundError:
            if missing_ok:
                return {"path": self.root.relative(named), "deleted": False}
            raise ToolError(f"{path!r} does not exist") from None
        if stat.S_ISDIR(st.st_mode):
            raise ToolError(f"{path!r} is a directory; delete_file deletes files only")
        shown = self.root.relative(named)
        self._before_change("delete_file", [shown])
        try:
            deleted = unlink_in(self.root.path, parent_real, name, path)
        finally:
            self._changed([shown])
        if not deleted and not missing_ok:
            raise ToolError(f"{path!r} does not exist")
        return {"path": self.root.relative(named), "deleted": deleted}

    def run_command(
        self,
        command: list[str] | str,
        cwd: str = ".",
        timeout: float | None = None,
        shell: bool = False,
        stdin: str | None = None,
        context: ToolContext | None = None,
    ) -> dict[str, Any]:
        """Run a program in the workspace and return its exit code and captured output.

        A non-zero exit code is reported, not raised. The command runs without a shell unless
        shell is set and shells are allowed; a timeout kills its whole process group.

        Args:
            command: the program and its arguments (a list, or a string split like a shell would).
            cwd: working directory relative to the workspace root.
            timeout: seconds before the command is killed.
            shell: run the command string through /bin/sh (only if shells are allowed).
            stdin: text given to the command on standard input.
        """
        if shell and not self.allow_shell:
            raise ToolError(
                "running through a shell is disabled for this workspace; pass the command as a list"
            )
        if shell:
            if not isinstance(command, str):
                raise ValidationError("with shell, the command is one string")
            argv: list[str] | str = command
        else:
            argv = shlex.split(command) if isinstance(command, str) else list(command)
            if not argv:
                raise ValidationError("the command is empty")
        real_cwd = self.root.resolve(cwd)
        if not real_cwd.is_dir():
            raise ToolError(f"cwd {cwd!r} is not a directory")
        limit = min(self.command_timeout if timeout is None else timeout, self.max_command_timeout)
        if limit <= 0:
            raise ValidationError("timeout must be positive")
        if context is not None and context.remaining() is not None:
            limit = min(limit, context.remaining() or 0.0)
        self._before_change("run_command", ["."])
        self._changed(None)
        try:
            outcome = run_process(
                argv,
                cwd=str(real_cwd),
                timeout=limit,
                max_output_bytes=self.max_output_bytes,
                shell=shell,
                env=minimal_environment(allow=self.pass_env, extra=self.env),
                stdin=stdin,
            )
        finally:
            self._changed(None)
        if outcome.timed_out:
            raise ToolError(
                f"the command timed out after {limit:g}s; its process group was killed",
                output=outcome.to_plain(),
            )
        return outcome.to_plain()

    # internals

    def _before_change(self, tool: str, paths: Sequence[str]) -> None:
        if self.before_change is not None:
            self.before_change(tool, list(paths))

    def _changed(self, paths: Sequence[str] | None) -> None:
        """Tell ``changes`` what changed (None: anything may have)."""
        if self.changes is None:
            return
        if paths is None:
            self.changes.tree_changed()
        else:
            self.changes.paths_changed(list(paths))

    def _read_bytes(self, real: Path, shown: str) -> bytes:
        return read_regular(
            self.root.path, real, shown, limit=self.max_read_bytes, allow_hard_links=self.allow_hard_links
        )


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{what} holds a lone surrogate: it cannot be written as UTF-8") from None


def _entry(dir_fd: int, name: str, shown: str) -> dict[str, Any] | None:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:  # removed while listing
        return None
    kind = (
        "symlink"
        if stat.S_ISLNK(st.st_mode)
        else "dir"
        if stat.S_ISDIR(st.st_mode)
        else "file"
        if stat.S_ISREG(st.st_mode)
        else "other"
    )
    return {"path": shown, "type": kind, "size": st.st_size}
