"""Generate the synchronous twin of every asynchronous module, as psycopg 3 does.

The logic of each repository and server driver is written once, as ``async`` code, in a folder
named ``_async/``; this script writes its blocking twin into the sibling ``_sync/`` folder. CI runs
``python scripts/gen_sync.py --check``, which fails when a generated file is stale, edited by
hand, or left without its source, so the two can never drift apart.

The transformation works on tokens, never on text inside strings or comments:

* ``async def``/``async with``/``async for`` lose ``async``; ``await x`` becomes ``x``;
* a name ``AsyncThing`` (``Async`` then a capital) becomes ``Thing``, ``_AsyncThing`` becomes
  ``_Thing``: so ``AsyncCheckpoints`` -> ``Checkpoints``, ``AsyncIterator`` -> ``Iterator``,
  ``psycopg_pool.AsyncConnectionPool`` -> ``ConnectionPool``, ``AsyncMongoClient`` ->
  ``MongoClient``;
* the names in ``NAMES`` below (dunder methods, ``_async`` module paths, async client libraries);
* a line ending in the comment ``# sync: CODE`` is replaced by ``CODE`` (same indentation), and
  ``# sync: -`` drops the line: for the few places where the two worlds differ by more than a
  keyword (``asyncio.Lock`` against ``threading.Lock``, ``redis.asyncio`` against ``redis``).

In docstrings only ``AsyncThing`` names are rewritten. The result goes through ``ruff`` (import
order, unused imports, formatting), so a generated file passes the same lint as a written one."""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAMES = {
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
    "StopAsyncIteration": "StopIteration",
    "asynccontextmanager": "contextmanager",
    "aclosing": "closing",
    "aclose": "close",
    "anext": "next",
    "aiter": "iter",
    "_async": "_sync",
    "aiomysql": "pymysql",
}
_ASYNC_CLASS = re.compile(r"\b(_?)Async([A-Z]\w*)")
_DIRECTIVE = re.compile(r"#\s*sync:\s*(.*?)\s*$")
HEADER = "# Generated from {source} by scripts/gen_sync.py: edit that file and rerun the script.\n"


def _rename(name: str) -> str:
    if name in NAMES:
        return NAMES[name]
    match = _ASYNC_CLASS.fullmatch(name)
    return f"{match.group(1)}{match.group(2)}" if match else name


def unasync(source: str) -> str:
    """The synchronous twin of the async module text ``source`` (before formatting)."""
    lines = source.splitlines(keepends=True)
    edits: dict[int, list[tuple[int, int, str]]] = {}  # row -> [(col, end, replacement)]
    directives: dict[int, str] = {}
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for i, tok in enumerate(tokens):
        row, col = tok.start
        if tok.type == tokenize.COMMENT:
            match = _DIRECTIVE.match(tok.string)
            if match:
                directives[row] = match.group(1)
        elif tok.type == tokenize.NAME:
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if tok.string == "await" or (
                tok.string == "async" and nxt is not None and nxt.string in ("def", "with", "for")
            ):
                end = tok.end[1]
                if nxt is not None and nxt.start == (row, end + 1):
                    end += 1  # the space before the next token
                edits.setdefault(row, []).append((col, end, ""))
            else:
                renamed = _rename(tok.string)
                if renamed != tok.string:
                    edits.setdefault(row, []).append((col, tok.end[1], renamed))
        elif tok.type == tokenize.STRING and tok.start[0] == tok.end[0]:
            renamed = _ASYNC_CLASS.sub(r"\1\2", tok.string)
            if renamed != tok.string:
                edits.setdefault(row, []).append((col, tok.end[1], renamed))
        elif tok.type == tokenize.STRING:  # a multi-line string: rewrite each of its lines
            for offset in range(tok.end[0] - tok.start[0] + 1):
                r = tok.start[0] + offset
                line = lines[r - 1]
                renamed = _ASYNC_CLASS.sub(r"\1\2", line)
                if renamed != line:
                    lines[r - 1] = renamed
    out: list[str] = []
    for row, line in enumerate(lines, start=1):
        if row in directives:
            code = directives[row]
            if code == "-":
                continue
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}{code}\n")
            continue
        text = line
        for col, end, replacement in sorted(edits.get(row, []), reverse=True):
            text = text[:col] + replacement + text[end:]
        out.append(text)
    return "".join(out)


def _ruff(text: str, filename: Path) -> str:
    """Sort imports, drop the ones only the async code used, and format, as the lint session would."""
    common = ["--stdin-filename", str(filename)]
    for args in (
        ["check", "--fix-only", "--exit-zero", "--select", "I,F401", *common, "-"],
        ["format", *common, "-"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *args], input=text, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"ruff failed on the twin of {filename}:\n{done.stderr}")
        text = done.stdout
    return text


def pairs(root: Path) -> list[tuple[Path, Path]]:
    """Every (async source, sync target) pair under ``root``'s packages."""
    found = []
    for folder in sorted(root.glob("packages/*/src/**/_async")):
        for source in sorted(folder.glob("*.py")):
            found.append((source, folder.parent / "_sync" / source.name))
    return found


def generate(source: Path, target: Path, root: Path) -> str:
    relative = source.relative_to(root).as_posix()
    body = unasync(source.read_text(encoding="utf-8"))
    return _ruff(HEADER.format(source=relative) + body, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a generated file is not current")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository root")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    stale: list[str] = []
    expected: set[Path] = set()
    for source, target in pairs(root):
        expected.add(target)
        text = generate(source, target, root)
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(f"{target.relative_to(root)} is not the twin of {source.relative_to(root)}")
        else:
            target.parent.mkdir(exist_ok=True)
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target.relative_to(root)}")
    for folder in root.glob("packages/*/src/**/_sync"):
        for orphan in sorted(folder.glob("*.py")):
            if orphan not in expected and orphan.name != "__init__.py":
                stale.append(f"{orphan.relative_to(root)} has no source in ../_async/")
    if stale:
        print("generated sync code is not current (run `python scripts/gen_sync.py`):", file=sys.stderr)
        for line in stale:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
