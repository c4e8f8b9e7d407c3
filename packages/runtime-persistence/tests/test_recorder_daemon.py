"""The recorder daemon against real brokers on loopback (ZeroMQ, NATS JetStream, Mosquitto): group
commit, acknowledgement after commit, resume after SIGKILL, a final checkpoint after SIGTERM,
incremental conversation checkpoints. Every wait is bounded."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime_persistence import (
    Checkpoints,
    MessageStore,
    Recorder,
    RecorderConfig,
    open_source,
    open_store,
)
from runtime_persistence.checkpoint._state import CHUNK_ITEMS

zmq = pytest.importorskip("zmq")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def body(
    sender: str, seq: int, text: str = "hello", conversation: str | None = "c1", mid: str | None = None
) -> bytes:
    data: dict[str, Any] = {"id": mid or f"{sender}-{seq}", "sender": sender, "seq": seq, "text": text}
    if conversation is not None:
        data["conversation"] = conversation
    return json.dumps(data).encode()


def wait_until(check: Callable[[], bool], seconds: float = 30.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


class Publisher:
    """A PUB socket bound where the recorder connects (in place of a broker's XPUB backend)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.PUB)
        self.sock.setsockopt(zmq.SNDHWM, 1_000_000)
        self.sock.bind(f"tcp://127.0.0.1:{self.port}")

    def send(self, topic: str, data: bytes) -> None:
        self.sock.send_multipart([topic.encode(), data])

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()


@pytest.fixture
def publisher() -> Iterator[Publisher]:
    pub = Publisher()
    yield pub
    pub.close()


class Running:
    """A recorder running on its own event loop in a thread, stopped like SIGTERM stops it."""

    def __init__(self, store_url: str, source_url: str, config: RecorderConfig) -> None:
        self.driver = open_store(store_url)
        self.store = MessageStore(self.driver)
        self.recorder = Recorder(
            self.store, open_source(source_url), checkpoints=Checkpoints(self.driver), config=config
        )
        self.loop = asyncio.new_event_loop()
        self.stop_event = asyncio.Event()
        self.result: Any = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.result = self.loop.run_until_complete(self.recorder.run(self.stop_event))

    def wait_subscribed(self, pub: Publisher) -> None:
        """Send probes (sender "probe") until one is recorded: the subscription has arrived."""
        seq = 0

        def probed() -> bool:
            nonlocal seq
            seq += 1
            pub.send("probe", body("probe", seq, conversation=None))
            time.sleep(0.05)
            return self.store.state().messages > 0

        wait_until(probed, 20, "the recorder to subscribe")
        self.probe_gaps = self.store.state().gaps  # probes sent before the subscription arrived

    def stop(self) -> Any:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(60)
        assert not self.thread.is_alive()
        self.store.close()
        self.driver.close()
        return self.result


def test_zmq_messages_are_recorded_with_gaps_and_a_final_checkpoint(
    tmp_path: Path, publisher: Publisher
) -> None:
    url = f"sqlite:///{tmp_path}/rec.db"
    running = Running(url, f"zmq://127.0.0.1:{publisher.port}", RecorderConfig(batch_delay=0.02))
    running.wait_subscribed(publisher)
    for seq in range(1, 201):
        if seq not in (50, 51, 120):  # never sent by alice: the recorder must record gaps
            publisher.send("agents.a", body("alice", seq, f"alice says {seq}", "talk"))
        publisher.send("agents.b", body("bob", seq, f"bob says {seq}", "talk"))
    wait_until(lambda: running.store.state().messages >= 1 + 197 + 200, what="every message")
    stats = running.stop()
    assert stats.gaps == 2 + running.probe_gaps and stats.duplicates == 0

    driver = open_store(url)
    store = MessageStore(driver, index=None)
    records = [m for m in store.read(limit=10_000) if m.sender in ("alice", "bob")]
    alice = [m for m in records if m.sender == "alice"]
    assert [m.seq for m in alice if m.kind == "message"] == [
        s for s in range(1, 201) if s not in (50, 51, 120)
    ]
    assert [(m.gap_from, m.gap_to) for m in alice if m.kind == "gap"] == [(50, 51), (120, 120)]
    assert len([m for m in records if m.sender == "bob"]) == 200
    state = store.state()
    assert state.running is False and state.clean_stops == 1
    assert state.checkpointed_offset == state.next_offset - 1
    thread_id = store.thread_of("talk")
    assert thread_id is not None
    head = Checkpoints(driver).latest(thread_id)
    assert head is not None and head.label == "final"
    assert len(head.state["messages"]) == 399  # 197 + 200 messages and 2 gaps, in offset order
    offsets = [e["offset"] for e in head.state["messages"]]
    assert offsets == sorted(offsets)
    driver.close()


def test_group_commit_makes_batches_bounded_by_size(tmp_path: Path, publisher: Publisher) -> None:
    url = f"sqlite:///{tmp_path}/rec.db"
    running = Running(
        url, f"zmq://127.0.0.1:{publisher.port}", RecorderConfig(batch_size=100, batch_delay=2.0)
    )
    running.wait_subscribed(publisher)
    before = running.store.state().batches
    for seq in range(1, 1001):
        publisher.send("t", body("s", seq))
    wait_until(lambda: running.store.state().messages >= 1001, what="1000 messages")
    batches = running.store.state().batches - before
    running.stop()
    # 1000 messages with a window of 2 s were committed in full batches of 100 (the first one
    # may share a batch with the last probes)
    assert 10 <= batches <= 11, batches


def test_a_lone_message_is_committed_within_the_window_without_more_traffic(
    tmp_path: Path, publisher: Publisher
) -> None:
    url = f"sqlite:///{tmp_path}/rec.db"
    running = Running(
        url, f"zmq://127.0.0.1:{publisher.port}", RecorderConfig(batch_size=10_000, batch_delay=0.1)
    )
    running.wait_subscribed(publisher)
    publisher.send("t", body("lone", 1, "just one"))
    other = open_store(url)
    reader = MessageStore(other, index=None)
    wait_until(lambda: any(m.sender == "lone" for m in reader.recent(5)), 10, "the lone message")
    other.close()
    running.stop()


def test_conversation_checkpoints_are_incremental_and_share_chunks(
    tmp_path: Path, publisher: Publisher
) -> None:
    url = f"sqlite:///{tmp_path}/rec.db"
    per_checkpoint = CHUNK_ITEMS * 3
    config = RecorderConfig(batch_size=per_checkpoint, batch_delay=0.05, checkpoint_messages=per_checkpoint)
    running = Running(url, f"zmq://127.0.0.1:{publisher.port}", config)
    running.wait_subscribed(publisher)
    blob_counts = []
    for round_ in range(3):
        for i in range(per_checkpoint):
            seq = round_ * per_checkpoint + i + 1
            publisher.send("t", body("writer", seq, f"line {seq}", "long"))
        wait_until(
            lambda r=round_: (
                running.store.state().checkpoints >= r + 1
                and running.store.state().checkpointed_offset >= (r + 1) * per_checkpoint
            ),
            what="a checkpoint",
        )
        blob_counts.append(sum(1 for _ in running.driver.list_blobs()))
    running.stop()
    driver = open_store(url)
    store = MessageStore(driver, index=None)
    thread_id = store.thread_of("long")
    assert thread_id is not None
    checkpoints = list(Checkpoints(driver).list(thread_id, limit=100))
    assert len(checkpoints) >= 3
    assert len(Checkpoints(driver).latest(thread_id).state["messages"]) == 3 * per_checkpoint  # type: ignore[union-attr]
    # each checkpoint adds about its own new chunks (3 of CHUNK_ITEMS), not a full copy
    growth = [b - a for a, b in itertools.pairwise(blob_counts)]
    assert all(g <= 3 + 2 for g in growth), (blob_counts, growth)
    driver.close()


# --- subprocess recorders: SIGKILL and SIGTERM -------------------------------------------------


def start_recorder(store_url: str, source_url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runtime_persistence.session.recorder",
            "--store",
            store_url,
            "--source",
            source_url,
            "--batch-delay",
            "0.02",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def recovered_report(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert line.startswith('{"recovered"'), line
    report: dict[str, Any] = json.loads(line)["recovered"]
    return report


def test_sigterm_flushes_and_leaves_a_final_checkpoint(tmp_path: Path, publisher: Publisher) -> None:
    url = f"sqlite:///{tmp_path}/rec.db"
    proc = start_recorder(
        url, f"zmq://127.0.0.1:{publisher.port}", "--batch-delay", "30", "--batch-size", "10000"
    )
    try:
        recovered_report(proc)
        time.sleep(0.5)  # the subscription reaches the publisher
        for seq in range(1, 101):
            publisher.send("t", body("term", seq, f"before the end {seq}", "ending"))
        time.sleep(0.5)  # received, but the 30 s window keeps them in the open batch
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    stats = json.loads(out)["stats"]
    assert stats["messages"] == 100 and stats["batches"] == 1  # flushed at the stop, in one batch
    driver = open_store(url)
    store = MessageStore(driver, index=None)
    state = store.state()
    assert state.running is False and state.checkpointed_offset == state.next_offset - 1 == 100
    thread_id = store.thread_of("ending")
    assert thread_id is not None
    head = Checkpoints(driver).latest(thread_id)
    assert head is not None and head.label == "final" and len(head.state["messages"]) == 100
    driver.close()


def test_the_entry_point_with_a_keyring_records_encrypted(tmp_path: Path, publisher: Publisher) -> None:
    """``--keyring FILE``: the messages, the recorder state and the final checkpoint are
    encrypted (no message text in the store's rows but the full-text index's, plaintext by
    design), and a keyring reader reads them."""
    from runtime_persistence.storage.encryption import read_keyring_file, write_keyring_file
    from runtime_persistence.storage.serialization import EnvelopeSerializer

    ring_file = tmp_path / "keyring.toml"
    write_keyring_file(ring_file, {"k1": bytes(range(32))}, "k1")
    url = f"sqlite:///{tmp_path}/rec.db"
    proc = start_recorder(
        url, f"zmq://127.0.0.1:{publisher.port}", "--batch-delay", "30", "--keyring", str(ring_file)
    )
    try:
        recovered_report(proc)
        time.sleep(0.5)  # the subscription reaches the publisher
        for seq in range(1, 21):
            publisher.send("t", body("term", seq, f"sealed pelicanrune {seq}", "ending"))
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["stats"]["messages"] == 20
    with sqlite3.connect(tmp_path / "rec.db") as conn:  # every row of every table but the FTS index's
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        cells = [
            c
            for t in tables
            if not t.startswith("keepup_message_words")
            for row in conn.execute(f'SELECT * FROM "{t}"')
            for c in row
        ]
    assert len(cells) > 20
    texts = [c.encode() if isinstance(c, str) else c for c in cells if isinstance(c, (str, bytes))]
    assert not [t for t in texts if b"pelicanrune" in t]
    ring = EnvelopeSerializer(keyring=read_keyring_file(ring_file))
    driver = open_store(url)
    try:
        store = MessageStore(driver, index=None, serializer=ring)
        assert len(store.search("pelicanrune", limit=50)) == 20
        thread_id = store.thread_of("ending")
        assert thread_id is not None
        head = Checkpoints(driver, serializer=ring).latest(thread_id)
        assert head is not None and len(head.state["messages"]) == 20
    finally:
        driver.close()


def test_after_sigkill_the_recorder_resumes_from_the_store_and_says_so(
    tmp_path: Path, publisher: Publisher
) -> None:
    url = f"sqlite:///{tmp_path}/rec.db"
    source = f"zmq://127.0.0.1:{publisher.port}"
    proc = start_recorder(url, source)
    try:
        assert recovered_report(proc)["messages"] == 0
        time.sleep(0.5)
        for seq in range(1, 51):
            publisher.send("t", body("k", seq))
        check = open_store(url)
        wait_until(lambda: MessageStore(check, index=None).state().messages == 50, what="50 messages")
        check.close()
        proc.kill()
        proc.wait(30)
        for seq in range(51, 61):  # sent while no recorder listens: lost on ZeroMQ, so a gap
            publisher.send("t", body("k", seq))
        proc = start_recorder(url, source)
        report = recovered_report(proc)
        assert report["messages"] == 50 and report["next_offset"] == 51
        assert report["previous_run_stopped_cleanly"] is False
        time.sleep(0.5)
        for seq in range(61, 71):
            publisher.send("t", body("k", seq))
        check = open_store(url)
        wait_until(lambda: MessageStore(check, index=None).state().messages == 60, what="60 messages")
        gaps = [m for m in MessageStore(check, index=None).read(limit=1000) if m.kind == "gap"]
        check.close()
        assert [(g.gap_from, g.gap_to) for g in gaps] == [(51, 60)]
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()


# --- brokers that redeliver: exactly once across crashes --------------------------------------


def nats_publish(stream: str, subject: str, bodies: list[bytes], *, create: bool) -> None:
    nats = pytest.importorskip("nats")

    async def go() -> None:
        nc = await nats.connect("nats://127.0.0.1:4222")
        js = nc.jetstream()
        if create:
            await js.add_stream(name=stream, subjects=[subject + ".>"])
        for data in bodies:
            await js.publish(subject + ".x", data)
        await nc.close()

    asyncio.run(go())


def nats_delete(stream: str) -> None:
    nats = pytest.importorskip("nats")

    async def go() -> None:
        nc = await nats.connect("nats://127.0.0.1:4222")
        try:
            await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()

    asyncio.run(go())


def test_nats_jetstream_records_exactly_once_across_sigkills(tmp_path: Path) -> None:
    name = "KT" + uuid.uuid4().hex[:10].upper()
    url = f"sqlite:///{tmp_path}/rec.db"
    source = f"nats://127.0.0.1:4222?stream={name}&subject={name}.>&durable=rec&ack_wait=2"
    total = 3000
    nats_publish(name, name, [body(f"p{i % 3}", i // 3 + 1, f"n{i}") for i in range(total)], create=True)
    try:
        for _ in range(3):  # killed mid-stream three times: unacknowledged messages come back
            proc = start_recorder(url, source, "--batch-size", "200")
            recovered_report(proc)
            time.sleep(0.4)
            proc.kill()
            proc.wait(30)
        retried = [body("late", i + 1) for i in range(100)]
        nats_publish(name, name, retried + retried, create=False)  # a publisher that retried all
        proc = start_recorder(url, source)
        recovered_report(proc)
        check = open_store(url)
        store = MessageStore(check, index=None)
        wait_until(lambda: store.state().messages >= total + 100, 60, "every message")
        time.sleep(2.5)  # an ack_wait: a late redelivery would show up now
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        records = list(store.read(limit=10_000))
        check.close()
    finally:
        nats_delete(name)
    messages = [m for m in records if m.kind == "message"]
    ids = [m.id for m in messages]
    assert len(ids) == total + 100 and len(set(ids)) == total + 100  # 0 lost, 0 duplicated
    # a redelivery after a crash arrives after newer messages: the jump was recorded as a gap at
    # the time, and the late messages fill every such gap exactly
    late = {(m.sender, m.seq) for m in messages if m.late}
    for gap in (m for m in records if m.kind == "gap"):
        assert gap.gap_from is not None and gap.gap_to is not None
        assert {(gap.sender, s) for s in range(gap.gap_from, gap.gap_to + 1)} <= late


def test_mqtt_messages_sent_while_the_recorder_is_down_are_recorded_once(tmp_path: Path) -> None:
    mqtt = pytest.importorskip("paho.mqtt.client")
    from paho.mqtt.enums import CallbackAPIVersion

    topic = "kt/" + uuid.uuid4().hex[:10]
    client_id = "rec-" + uuid.uuid4().hex[:10]
    url = f"sqlite:///{tmp_path}/rec.db"
    source = f"mqtt://127.0.0.1:1883?topic={topic}/#&client_id={client_id}"
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pub-" + client_id)
    pub.connect("127.0.0.1", 1883)
    pub.loop_start()

    def send(first: int, count: int) -> None:
        for seq in range(first, first + count):
            pub.publish(f"{topic}/a", body("m", seq), qos=1).wait_for_publish(10)

    try:
        proc = start_recorder(url, source)
        recovered_report(proc)
        time.sleep(1.0)  # subscribed: the broker now keeps this session's messages
        send(1, 100)
        check = open_store(url)
        store = MessageStore(check, index=None)
        wait_until(lambda: store.state().messages >= 100, 30, "100 messages")
        proc.kill()
        proc.wait(30)
        send(101, 100)  # nobody connected: the persistent session queues them
        proc = start_recorder(url, source)
        recovered_report(proc)
        wait_until(lambda: store.state().messages >= 200, 60, "200 messages")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        records = list(store.read(limit=10_000))
        check.close()
    finally:
        pub.loop_stop()
        pub.disconnect()
        if "proc" in locals() and proc.poll() is None:
            proc.kill()
        cleanup = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        cleanup.connect("127.0.0.1", 1883)  # drop the persistent session from the broker
        cleanup.disconnect()
    seqs = [m.seq for m in records if m.kind == "message"]
    assert sorted(seqs) == list(range(1, 201))
    assert not [m for m in records if m.kind == "gap"]


def test_an_unknown_source_scheme_or_bad_url_is_a_typed_error() -> None:
    from runtime_core import ValidationError

    for url in ("kafka://x:1", "zmq://nohostport", "nats://127.0.0.1:4222", "not a url"):
        with pytest.raises(ValidationError):
            open_source(url)
    assert os.environ is not None
