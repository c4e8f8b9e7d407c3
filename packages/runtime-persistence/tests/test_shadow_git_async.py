"""AsyncShadowGit from async code: the same operations awaited on an event loop, each on a worker
thread, so a snapshot of a real workspace never blocks the loop. (The behavioural suite in
test_shadow_git.py also runs every ``sg`` test through AsyncShadowGit.)"""

from __future__ import annotations

import asyncio
import inspect
import time
from pathlib import Path

import pytest
from runtime_core import (
    FileStatus,
    NotFoundError,
    RestoreReport,
    UnsafeWorkspaceError,
    ValidationError,
)
from runtime_persistence import AsyncShadowGit as ExportedAsyncShadowGit
from runtime_persistence.shadow_git import AsyncShadowGit, ShadowGit
from runtime_persistence.testing import Portal


def write(root: Path, rel: str, text: str = "x\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    return path


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def run_debug(coro: object) -> object:
    """Run ``coro`` on a fresh loop in debug mode (what an application would do)."""
    assert inspect.iscoroutine(coro)
    return asyncio.run(coro, debug=True)


def test_snapshot_restore_and_dry_run_through_asyncio(ws: Path, state: Path) -> None:
    async def scenario() -> None:
        sg = await AsyncShadowGit.open(ws, state_dir=state)
        write(ws, "a.txt", "one\n")
        write(ws, "keep/b.txt", "bee\n")
        first = await sg.snapshot("first")
        assert first is not None and await sg.head() == first
        assert await sg.snapshot("unchanged") is None
        write(ws, "a.txt", "two\n")
        write(ws, "new.txt", "later\n")
        (ws / "keep" / "b.txt").unlink()
        second = await sg.snapshot("second")
        assert second is not None
        assert [i.commit for i in await sg.list()] == [second, first]
        assert (await sg.info(first[:8])).message == "first"
        changes = {c.path: c.status for c in await sg.diff(first, second)}
        assert changes == {
            "a.txt": FileStatus.MODIFIED,
            "keep/b.txt": FileStatus.DELETED,
            "new.txt": FileStatus.ADDED,
        }

        dry = await sg.restore(first, dry_run=True)
        assert isinstance(dry, RestoreReport) and dry.dry_run
        assert (dry.changed, dry.removed, dry.created) == (("a.txt",), ("new.txt",), ("keep/b.txt",))
        assert (ws / "a.txt").read_text() == "two\n" and (ws / "new.txt").exists()  # nothing moved
        assert await sg.head() == second  # and nothing was recorded

        report = await sg.restore(first)
        assert not report.dry_run and report.rescue_commit == second
        assert (ws / "a.txt").read_text() == "one\n"
        assert (ws / "keep" / "b.txt").read_text() == "bee\n"
        assert not (ws / "new.txt").exists()

        await sg.keep(first, "cp-1")
        assert await sg.kept() == {"cp-1": first}
        assert await sg.prune(keep_last=0) == []  # kept, and the newest
        await sg.release("cp-1")  # unkept and not the newest: its snapshot ref goes too
        assert [i.commit for i in await sg.list()] == [second]
        await sg.gc()
        with pytest.raises(NotFoundError):
            await sg.info(first)

    run_debug(scenario())


def test_errors_are_the_same_as_shadow_git(ws: Path, state: Path, tmp_path: Path) -> None:
    async def scenario() -> None:
        with pytest.raises(UnsafeWorkspaceError):
            await AsyncShadowGit.open(ws, state_dir=ws / "state-inside")
        with pytest.raises(ValidationError):
            await AsyncShadowGit.open(tmp_path / "missing", state_dir=state)
        sg = await AsyncShadowGit.open(ws, state_dir=state)
        with pytest.raises(NotFoundError):
            await sg.info("deadbeef")
        with pytest.raises(ValidationError):
            await sg.restore("not a commit")
        with pytest.raises(ValidationError):
            await sg.keep("deadbeef", "../bad")

    run_debug(scenario())


def test_wraps_an_existing_shadow_git_and_shares_its_state(ws: Path, state: Path) -> None:
    shadow = ShadowGit(ws, state_dir=state)
    sg = AsyncShadowGit(shadow)
    assert sg.sync is shadow
    assert (sg.workspace, sg.git_dir) == (shadow.workspace, shadow.git_dir)
    write(ws, "a.txt")
    commit = run_debug(sg.snapshot())
    assert shadow.head() == commit
    assert sg.last_scan is shadow.last_scan and sg.last_scan.files == 1
    with pytest.raises(TypeError):
        AsyncShadowGit(object())  # type: ignore[arg-type]
    assert ExportedAsyncShadowGit is AsyncShadowGit


_NOTIFICATIONS = frozenset({"paths_changed", "tree_changed"})
"""What the workspace tools tell a repository (runtime_core.ChangedPaths): no I/O, never awaited."""


def test_every_public_operation_of_shadow_git_is_awaitable_with_the_same_signature() -> None:
    public = {n for n in vars(ShadowGit) if not n.startswith("_")}
    for base in ShadowGit.__mro__[1:]:
        public |= {n for n in vars(base) if not n.startswith("_")}
    assert public  # snapshot, head, list, info, diff, restore, keep, release, kept, prune, gc, ...
    for name in sorted(public):
        member = inspect.getattr_static(ShadowGit, name)
        twin = inspect.getattr_static(AsyncShadowGit, name)
        if isinstance(member, property):
            assert isinstance(twin, property), name
            continue
        if name in _NOTIFICATIONS:  # no I/O: plain calls in both (the tools are sync code)
            assert not inspect.iscoroutinefunction(twin), name
            assert inspect.signature(twin) == inspect.signature(member), name
            continue
        assert inspect.iscoroutinefunction(twin), name
        assert inspect.signature(twin) == inspect.signature(member), name
        assert twin.__doc__ == member.__doc__, name
    assert inspect.iscoroutinefunction(AsyncShadowGit.open)
    assert list(inspect.signature(AsyncShadowGit.open).parameters) == list(
        inspect.signature(ShadowGit).parameters
    )


def test_a_snapshot_of_a_workspace_never_blocks_the_loop(ws: Path, state: Path) -> None:
    slow_callback = 0.05
    with open(ws / "big.bin", "wb") as fh:  # sparse: costs no disk, but git hashes every byte
        fh.truncate(48 << 20)
    for i in range(400):
        write(ws, f"src/pkg{i % 20}/mod{i}.py", f"value = {i}\n")
    portal = Portal(slow_callback=slow_callback)
    try:

        async def scenario() -> tuple[float, float, str | None]:
            loop = asyncio.get_running_loop()
            assert loop.get_debug() and loop.slow_callback_duration == slow_callback
            sg = await AsyncShadowGit.open(ws, state_dir=state, max_file_size=1 << 30)
            ticking = True
            longest_gap = 0.0

            async def heartbeat() -> None:
                nonlocal longest_gap
                last = time.monotonic()
                while ticking:
                    await asyncio.sleep(0.002)
                    now = time.monotonic()
                    longest_gap = max(longest_gap, now - last)
                    last = now

            beat = asyncio.create_task(heartbeat())
            await asyncio.sleep(0)
            started = time.monotonic()
            commit = await sg.snapshot("under the loop")
            took = time.monotonic() - started
            ticking = False
            await beat
            return took, longest_gap, commit

        took, longest_gap, commit = portal.call(scenario())
        assert commit is not None
        # the snapshot is long enough that running it on the loop would have been caught
        assert took > 5 * slow_callback, f"the snapshot took only {took:.3f}s: the test proves nothing"
        assert portal.slow_callbacks == []
        assert longest_gap < took / 2, f"the loop stalled {longest_gap:.3f}s during a {took:.3f}s snapshot"
    finally:
        portal.close()
