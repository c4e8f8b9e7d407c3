"""The recorder under crashes, end to end with the installed commands: `keepup broker`,
`keepup recorder` and publisher processes on loopback. The recorder is SIGKILLed and restarted
again and again, the ZeroMQ broker is restarted too, and at the end:

* ZeroMQ: each sender's sequence numbers 1..N are each either recorded exactly once or covered
  by exactly one recorded gap (nothing is silently missing, nothing is doubled);
* NATS JetStream: every message is recorded exactly once (0 lost, 0 duplicated).

The fast versions run with the normal tests; the full one (100,000 messages from 8 publishers,
10 SIGKILLs, 2 broker restarts) is marked slow. ``KEEPUP_CHAOS_MESSAGES`` scales it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from runtime_persistence import MessageStore, open_store

pytest.importorskip("zmq")
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PUBLISHER = r"""
import os, sys, time
from runtime_execution.broker import open_publisher
front, sender, count, rate, final = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
pub = open_publisher(front, sender)
pub.wait_ready(0.5)
start = time.monotonic()
i = 0
# At least `count` messages, and on until the controller has done all its restarts (so a slow
# machine never runs out of traffic before the last restart)...
while i < count or not os.path.exists(final + ".stop"):
    i += 1
    pub.publish("agents." + sender, f"{sender} message {i} about the plan", conversation="chaos-" + sender)
    ahead = i / rate - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(ahead)
# ...then the last message once the controller says a recorder is up: a loss at the very end
# would otherwise be invisible (no later message of this sender reveals it).
deadline = time.monotonic() + 300
while not os.path.exists(final) and time.monotonic() < deadline:
    time.sleep(0.05)
pub.publish("agents." + sender, f"{sender} says the end", conversation="chaos-" + sender)
pub.close()
"""

NATS_PUBLISHER = r"""
import asyncio, json, sys, uuid
import nats
subject, sender, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
async def main():
    nc = await nats.connect("nats://127.0.0.1:4222")
    js = nc.jetstream()
    for i in range(count):
        body = {"id": str(uuid.uuid4()), "sender": sender, "seq": i + 1, "text": f"{sender} {i + 1}"}
        await js.publish(subject, json.dumps(body).encode())
    await nc.close()
