"""Writes ``format2-store.sqlite``, ``format2-envelopes.json`` and ``format2-export.kup``: data made by Keepup before the
envelope checksum became XXH3 (envelope formats 2 and 1, BLAKE2b-64 checksums; main at f6cc475),
used by test_envelope_formats.py to prove such data stays readable. Run it with that Keepup (it
is kept for the record, not run by the tests):

    python make_format2_store.py OUT_DIR

The store holds the same things as ``format1-store.sqlite`` (threads, checkpoints with inline,
blob and chunked channels, pending writes, a pin, artifacts, a session, a task with a log line, a
lease). The JSON file holds single envelopes, bound and unbound, MessagePack and JSON, plain,
zstd-compressed and encrypted under the fixed test key ``KEY`` (id ``"k1"``), each with the value
it decodes to and the place it was written at.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

from runtime_persistence import Artifacts, Checkpoints, Leases, Sessions, Tasks, open_store
from runtime_persistence.storage.serialization import EnvelopeSerializer, Keyring

KEY = bytes(range(32))
VALUE = {"messages": [{"role": "user", "content": "hello " * 100}], "n": 7, "ok": True}


def store(path: Path) -> None:
    driver = open_store(f"sqlite:///{path}")
    cps = Checkpoints(driver)
    first = cps.create_thread("old thread")
    second = cps.create_thread("other")
    a0 = cps.save(first.id, {"messages": ["hello"], "n": 0})
    cps.save(first.id, {"messages": ["hello", "world"], "n": 1, "big": "x" * 5000}, label="two")
    cps.save(first.id, {"messages": [f"m{i}" for i in range(3000)], "n": 2})
    cps.put_writes(cps.latest(first.id).id, "task-1", {"messages": "pending"})
    cps.pin(a0.id, "keep")
    cps.save(second.id, {"messages": ["b"], "n": 10})
    arts = Artifacts(driver)
    arts.put("scope", "report.txt", b"version zero")
    arts.put("scope", "report.txt", b"version one")
    Sessions(driver).open("old session")
    tasks = Tasks(driver)
    task = tasks.create("old task")
    tasks.log(task.id, "a line")
    Leases(driver).acquire(second.id, "run-1", timedelta(days=3650))
    driver.close()


def envelopes(path: Path) -> None:
    ring = Keyring({"k1": KEY})
    kinds = {
        "msgpack": EnvelopeSerializer(),
        "json": EnvelopeSerializer("json"),
        "zstd": EnvelopeSerializer(compression="zstd"),
        "encrypted": EnvelopeSerializer(keyring=ring),
        "encrypted-zstd": EnvelopeSerializer(keyring=ring, compression="zstd"),
    }
    out = []
    for name, ser in kinds.items():
        for at in (("ckpt", "thread-1/0000000001"), None):
            data = ser.dumps(VALUE, at=at)
            out.append({"kind": name, "at": list(at) if at else None, "value": VALUE, "hex": data.hex()})
    path.write_text(json.dumps(out, indent=1) + "\n")


def export(store_path: Path, path: Path) -> None:
    """The threads of the store above, exported (frames and blobs in envelope format 1)."""
    from runtime_persistence.checkpoint.export import export_threads

    driver = open_store(f"sqlite:///{store_path}")
    export_threads(Checkpoints(driver), path)
    driver.close()


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    store(folder / "format2-store.sqlite")
    envelopes(folder / "format2-envelopes.json")
    export(folder / "format2-store.sqlite", folder / "format2-export.kup")
