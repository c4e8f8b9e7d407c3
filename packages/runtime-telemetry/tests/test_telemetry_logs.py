"""Structured logging: what the JSON and human formatters really write, and the log context."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import Enum

import pytest
from runtime_core import ValidationError
from runtime_telemetry import (
    FIELDS_ATTR,
    HumanFormatter,
    JsonFormatter,
    configure_logging,
    current_log_context,
    log_context,
)


@pytest.fixture
def json_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = configure_logging(fmt="json", stream=stream, logger="keepup.test", level=logging.DEBUG)
    yield stream
    logging.getLogger("keepup.test").removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_has_time_level_logger_message_and_fields(json_stream: io.StringIO) -> None:
    logging.getLogger("keepup.test.sub").warning("saved %s", "cp1", extra={"step": 3})
    [rec] = lines(json_stream)
    assert rec["level"] == "warning"
    assert rec["logger"] == "keepup.test.sub"
    assert rec["msg"] == "saved cp1"
    assert rec["step"] == 3
    ts = str(rec["ts"])
    assert ts.endswith("Z") and len(ts) == len("2025-01-01T00:00:00.000Z")
    parsed = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - parsed).total_seconds()) < 60


def test_log_context_fields_appear_on_every_record_inside_the_block(json_stream: io.StringIO) -> None:
    log = logging.getLogger("keepup.test")
    with log_context(thread_id="t-1", run_id="r-1"):
        log.info("one")
        with log_context(run_id="r-2", step=4):
            log.info("two")
        log.info("three")
    log.info("four")
    recs = lines(json_stream)
    assert [(r.get("thread_id"), r.get("run_id"), r.get("step")) for r in recs] == [
        ("t-1", "r-1", None),
        ("t-1", "r-2", 4),
        ("t-1", "r-1", None),
        (None, None, None),
    ]


def test_log_context_is_restored_after_an_exception() -> None:
    with pytest.raises(RuntimeError), log_context(run_id="r-9"):
        raise RuntimeError("boom")
    assert current_log_context() == {}


def test_log_context_does_not_leak_between_threads(json_stream: io.StringIO) -> None:
    log = logging.getLogger("keepup.test")
    ready = threading.Event()
    done = threading.Event()

    def other() -> None:
        ready.wait(5)
        log.info("from other thread")
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with log_context(run_id="main-run"):
        ready.set()
        done.wait(5)
        log.info("from main thread")
    t.join(5)
    recs = {r["msg"]: r for r in lines(json_stream)}
    assert "run_id" not in recs["from other thread"]
    assert recs["from main thread"]["run_id"] == "main-run"


def test_explicit_fields_may_use_names_of_record_attributes(json_stream: io.StringIO) -> None:
    logging.getLogger("keepup.test").info("evt", extra={FIELDS_ATTR: {"msg": "field", "name": "n"}})
    [rec] = lines(json_stream)
    assert rec["msg"] == "evt"
    assert rec["msg_"] == "field"
    assert rec["name"] == "n"


def test_unserialisable_values_are_written_as_text_and_never_break_a_line(json_stream: io.StringIO) -> None:
    class Color(Enum):
        RED = "red"

    odd = object()
    logging.getLogger("keepup.test").info(
        "line1\nline2",
        extra={
            "when": datetime(2025, 1, 2, tzinfo=UTC),
            "color": Color.RED,
            "blob": b"\x00\x01",
            "tags": {"b", "a"},
            "odd": odd,
        },
    )
    [rec] = lines(json_stream)
    assert rec["msg"] == "line1\nline2"
    assert rec["when"] == "2025-01-02T00:00:00+00:00"
    assert rec["color"] == "red"
    assert rec["blob"] == "<2 bytes>"
    assert rec["tags"] == ["a", "b"]
    assert rec["odd"] == repr(odd)


def test_exceptions_are_written_in_the_json_record(json_stream: io.StringIO) -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        logging.getLogger("keepup.test").exception("failed")
    [rec] = lines(json_stream)
    assert "ValueError: bad value" in str(rec["exc"])
    assert "Traceback" in str(rec["exc"])


def test_human_format_is_one_readable_line_with_quoted_values() -> None:
    stream = io.StringIO()
    handler = configure_logging(fmt="human", stream=stream, logger="keepup.human")
    try:
        with log_context(thread_id="t-7"):
            logging.getLogger("keepup.human").info(
                "checkpoint.saved", extra={"label": "before refactor", "n": 2}
            )
    finally:
        logging.getLogger("keepup.human").removeHandler(handler)
    [line] = stream.getvalue().splitlines()
    _ts, rest = line.split(" ", 1)
    assert rest == 'INFO    keepup.human checkpoint.saved thread_id=t-7 label="before refactor" n=2'


def test_configure_logging_twice_replaces_its_own_handler_only() -> None:
    log = logging.getLogger("keepup.twice")
    foreign = logging.NullHandler()
    log.addHandler(foreign)
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first, logger="keepup.twice")
    h2 = configure_logging(stream=second, logger="keepup.twice", fmt="json")
    try:
        log.info("hello")
        assert first.getvalue() == ""
        assert json.loads(second.getvalue())["msg"] == "hello"
        assert foreign in log.handlers
        assert sum(1 for h in log.handlers if h is not foreign) == 1
    finally:
        log.removeHandler(h2)
        log.removeHandler(foreign)


def test_level_filters_records() -> None:
    stream = io.StringIO()
    handler = configure_logging(stream=stream, logger="keepup.level", level="WARNING")
    try:
        logging.getLogger("keepup.level").info("hidden")
        logging.getLogger("keepup.level").warning("shown")
    finally:
        logging.getLogger("keepup.level").removeHandler(handler)
    assert "hidden" not in stream.getvalue()
    assert "shown" in stream.getvalue()


def test_bad_format_and_bad_context_names_are_refused() -> None:
    with pytest.raises(ValidationError, match="'json' or 'human'"):
        configure_logging(fmt="xml")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="identifiers"), log_context(**{"not an id": 1}):
        pass


def test_formatters_work_without_the_context_filter() -> None:
    record = logging.LogRecord("keepup.x", logging.INFO, __file__, 1, "m", (), None)
    with log_context(run_id="r-3"):
        assert json.loads(JsonFormatter().format(record))["run_id"] == "r-3"
        assert HumanFormatter().format(record).endswith("keepup.x m run_id=r-3")
