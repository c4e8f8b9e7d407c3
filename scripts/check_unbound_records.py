"""Fail on a serializer ``dumps``/``loads`` call without ``at=`` outside an explicit allowlist.

Every record Keepup stores is bound to its place: ``dumps(value, at=(namespace, key))`` and
``loads(data, type, at=(namespace, key))`` (issue 11, hole 2; docs/security.md). A call without
``at=`` writes or accepts a record that can be copied under another key unnoticed. The only
unbound calls are the ones below, each with its reason; anything else fails ``nox -s arch``.

The scan parses every ``packages/*/src/**/*.py`` and looks at calls of an attribute named
``dumps`` or ``loads`` (``ser.dumps(...)``, ``self._ser.loads(...)``). Calls on the standard
library's text formats (``json``, ``tomllib``, ``pickle``, ``marshal``) are not serializer calls
and are skipped. An allowlist entry that no longer matches a call is reported too, so the list
stays exact.

Usage: ``python scripts/check_unbound_records.py``; exit status 1 listing every finding."""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ALLOWED", "Finding", "main", "problems", "unbound_calls"]

ROOT = Path(__file__).resolve().parent.parent

_NOT_SERIALIZERS = frozenset({"json", "tomllib", "pickle", "marshal"})

ALLOWED: dict[tuple[str, str], str] = {
    # content-addressed blobs: their name is the SHA-256 of their bytes, checked on every read,
    # and the bound record that names them authenticates them
    ("runtime_persistence/checkpoint/_state.py", "ChannelCodec._dump"): "content-addressed blob",
    ("runtime_persistence/checkpoint/_state.py", "ChannelCodec._dump_unchecked"): "content-addressed blob",
    ("runtime_persistence/checkpoint/_state.py", "ChannelCodec.verified"): "content-addressed blob",
    # export frames: covered by the export file's running end checksum, not stored under a key
    ("runtime_persistence/checkpoint/_export_format.py", "FrameWriter.frame"): "export frame",
    ("runtime_persistence/checkpoint/_export_format.py", "FrameWriter.end"): "export frame",
    ("runtime_persistence/checkpoint/_export_format.py", "FrameReader.frame"): "export frame",
    # a size probe: the encoded bytes are measured and dropped, never stored
    ("runtime_persistence/session/_message_records.py", "split_items.fits"): "size probe",
    # a validation probe: an imported message chunk is encoded to check it, then dropped
    ("runtime_persistence/session/_async/transfer.py", "AsyncSessionsSection.stage"): "validation probe",
    ("runtime_persistence/session/_sync/transfer.py", "SessionsSection.stage"): "validation probe",
}
"""(path below the package's ``src``, qualified function name) -> why the call may be unbound."""


@dataclass(frozen=True, slots=True)
class Finding:
    path: Path
    line: int
    function: str
    call: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: {self.call}(...) without at= in {self.function or '<module>'}: "
            "bind the record to its place (at=(namespace, key)) or add it to ALLOWED in "
            "scripts/check_unbound_records.py with the reason"
        )


def _receiver_root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


class _Scan(ast.NodeVisitor):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.stack: list[str] = []
        self.found: list[Finding] = []

    def _scope(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scope

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if (
            (
                (
                    isinstance(func, ast.Attribute)
                    and func.attr in ("dumps", "loads", "dumps_checked")
                    and _receiver_root(func.value) not in _NOT_SERIALIZERS
                )
                or (isinstance(func, ast.Name) and func.id == "dumps_checked")
            )
            and not any(k.arg == "at" for k in node.keywords)
            and not any(k.arg is None for k in node.keywords)  # **options may carry at=
        ):
            self.found.append(Finding(self.path, node.lineno, ".".join(self.stack), ast.unparse(func)))
        self.generic_visit(node)


def unbound_calls(path: Path) -> list[Finding]:
    """Every serializer dumps/loads call without ``at=`` in the Python file ``path``."""
    scan = _Scan(path)
    scan.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return scan.found


def _source_key(path: Path) -> str:
    parts = path.parts
    return "/".join(parts[parts.index("src") + 1 :]) if "src" in parts else path.as_posix()


def problems(root: Path = ROOT, allowed: dict[tuple[str, str], str] | None = None) -> list[str]:
    """One line per unbound call outside ``allowed`` and per allowlist entry that matches no call."""
    allowed = ALLOWED if allowed is None else allowed
    out: list[str] = []
    used: set[tuple[str, str]] = set()
    for path in sorted(root.glob("packages/*/src/**/*.py")):
        for finding in unbound_calls(path):
            key = (_source_key(path), finding.function)
            if key in allowed:
                used.add(key)
            else:
                out.append(str(Finding(path.relative_to(root), finding.line, finding.function, finding.call)))
    for key in sorted(set(allowed) - used):
        out.append(f"ALLOWED entry {key} matches no unbound call any more: remove it")
    return out


def main() -> int:
    found = problems()
    for line in found:
        print(line, file=sys.stderr)
    if not found:
        print("every serializer dumps/loads call is bound to its place (or allowlisted)")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
