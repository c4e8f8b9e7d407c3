"""Running a command in the workspace: no shell by default, a minimal environment, a time limit
that kills the whole process group, and captured output capped in size.

The environment: a command sees only :data:`MINIMAL_ENV_NAMES` and ``LC_*`` from the caller's
environment, never the rest (``KEEPUP_STORE_URL`` with its password, cloud keys, tokens), plus
what the caller explicitly passes or allows (see :func:`minimal_environment`)."""

from __future__ import annotations

import contextlib
import fnmatch
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

__all__ = ["MINIMAL_ENV_NAMES", "CommandOutcome", "minimal_environment", "run_process"]

MINIMAL_ENV_NAMES = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TERM", "TMPDIR", "TZ")
"""The caller's variables every command gets (when set), with every ``LC_*`` locale variable:
enough to find programs, a home, a locale, a terminal type and a temporary folder, nothing that
usually holds a secret."""

_DRAIN_GRACE = 1.0  # seconds to wait for pipes to close after the main process exited


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """What a command did: exit code (None if it was killed before exiting on its own; negative
    for a signal), captured output (first ``max_output_bytes`` of each stream, decoded as UTF-8
    with replacement), how many bytes were dropped, and whether the time limit killed it."""

    exit_code: int | None
    stdout: str
    stderr: str
    stdout_dropped: int
    stderr_dropped: int
    timed_out: bool
    duration_ms: float

    def to_plain(self) -> dict[str, Any]:
        """The outcome as a tool output (plain data)."""
        return {
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "stdout_truncated": self.stdout_dropped > 0,
            "stderr_truncated": self.stderr_dropped > 0,
            "stdout_dropped_bytes": self.stdout_dropped,
            "stderr_dropped_bytes": self.stderr_dropped,
            "timed_out": self.timed_out,
        }  # no duration: the call result has it, and the output of a deterministic command stays deterministic


class _Capture(threading.Thread):
    """Reads a pipe to its end, keeping the first ``cap`` bytes and counting the rest."""

    def __init__(self, stream: IO[bytes], cap: int) -> None:
        super().__init__(name="keepup-capture", daemon=True)
        self._stream = stream
        self._cap = cap
        self.kept = bytearray()
        self.dropped = 0

    def run(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while True:
                chunk = (
                    self._stream.read1(65536) if hasattr(self._stream, "read1") else self._stream.read(65536)
                )
                if not chunk:
                    break
                room = self._cap - len(self.kept)
                if room > 0:
                    self.kept += chunk[:room]
                self.dropped += max(0, len(chunk) - max(room, 0))


def minimal_environment(
    *,
    allow: Iterable[str] = (),
    extra: Mapping[str, str] | None = None,
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment a command runs with.

    From ``source`` (default ``os.environ``) it keeps :data:`MINIMAL_ENV_NAMES`, the ``LC_*``
    variables, and the variables whose names match one of ``allow`` (exact names or
    ``fnmatch`` patterns such as ``"AWS_*"``; ``"*"`` passes everything, an explicit choice);
    then sets ``extra``. PATH falls back to ``os.defpath`` when unset."""
    env = os.environ if source is None else source
    patterns = list(allow)
    out: dict[str, str] = {}
    for name, value in env.items():
        if (
            name in MINIMAL_ENV_NAMES
            or name.startswith("LC_")
            or any(fnmatch.fnmatchcase(name, p) for p in patterns)
        ):
            out[name] = value
    out.setdefault("PATH", os.defpath)
    if extra:
        out.update(extra)
    return out


def run_process(
    argv: Sequence[str] | str,
    *,
    cwd: str,
    timeout: float,
    max_output_bytes: int,
    shell: bool = False,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> CommandOutcome:
    """Run ``argv`` in ``cwd`` in a new process group and wait at most ``timeout`` seconds.

    ``env`` is the command's whole environment; without it the command gets
    :func:`minimal_environment` (never the caller's full environment). On timeout the whole
    process group gets SIGKILL (children included). After the main process exits, stray
    children still holding its output pipes get SIGKILL after a short grace, so the call always
    returns. Raises FileNotFoundError/PermissionError if the program cannot start."""
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        shell=shell,  # only when the caller opted in
        env=dict(env) if env is not None else minimal_environment(),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out = _Capture(proc.stdout, max_output_bytes)
    err = _Capture(proc.stderr, max_output_bytes)
    out.start()
    err.start()
    if stdin is not None and proc.stdin is not None:
        with contextlib.suppress(BrokenPipeError, OSError):
            proc.stdin.write(stdin.encode("utf-8"))
        with contextlib.suppress(OSError):
            proc.stdin.close()
    timed_out = False
    try:
        proc.wait(timeout=max(timeout, 0.0))
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid)
        proc.wait()
    deadline = time.monotonic() + _DRAIN_GRACE
    for reader in (out, err):
        reader.join(max(0.0, deadline - time.monotonic()))
    if out.is_alive() or err.is_alive():  # a background child keeps the pipes open
        _kill_group(proc.pid)
        out.join()
        err.join()
    for stream in (proc.stdout, proc.stderr):
        with contextlib.suppress(OSError):
            stream.close()
    return CommandOutcome(
        exit_code=None if timed_out else proc.returncode,
        stdout=bytes(out.kept).decode("utf-8", "replace"),
        stderr=bytes(err.kept).decode("utf-8", "replace"),
        stdout_dropped=out.dropped,
        stderr_dropped=err.dropped,
        timed_out=timed_out,
        duration_ms=(time.monotonic() - started) * 1000,
    )


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
