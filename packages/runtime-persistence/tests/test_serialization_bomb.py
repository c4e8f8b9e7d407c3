"""Decompression bombs (issue 11 hole 3): a small stored record whose zstd frame declares or
expands to gigabytes must be refused with CorruptionError, and decoding it must stay within a
bounded amount of memory, whatever the frame header says. Peak memory is measured in a
subprocess (resource.getrusage), never with timings."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from runtime_core import CorruptionError, ValidationError
from runtime_persistence.storage.serialization import (
    _HEADER,
    _LEN,
    COMPRESSION_ZSTD,
    DEFAULT_MAX_RECORD_SIZE,
    FORMAT_UNBOUND,
    EnvelopeSerializer,
    _checksum,
    loads,
)

zstandard = pytest.importorskip("zstandard")

_GIB = 1 << 30
_MIB = 1 << 20


def _zstd_frame(size: int, *, declare: bool) -> bytes:
    """A zstd frame of ``size`` zero bytes, streamed so building it needs little memory."""
    out = io.BytesIO()
    cctx = zstandard.ZstdCompressor(level=1, write_content_size=declare)
    chunk = bytes(4 * _MIB)
    with cctx.stream_writer(out, size=size if declare else -1, closefd=False) as writer:
        for _ in range(size // len(chunk)):
            writer.write(chunk)
    return out.getvalue()


def _envelope(payload: bytes) -> bytes:
    """A well-formed, correctly checksummed envelope around a forged compressed payload: what
    anyone who can write to the store can produce (the checksum is not a secret)."""
    header = _HEADER.pack(b"KU", FORMAT_UNBOUND, 1, COMPRESSION_ZSTD, 0, 0)
    body = header + _LEN.pack(len(payload)) + payload
    return body + _checksum(body)


@pytest.fixture(scope="module", params=["declared", "undeclared"])
def bomb(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    record = _envelope(_zstd_frame(_GIB, declare=request.param == "declared"))
    assert len(record) < 1 * _MIB  # small on disk ...
    path = tmp_path_factory.mktemp("bomb") / f"{request.param}.rec"
    path.write_bytes(record)
    return path


_PROBE = textwrap.dedent(
    """
    import json, resource, sys
    from runtime_persistence.storage.serialization import loads
    data = open(sys.argv[1], "rb").read()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        loads(data)
        error = None
    except Exception as exc:
        error = type(exc).__name__
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"error": error, "growth_kib": peak - base}))
    """
)


def test_a_small_record_expanding_to_a_gibibyte_is_refused_within_bounded_memory(bomb: Path) -> None:
    with pytest.raises(CorruptionError, match="larger than"):
        loads(bomb.read_bytes())
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(bomb)], capture_output=True, text=True, timeout=300, check=True
    )
    seen = json.loads(done.stdout)
    assert seen["error"] == "CorruptionError"
    # the cap is 64 MiB of output; decoding may hold it about twice plus the zstd window
    assert seen["growth_kib"] * 1024 < 4 * DEFAULT_MAX_RECORD_SIZE, seen


def test_the_record_cap_is_configurable_and_holds_on_both_sides() -> None:
    small = EnvelopeSerializer(compression="zstd", max_record_size=_MIB)
    value = "x" * (2 * _MIB)
    with pytest.raises(ValidationError, match="limit"):
        small.dumps(value)  # never stored what cannot be read back
    big = EnvelopeSerializer(compression="zstd").dumps(value)
    assert len(big) < 64 * 1024
    assert loads(big) == value  # the default cap reads it
    with pytest.raises(CorruptionError, match="larger than"):
        small.loads(big)
    with pytest.raises(ValidationError):
        EnvelopeSerializer(max_record_size=0)


def test_truncated_or_trailing_frames_are_corruption() -> None:
    small = EnvelopeSerializer(compression="zstd").dumps({"k": "v" * 5000})
    frame = small[_HEADER.size + _LEN.size : -8]
    assert loads(_envelope(frame)) == {"k": "v" * 5000}
    with pytest.raises(CorruptionError):
        loads(_envelope(frame[:-3]))
    with pytest.raises(CorruptionError):  # a bomb hidden in a second frame after a good one
        loads(_envelope(frame + _zstd_frame(256 * _MIB, declare=False)))
