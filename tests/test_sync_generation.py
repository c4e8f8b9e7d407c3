"""The sync twin of every async module is generated (scripts/gen_sync.py), and CI refuses a
generated file that is stale, edited by hand or left without its source."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.gen_sync import pairs, unasync  # noqa: E402


def test_keywords_go_and_async_names_lose_their_prefix() -> None:
    source = (
        "class AsyncThings(_AsyncBase):\n"
        "    async def get(self) -> AsyncIterator[int]:\n"
        "        async with self._lock:\n"
        "            rows = await self._driver.get('ns', 'AsyncNotAName')\n"
        "        async for row in self._scan():\n"
        "            yield [x async for x in row]\n"
        "    async def __aenter__(self) -> AsyncThings:\n"
        "        return self\n"
    )
    assert unasync(source) == (
        "class Things(_Base):\n"
        "    def get(self) -> Iterator[int]:\n"
        "        with self._lock:\n"
        "            rows = self._driver.get('ns', 'NotAName')\n"
        "        for row in self._scan():\n"
        "            yield [x for x in row]\n"
        "    def __enter__(self) -> Things:\n"
        "        return self\n"
    )


def test_a_sync_directive_replaces_or_drops_its_line() -> None:
    source = (
        "import asyncio  # sync: import threading\n"
        "import redis.asyncio as redis  # sync: import redis\n"
        "await asyncio.sleep(0)  # sync: -\n"
        "from x._async.y import AsyncZ\n"
    )
    assert unasync(source) == "import threading\nimport redis\nfrom x._sync.y import Z\n"


def test_words_in_comments_and_names_that_merely_start_with_async_are_kept() -> None:
    source = "asynchronous = 1  # await the Asyncio loop\nAsyncio = asyncio_thing\n"
    assert unasync(source) == source


def test_every_generated_twin_in_the_tree_is_current() -> None:
    assert pairs(ROOT), "no _async/ modules found: the generator has nothing to check"
    done = subprocess.run(
        [sys.executable, "scripts/gen_sync.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "scripts", tree / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    # the whole source tree: ruff sorts imports by which packages it finds first-party
    for src in sorted((ROOT / "packages").glob("*/src")):
        shutil.copytree(src, tree / src.relative_to(ROOT), ignore=shutil.ignore_patterns("__pycache__"))
    return tree


def _check(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/gen_sync.py", "--check", "--root", str(tree)],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_hand_edit_to_a_generated_file_fails_the_check(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    assert _check(tree).returncode == 0
    _, target = next((s, t) for s, t in pairs(tree) if t.name != "__init__.py")
    target.write_text(target.read_text() + "\nEDITED_BY_HAND = True\n")
    done = _check(tree)
    assert done.returncode == 1
    assert "is not the twin of" in done.stderr


def test_a_generated_file_without_its_source_fails_the_check(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    source, _ = next((s, t) for s, t in pairs(tree) if s.name != "__init__.py")
    source.unlink()
    done = _check(tree)
    assert done.returncode == 1
    assert "has no source" in done.stderr
