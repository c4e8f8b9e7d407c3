"""``scripts/check_unbound_records.py`` (run by ``nox -s arch``): every serializer dumps/loads
call in the packages is bound with ``at=`` unless allowlisted with a reason; a planted unbound call
fails it, and so does an allowlist entry that matches nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.check_unbound_records import ALLOWED, problems  # noqa: E402

CHECKPOINTS = "packages/runtime-persistence/src/runtime_persistence/checkpoint/_async/commits.py"


def test_the_packages_pass() -> None:
    assert problems() == []
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_unbound_records.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _tree(tmp_path: Path, source: str, name: str = "mod.py") -> Path:
    path = tmp_path / "packages" / "pkg" / "src" / "pkg" / name
    path.parent.mkdir(parents=True)
    path.write_text(source)
    return tmp_path


@pytest.mark.parametrize(
    "call",
    [
        "self._ser.dumps(value)",
        "ser.loads(data, Record)",
        "serializer.loads(data, Record, content_addressed=True)",
        "EnvelopeSerializer().dumps(value, None)",
    ],
)
def test_a_planted_unbound_call_fails(tmp_path: Path, call: str) -> None:
    root = _tree(tmp_path, f"def save(self, ser, serializer, value, data, Record):\n    return {call}\n")
    (line,) = problems(root, allowed={})
    assert "pkg/src/pkg/mod.py:2" in line and "without at= in save" in line


def test_bound_calls_and_text_formats_pass(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        "import json, tomllib\n"
        "def f(ser, v, ns, k):\n"
        "    ser.dumps(v, at=(ns, k))\n"
        "    ser.loads(v, dict, at=(ns, k))\n"
        "    json.dumps(v); json.loads(v); tomllib.loads(v)\n",
    )
    assert problems(root, allowed={}) == []


def test_the_allowlist_is_by_file_and_function_and_must_stay_exact(tmp_path: Path) -> None:
    root = _tree(tmp_path, "class Codec:\n    def encode(self, v):\n        return self._ser.dumps(v)\n")
    assert problems(root, allowed={("pkg/mod.py", "Codec.encode"): "content-addressed blob"}) == []
    (other,) = problems(root, allowed={("pkg/mod.py", "Codec.decode"): "reason"})[:1]
    assert "without at= in Codec.encode" in other
    stale = problems(root, allowed={("pkg/mod.py", "Codec.encode"): "x", ("pkg/gone.py", "f"): "y"})
    assert stale == ["ALLOWED entry ('pkg/gone.py', 'f') matches no unbound call any more: remove it"]


def test_removing_at_from_a_real_record_write_is_caught(tmp_path: Path) -> None:
    """The real checkpoint commit code with one ``at=`` removed: the check must fail on it."""
    source = (ROOT / CHECKPOINTS).read_text()
    assert ", at=(" in source
    head, _, tail = source.partition(", at=(")
    depth, i = 1, 0
    while depth:  # drop the at=(...) argument, parentheses balanced
        depth += {"(": 1, ")": -1}.get(tail[i], 0)
        i += 1
    planted = head + tail[i:]
    dest = tmp_path / CHECKPOINTS
    dest.parent.mkdir(parents=True)
    dest.write_text(planted)
    shutil.copy(ROOT / CHECKPOINTS, tmp_path / "original.py")  # outside packages/: not scanned
    found = problems(tmp_path, allowed={k: v for k, v in ALLOWED.items() if "checkpoint/_async" in k[0]})
    assert len(found) == 1 and "checkpoint/_async/commits.py" in found[0]