asyncio.run(main())
"""


@dataclass
class Harness:
    tmp: Path
    store_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    kills: int = 0
    broker_restarts: int = 0

    def __post_init__(self) -> None:
        self.store_url = f"sqlite:///{self.tmp}/chaos.db"
        self.env = {**os.environ, "KEEPUP_HOME": str(self.tmp / "home"), "KEEPUP_STORE_URL": self.store_url}

    def spawn(self, args: list[str], **kwargs: Any) -> subprocess.Popen[str]:
        proc = subprocess.Popen(args, env=self.env, text=True, **kwargs)
        self.procs.append(proc)
        return proc

    def recorder(self, source: str) -> subprocess.Popen[str]:
        proc = self.spawn(
            [
                str(BIN / "keepup"),
                "recorder",
                "--source",
                source,
                "--status-every",
                "0",
                "--json",
                "--checkpoint-every",
                "2",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stderr is not None
        line = proc.stderr.readline()  # "recorder: resumed at offset ..." once it is running
        assert "resumed at offset" in line, line
        return proc

    def broker(self, front: str, back: str) -> subprocess.Popen[str]:
        proc = self.spawn(
            [str(BIN / "keepup"), "broker", "--frontend", front, "--backend", back],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert proc.stderr is not None
        assert "broker:" in proc.stderr.readline()
        return proc

    def kill(self, proc: subprocess.Popen[str]) -> None:
        proc.kill()
        proc.wait(30)

    def stop(self, proc: subprocess.Popen[str]) -> dict[str, Any]:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        result: dict[str, Any] = json.loads(out)
        return result

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)

    def recorded(self) -> int:
        try:
            driver = open_store(self.store_url + "?read_only=1")
        except Exception:  # the recorder has not created the store yet
            return 0
        try:
            return MessageStore(driver, index=None).state().messages
        finally:
            driver.close()

    def wait_recorded(self, count: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.recorded() >= count:
                return
            time.sleep(0.1)
        raise AssertionError(f"fewer than {count} messages recorded after {seconds}s")

    def records(self) -> list[Any]:
        driver = open_store(self.store_url)
        store = MessageStore(driver, index=None)
        out: list[Any] = []
        cursor = 0
        while True:
            page = list(store.read(after=cursor, limit=10_000))
            out.extend(page)
            if len(page) < 10_000:
                break
            cursor = page[-1].offset
        state = store.state()
        driver.close()
        return [out, state]


def zmq_chaos(
    tmp: Path, *, publishers: int, per_publisher: int, kills: int, broker_restarts: int, rate: float
) -> dict[str, Any]:
    h = Harness(tmp)
    front, back = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    source = f"zmq://{back.removeprefix('tcp://')}"
    started = time.monotonic()
    try:
        broker = h.broker(front, back)
        recorder = h.recorder(source)
        time.sleep(0.5)
        final_flag = tmp / "final"
        pubs = [
            h.spawn(
                [
                    sys.executable,
                    "-c",
                    PUBLISHER,
                    front,
                    f"pub{i}",
                    str(per_publisher),
                    str(rate),
                    str(final_flag),
                ]
            )
            for i in range(publishers)
        ]
        events = kills + broker_restarts
        broker_at = {round((k + 1) * (events + 1) / (broker_restarts + 1)) for k in range(broker_restarts)}
        # each recorder (and broker) life records its share of messages before the next blow,
        # so every restart happens while the publishers are still sending
        per_life = publishers * per_publisher // (events + 1) // 3
        for step in range(1, events + 1):
            h.wait_recorded(h.recorded() + per_life, 60)
            if step in broker_at:
                h.kill(broker)
                broker = h.broker(front, back)
                h.broker_restarts += 1
            else:
                h.kill(recorder)
                recorder = h.recorder(source)
                h.kills += 1
        # the last recorder (and broker) must be up and subscribed before the end messages go out:
        # it has recorded fresh traffic from the publishers, which are still sending
        h.wait_recorded(h.recorded() + publishers * 20, 180)
        Path(str(final_flag) + ".stop").touch()
        time.sleep(1.0)
        final_flag.touch()
        for pub in pubs:
            assert pub.wait(600) == 0
        time.sleep(1.0)  # the last batch window
        final = h.stop(recorder)
        h.kill(broker) if broker.poll() is None else None
        records, state = h.records()
    finally:
        h.cleanup()
    elapsed = time.monotonic() - started
    check_zmq_records(records, publishers, per_publisher)
    gaps = sum(1 for r in records if r.kind == "gap")
    missing = sum(r.gap_to - r.gap_from + 1 for r in records if r.kind == "gap")
    recorded = sum(1 for r in records if r.kind == "message")
    sent = sum(
        max(r.seq for r in records if r.sender == f"pub{i}" and r.kind == "message")
        for i in range(publishers)
    )
    return {
        "sent": sent,
        "recorded": recorded,
        "gap_records": gaps,
        "missing_in_gaps": missing,
        "kills": h.kills,
        "broker_restarts": h.broker_restarts,
        "seconds": round(elapsed, 1),
        "final": final["stats"],
        "state": {"messages": state.messages, "gaps": state.gaps, "duplicates": state.duplicates},
    }


def check_zmq_records(records: list[Any], publishers: int, per_publisher: int) -> None:
    for i in range(publishers):
        sender = f"pub{i}"
        seqs = Counter(r.seq for r in records if r.sender == sender and r.kind == "message")
        doubled = [s for s, n in seqs.items() if n > 1]
        assert not doubled, f"{sender}: recorded twice: {doubled[:10]}"
        covered = Counter(seqs)
        for gap in (r for r in records if r.sender == sender and r.kind == "gap"):
            for s in range(gap.gap_from, gap.gap_to + 1):
                covered[s] += 1
        last = max(seqs) if seqs else 0
        # every number up to the last one recorded is there exactly once, as a message or in a gap
        wrong = [s for s in range(1, last + 1) if covered[s] != 1]
        assert not wrong, f"{sender}: numbers not accounted for exactly once: {wrong[:10]}"
        ends = [
            r for r in records if r.sender == sender and r.kind == "message" and r.text.endswith("the end")
        ]
        assert len(ends) == 1 and ends[0].seq == last, f"{sender}: the end message is missing or not last"
        assert last > per_publisher, f"{sender}: sent only {last} messages"


def nats_chaos(tmp: Path, *, publishers: int, per_publisher: int, kills: int) -> dict[str, Any]:
    nats = pytest.importorskip("nats")
    name = "CHAOS" + uuid.uuid4().hex[:10].upper()
    subject = f"{name}.agents"
    h = Harness(tmp)
    source = f"nats://127.0.0.1:4222?stream={name}&subject={name}.>&durable=chaos&ack_wait=3"
    started = time.monotonic()

    async def admin(create: bool) -> None:
        nc = await nats.connect("nats://127.0.0.1:4222")
        js = nc.jetstream()
        if create:
            await js.add_stream(name=name, subjects=[f"{name}.>"])
        else:
            await js.delete_stream(name)
        await nc.close()

    asyncio.run(admin(True))
    try:
        recorder = h.recorder(source)
        pubs = [
            h.spawn([sys.executable, "-c", NATS_PUBLISHER, subject, f"pub{i}", str(per_publisher)])
            for i in range(publishers)
        ]
        per_life = publishers * per_publisher // (kills + 1) // 2
        for _ in range(kills):
            h.wait_recorded(h.recorded() + per_life, 300)
            h.kill(recorder)
            recorder = h.recorder(source)
            h.kills += 1
        for pub in pubs:
            assert pub.wait(600) == 0
        total = publishers * per_publisher
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            driver = open_store(h.store_url)
            done = MessageStore(driver, index=None).state().messages >= total
            driver.close()
            if done:
                break
            time.sleep(0.5)
        time.sleep(3.5)  # one ack_wait: a redelivery would be recorded (and dropped) now
        final = h.stop(recorder)
        records, state = h.records()
    finally:
        h.cleanup()
        asyncio.run(admin(False))
    ids = Counter(r.id for r in records if r.kind == "message")
    assert sum(ids.values()) == total, f"recorded {sum(ids.values())} of {total}"
    assert max(ids.values()) == 1, "a message was recorded twice"
    return {
        "sent": total,
        "recorded": sum(ids.values()),
        "distinct": len(ids),
        "kills": h.kills,
        "duplicates_dropped": state.duplicates,
        "seconds": round(time.monotonic() - started, 1),
        "final": final["stats"],
    }


def test_zmq_chaos_small(tmp_path: Path) -> None:
    report = zmq_chaos(tmp_path, publishers=4, per_publisher=800, kills=3, broker_restarts=1, rate=25)
    print(json.dumps(report))
    assert report["kills"] == 3 and report["broker_restarts"] == 1


def test_nats_chaos_small(tmp_path: Path) -> None:
    report = nats_chaos(tmp_path, publishers=4, per_publisher=1000, kills=3)
    print(json.dumps(report))


@pytest.mark.slow
def test_zmq_chaos_100k(tmp_path: Path) -> None:
    total = int(os.environ.get("KEEPUP_CHAOS_MESSAGES", "100000"))
    report = zmq_chaos(
        tmp_path, publishers=8, per_publisher=total // 8, kills=10, broker_restarts=2, rate=total / 8 / 100
    )
    print(json.dumps(report))
    assert report["kills"] == 10 and report["broker_restarts"] == 2


@pytest.mark.slow
def test_nats_chaos_100k(tmp_path: Path) -> None:
    total = int(os.environ.get("KEEPUP_CHAOS_MESSAGES", "100000"))
    report = nats_chaos(tmp_path, publishers=8, per_publisher=total // 8, kills=10)
    print(json.dumps(report))
