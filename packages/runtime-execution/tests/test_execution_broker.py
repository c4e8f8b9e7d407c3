"""The ZeroMQ broker on loopback: it forwards [topic, body] unchanged to every matching
subscriber, its publishers stamp ids and sequence numbers, it survives a restart on the same
endpoints, and a taken endpoint is a typed error."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

import pytest
from runtime_core import StorageError, ValidationError
from runtime_execution.broker import message_body, open_broker, open_publisher, open_subscriber

pytest.importorskip("zmq")


def endpoints() -> tuple[str, str]:
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    return f"tcp://127.0.0.1:{ports[0]}", f"tcp://127.0.0.1:{ports[1]}"


def until_received(send: Callable[[], object], receive: Callable[[float], object], tries: int = 50) -> object:
    """Send until something arrives (a new subscription takes a moment to reach the publisher)."""
    for _ in range(tries):
        send()
        got = receive(0.1)
        if got is not None:
            return got
    raise AssertionError("nothing arrived")


def test_messages_reach_every_subscriber_unchanged_and_topics_filter() -> None:
    front, back = endpoints()
    with open_broker(front, back), open_publisher(front, "alice") as pub:
        everything = open_subscriber(back)
        only_b = open_subscriber(back, "agents.b")
        until_received(lambda: pub.publish("agents.b", "warm-up"), only_b.receive)
        while everything.receive(0.2) is not None:
            pass
        while only_b.receive(0.2) is not None:
            pass
        sent_a = pub.publish("agents.a", "to a", conversation="c", role="user", extra={"k": [1, 2]})
        sent_b = pub.publish("agents.b", "to b")
        got = [everything.receive(5), everything.receive(5)]
        assert got == [("agents.a", json.loads(sent_a)), ("agents.b", json.loads(sent_b))]
        assert only_b.receive(5) == ("agents.b", json.loads(sent_b))
        assert only_b.receive(0.3) is None
        pub.send_raw("raw", b"\xff not json")
        assert everything.receive(5) == ("raw", b"\xff not json")
        everything.close()
        only_b.close()


def test_a_publisher_stamps_a_new_id_its_sender_and_the_next_sequence_number() -> None:
    front, back = endpoints()
    with open_broker(front, back), open_publisher(front, "bob") as pub:
        bodies = [json.loads(pub.publish("t", f"m{i}")) for i in range(3)]
    assert [b["seq"] for b in bodies] == [1, 2, 3]
    assert {b["sender"] for b in bodies} == {"bob"}
    assert len({b["id"] for b in bodies}) == 3


def test_the_broker_can_restart_on_the_same_endpoints_and_peers_reconnect() -> None:
    front, back = endpoints()
    pub = open_publisher(front, "carol")
    sub = open_subscriber(back)
    with open_broker(front, back):
        until_received(lambda: pub.publish("t", "before"), sub.receive)
    time.sleep(0.2)
    with open_broker(front, back):
        got = until_received(lambda: pub.publish("t", "after"), sub.receive)
    assert isinstance(got, tuple) and got[1]["text"] == "after"
    pub.close()
    sub.close()


def test_an_endpoint_in_use_is_a_storage_error() -> None:
    front, back = endpoints()
    with open_broker(front, back):
        with pytest.raises(StorageError, match="cannot bind"):
            open_broker(front, back).start()


def test_a_body_field_that_is_not_json_is_refused() -> None:
    with pytest.raises(ValidationError):
        message_body("s", 1, "t", when=object())
    with pytest.raises(ValidationError):
        message_body("s", 1, "t", id="twice")
    assert json.loads(message_body("s", 7, None, message_id="x")) == {"id": "x", "sender": "s", "seq": 7}
