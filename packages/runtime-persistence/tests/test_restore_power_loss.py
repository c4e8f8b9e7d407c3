"""Shadow-git restore under power loss, in the style of ALICE and CrashMonkey (issue 11).

A restore runs once with the crash recorder on the workspace (:func:`recording`, which follows
the restore's directory-descriptor calls): every create, write, fsync, rename, unlink, mkdir,
rmdir and ``os.sync()`` it makes in the workspace is logged. :func:`crash_states` then builds
every tree a power loss could leave at each prefix of that log, with the writes and names not yet
made durable lost, torn or kept in many combinations. The git processes that take the rescue
snapshot are not recorded: their work counts as durable only once the restore has called
``os.sync()`` (before that, the shadow repository is taken back to what it was before the
restore). On every state the test checks:

* every workspace file is its old or its new version, never torn or empty (temporary files of a
  write are allowed: the next restore removes them);
* nothing the user had is lost: while the rescue snapshot is not durable, the workspace is
  exactly as it was;
* a restore run again on that state converges to the target, and restoring the durable rescue
  snapshot gives the workspace as it was, an edit no snapshot held included.

Figures (states checked, violations) are printed with ``[restore-power-loss]``."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from runtime_persistence.shadow_git.repository import ShadowGit
from runtime_persistence.testing.crash import crash_states, recording

TEMPORARY = re.compile(r"^\.keepup-restore\.[0-9a-f]{16}$")
pytestmark = pytest.mark.skipif(os.name != "posix", reason="restore writes through directory descriptors")


def _files(root: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            path = Path(dirpath) / name
            out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


def _write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _prepare(base: Path) -> tuple[str, dict[str, bytes], dict[str, bytes]]:
    """Snapshot ``a`` (the target), then changes, a snapshot, and an edit no snapshot holds.
    Returns (a, files of a, files now)."""
    ws, state = base / "ws", base / "state"
    ws.mkdir(parents=True)
    old = {f"src/m{i}.py": f"old {i}\n".encode() * 50 for i in range(4)}
    old |= {"README.md": b"read me\n", "gone/deep/x.txt": b"x" * 9_000, "keep.txt": b"same"}
    _write(ws, old)
    sg = ShadowGit(ws, state_dir=state)
    a = sg.snapshot("a")
    assert a is not None
    (ws / "src/m0.py").write_bytes(b"new 0\n" * 80)
    shutil.rmtree(ws / "gone")
    _write(ws, {"added/one.txt": b"1" * 5_000, "added/two/three.txt": b"3", "README.md": b"changed\n"})
    assert sg.snapshot("b") is not None
    (ws / "src/m1.py").write_bytes(b"an edit no snapshot holds\n")  # only the rescue holds it
    return a, old, _files(ws)


def _reset(base: Path, source: Path) -> None:
    if base.exists():
        shutil.rmtree(base)
    shutil.copytree(source, base, symlinks=True)


def _power_loss(
    tmp: Path, *, per_point: int, converge_every: int, plant: str | None = None
) -> tuple[dict[str, int], list[str]]:
    """Record one restore, then check every crash state; returns (figures, violations).
    ``plant`` injects a bug at run time: ``"no-sync"`` (the restore never calls os.sync) or
    ``"no-file-fsync"`` (its writes are never fsynced)."""
    base, pristine, at_sync = tmp / "live", tmp / "pristine", tmp / "state-at-sync"
    a, old, now = _prepare(base)
    shutil.copytree(base, pristine, symlinks=True)
    ws, state = base / "ws", base / "state"

    def keep_shadow_state(position: int) -> None:  # the rescue is durable from here on
        if not at_sync.exists():
            shutil.copytree(state, at_sync, symlinks=True)

    with recording(ws) as rec:
        rec.on_sync = keep_shadow_state
        rec.drop_sync = plant == "no-sync"
        rec.drop_file_fsync = plant == "no-file-fsync"
        ShadowGit(ws, state_dir=state).restore(a)
    assert rec.unrecorded == 0, "a workspace call the recorder could not attribute to a path"
    assert _files(ws) == old
    syncs = [i for i, op in enumerate(rec.ops) if op.kind == "sync"]
    counts: dict[str, int] = {}
    violations: list[str] = []
    figures = {"operations": len(rec.ops), "states": 0, "converged": 0}
    for n, st in enumerate(crash_states(rec, per_point=per_point, counter=counts)):
        figures["states"] += 1
        durable = any(i < st.point for i in syncs)
        files = {p: d for p, d in st.files.items() if not TEMPORARY.match(p.rsplit("/", 1)[-1])}
        where = f"point {st.point}/{len(rec.ops)} lost {sorted(st.lost)} torn {sorted(st.torn)}"
        for rel, data in files.items():
            if data not in (old.get(rel), now.get(rel)):
                violations.append(f"{where}: {rel} is neither version ({len(data)} bytes)")
        if not durable and files != now:
            changed = sorted(p for p in {*files, *now} if files.get(p) != now.get(p))
            violations.append(f"{where}: the workspace changed ({changed[:4]}) before its rescue was durable")
        if n % converge_every or violations:
            continue
        # the machine comes back: the same paths, this tree, the shadow repository as it was then
        shutil.rmtree(base)
        st.materialize(ws)
        shutil.copytree(at_sync if durable else pristine / "state", state, symlinks=True)
        sg = ShadowGit(ws, state_dir=state)
        if durable:
            rescue = next(s for s in sg.list(limit=20) if s.message.startswith("keepup: rescue"))
            sg.restore(rescue.commit)
            if _files(ws) != now:
                violations.append(f"{where}: the rescue snapshot does not give the workspace as it was")
        sg.restore(a)
        if _files(ws) != old:
            violations.append(f"{where}: restoring again did not converge to the target")
        figures["converged"] += 1
    figures["violations"] = len(violations)
    figures |= {"crash points": counts["points"]}
    print(f"[restore-power-loss] {plant or 'real code'}: {figures}")
    return figures, violations


@pytest.mark.parametrize(
    ("per_point", "converge_every"),
    [(8, 15), pytest.param(32, 1, marks=pytest.mark.slow)],
    ids=["default", "wide"],
)
def test_a_restore_cut_by_a_power_loss_loses_nothing_and_converges(
    tmp_path: Path, per_point: int, converge_every: int
) -> None:
    figures, violations = _power_loss(tmp_path, per_point=per_point, converge_every=converge_every)
    assert not violations, f"{len(violations)} violations, e.g.:\n" + "\n".join(violations[:8])
    assert figures["states"] > 50 and figures["converged"] > 5


@pytest.mark.parametrize(
    ("plant", "expected"),
    [("no-sync", "before its rescue was durable"), ("no-file-fsync", "is neither version")],
)
def test_the_harness_finds_a_restore_that_skips_a_barrier(tmp_path: Path, plant: str, expected: str) -> None:
    """The harness can fail: with the rescue never made durable, or the files written without
    fsync, it must report the matching violations."""
    _, violations = _power_loss(tmp_path, per_point=8, converge_every=10**9, plant=plant)
    assert any(expected in v for v in violations), violations[:3]
