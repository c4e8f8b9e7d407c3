"""Start-up: ``import keepup`` is lazy, and the ``keepup`` command loads only what it runs.

``keepup --help`` (and completion) import no store package at all; a command imports its own
group only, never rich.markdown or the server drivers' client libraries. ``keepup --help``,
``--version`` and ``thread list`` run on the fast path (keepup._cli.fast): without typer or click,
and ``--help`` and ``thread list`` without importlib.metadata either."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY_FOR_HELP = [
    "attr",
    "attrs",
    "jsonschema",
    "pydantic",
    "rich",
    "msgspec",
    "runtime_core",
    "runtime_persistence",
    "runtime_execution",
    "keepup.runtime",
    "keepup._cli.checkpoints",
    "typer",
    "click",
    "importlib.metadata",
    "shutil",
]
DRIVERS = ["psycopg", "psycopg_pool", "pymysql", "aiomysql", "redis", "pymongo", "motor", "rich.markdown"]
# Costs a command pays only when it needs them: typer >= 0.29 validates every parameter through
# pydantic (+0.2 s), and jsonschema is needed only to validate a typed artifact (+0.1 s).
HEAVY_FOR_A_COMMAND = ["pydantic", "pydantic_core", "jsonschema"]
# What listing threads does not need (module or package prefixes): asyncio and the async twins,
# the runner and tools, the other repositories (sessions, tasks, events, artifacts, snapshots),
# export, encryption, the recorder, the codecs of blobs and exports, the terminal UI, and
# entry-point metadata. The package __init__ files and the Runtime are lazy so that it stays so.
# (xxhash is needed: the SQLite driver verifies every row it reads with its XXH3 checksum.)
NOT_FOR_THREAD_LIST = [
    "typer",
    "click",
    "keepup._cli.root",
    "keepup._cli.command",
    "keepup._cli.threads",
    "socket",
    "runtime_persistence.storage.drivers._sqlite_backup",
    "runtime_persistence.storage._backup_stream",
    "asyncio",
    "importlib.metadata",
    "zstandard",
    "cryptography",
    "jsonschema",
    "textual",
    "rich",
    "platformdirs",
    "runtime_execution",
    "runtime_tools",
    "runtime_telemetry",
    "runtime_core.events",
    "runtime_core.runs",
    "runtime_core.tasks",
    "runtime_core.tools",
    # the checkpoint store's other parts: threads are listed by its ThreadLister alone
    "runtime_core.checkpoints",
    "runtime_core.artifacts",
    "runtime_core.workspace",
    "runtime_core.sessions",
    "runtime_persistence.checkpoints",
    "runtime_persistence.checkpoint.checkpoints",
    "runtime_persistence.checkpoint._shared",
    "runtime_persistence.checkpoint._sync.checkpoints",
    "runtime_persistence.checkpoint._sync.core",
    "runtime_persistence.checkpoint._sync.commits",
    "runtime_persistence.checkpoint._sync.threads",
    "runtime_persistence.storage.leases",
    # the state codec and its list layout (a thread record names no channel), and the async
    # migration runner (the SQLite driver is sync)
    "runtime_persistence.checkpoint._state",
    "runtime_persistence.checkpoint._layout",
    "runtime_persistence.storage.drivers._migrations",
    "runtime_persistence.storage.drivers._async",
    "runtime_persistence.storage._sync",
    "runtime_persistence.storage._async",
    "runtime_persistence.artifact",
    "runtime_persistence.checkpoint._async",
    "runtime_persistence.checkpoint.export",
    "runtime_persistence.checkpoint._export_format",
    "runtime_persistence.checkpoint.gc",
    "runtime_persistence.checkpoint.workspaces",
    "runtime_persistence.encryption",
    "runtime_persistence.storage.encryption",
    "runtime_persistence.storage.threaded",
    "runtime_persistence.session._async",
    "runtime_persistence.session._sync",
    "runtime_persistence.session.events",
    "runtime_persistence.session.messages",
    "runtime_persistence.session.recorder",
    "runtime_persistence.session.sessions",
    "runtime_persistence.session.sweeper",
    "runtime_persistence.session.tasks",
    "runtime_persistence.shadow_git",
    "keepup._cli.checkpoints",
]


def loaded_after(args: list[str], home: Path) -> set[str]:
    """The modules loaded after running ``keepup ARGS`` in a fresh interpreter."""
    code = (
        "import sys, json\n"
        f"sys.argv = ['keepup', *{args!r}]\n"
        "from keepup.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.__stdout__.write('\\nMODULES ' + json.dumps(sorted(sys.modules)))\n"
    )
    env = {"KEEPUP_HOME": str(home), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out.rsplit("MODULES ", 1)[1]))


def test_import_keepup_loads_no_library_package() -> None:
    code = "import sys, keepup; print(sorted(m for m in sys.modules if m.startswith('runtime_')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    code = "import keepup; print(keepup.open_runtime.__module__, keepup.Checkpoints.__name__, 'Checkpoints' in dir(keepup))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["keepup.runtime", "Checkpoints", "True"]


def test_help_loads_no_store_package(tmp_path: Path) -> None:
    for args in (["--help"], ["-h"]):
        loaded = loaded_after(args, tmp_path)
        assert not {m for m in loaded if m in HEAVY_FOR_HELP or m.split(".")[0] in HEAVY_FOR_HELP}, args
        assert "keepup._cli.fast" in loaded
    # --version reads the versions through importlib.metadata (which imports shutil)
    version_too = [m for m in HEAVY_FOR_HELP if m not in ("importlib.metadata", "shutil")]
    loaded = loaded_after(["--version"], tmp_path)
    assert not {m for m in loaded if m in version_too or m.split(".")[0] in version_too}
    # What the fast path does not run, typer does.
    assert "typer" in loaded_after(["thread", "--help"], tmp_path)


def test_a_command_loads_neither_rich_markdown_nor_server_drivers(tmp_path: Path) -> None:
    from keepup.runtime import open_runtime

    with open_runtime(home=tmp_path) as runtime:
        runtime.checkpoints.create_thread("t")
    # Through typer (the fast path takes no repeated option): the typer command loads as little.
    loaded = loaded_after(["thread", "list", "--json", "--json"], tmp_path)
    assert "keepup._cli.threads" in loaded
    assert not {m for m in loaded if m in DRIVERS or m.split(".")[0] in DRIVERS}
    assert not {m for m in loaded if m.split(".")[0] in HEAVY_FOR_A_COMMAND}, (
        "pydantic or jsonschema at start-up"
    )
    assert "keepup._cli.checkpoints" not in loaded and "rich" not in loaded  # piped: no tables


def _under(loaded: set[str], prefixes: list[str]) -> list[str]:
    return sorted(m for m in loaded if any(m == p or m.startswith(p + ".") for p in prefixes))


def test_thread_list_loads_only_the_thread_lister_and_its_store(tmp_path: Path) -> None:
    from keepup.runtime import open_runtime

    with open_runtime(home=tmp_path) as runtime:
        runtime.checkpoints.create_thread("t")
    loaded = loaded_after(["thread", "list"], tmp_path)
    assert {"keepup._cli.thread_list", "runtime_persistence.checkpoint._sync.listing"} <= loaded
    assert "runtime_persistence.storage.drivers.sqlite" in loaded
    assert _under(loaded, NOT_FOR_THREAD_LIST) == []


def test_the_runtime_builds_a_repository_on_first_use(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from keepup.runtime import open_runtime\n"
        f"rt = open_runtime(home={str(tmp_path)!r})\n"
        "before = sorted(k for k in ('leases', 'checkpoints', 'sessions', 'tasks', 'artifacts') if k in vars(rt))\n"
        "print(before, 'runtime_persistence.session.sessions' in sys.modules)\n"
        "rt.sessions.open('s')\n"
        "print('runtime_persistence.session.sessions' in sys.modules, rt.sessions is rt.sessions)\n"
        "rt.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["[] False", "True True"]


def test_the_fast_path_gives_the_garbage_collector_back(tmp_path: Path) -> None:
    # The fast path runs with the cyclic collector off (start-up CPU) and must turn it back on
    # before anything else runs, and leave it off for a caller that had turned it off.
    code = (
        "import gc, sys\n"
        "from keepup.cli import main\n"
        "seen = []\n"
        "for disabled in (False, True):\n"
        "    if disabled:\n"
        "        gc.disable()\n"
        "    for args in (['thread', 'list'], ['--help'], ['thread', 'list', '--limit', '0']):\n"
        "        sys.argv = ['keepup', *args]\n"
        "        try:\n"
        "            main()\n"
        "        except SystemExit:\n"
        "            pass\n"
        "        seen.append(gc.isenabled())\n"
        "sys.__stdout__.write('\\nGC ' + ' '.join(map(str, seen)))\n"
    )
    env = {"KEEPUP_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.rsplit("GC ", 1)[1].split() == ["True"] * 3 + ["False"] * 3
