"""Log lines: readable on a terminal, JSON elsewhere; Kafka clients' start-up noise kept down."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from servicekit.logs import (
    FIELDS_ATTRIBUTE,
    KafkaNoiseFilter,
    LogFormat,
    configure_logging,
    resolve_format,
)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_auto_is_text_on_a_terminal_and_json_elsewhere() -> None:
    assert resolve_format(LogFormat.AUTO, Terminal()) is LogFormat.TEXT
    assert resolve_format(LogFormat.AUTO, io.StringIO()) is LogFormat.JSON
    assert resolve_format(LogFormat.JSON, Terminal()) is LogFormat.JSON
    assert resolve_format(LogFormat.TEXT, io.StringIO()) is LogFormat.TEXT


def test_json_lines_carry_fields() -> None:
    out = io.StringIO()
    configure_logging("info", LogFormat.JSON, stream=out)
    logging.getLogger("ingest.app").info("stored %d", 3, extra={FIELDS_ATTRIBUTE: {"route": "/x"}})
    entry = json.loads(out.getvalue())
    assert (entry["level"], entry["logger"], entry["msg"], entry["route"]) == (
        "info",
        "ingest.app",
        "stored 3",
        "/x",
    )


def test_text_lines_are_readable() -> None:
    out = Terminal()
    configure_logging("info", LogFormat.AUTO, stream=out)
    logging.getLogger("processor").warning("partition %d stuck", 4, extra={"fields": {"why": "x"}})
    line = out.getvalue().strip()
    assert not line.startswith("{")
    assert "WARNING" in line
    assert "processor: partition 4 stuck why=x" in line


def record(name: str, level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_transient_kafka_errors_are_debug_during_start_up_and_warnings_after() -> None:
    now = [0.0]
    noise = KafkaNoiseFilter(logging.INFO, grace_s=30, clock=lambda: now[0])
    early = record(
        "aiokafka.consumer.group_coordinator", logging.ERROR, "GroupCoordinatorNotAvailableError"
    )
    assert noise.filter(early) is False  # lowered to debug, below the threshold: dropped
    assert early.levelno == logging.DEBUG
    now[0] = 31.0
    late = record(
        "aiokafka.consumer.group_coordinator", logging.ERROR, "GroupCoordinatorNotAvailableError"
    )
    assert noise.filter(late) is True
    assert late.levelname == "WARNING"


def test_routine_client_chatter_is_debug_and_real_errors_pass() -> None:
    noise = KafkaNoiseFilter(logging.INFO, grace_s=0)
    chatter = record(
        "aiokafka.consumer.group_coordinator", logging.INFO, "Discovered coordinator 1"
    )
    assert noise.filter(chatter) is False
    failure = record("aiokafka.producer", logging.ERROR, "Unexpected error in sender routine")
    assert noise.filter(failure) is True
    assert failure.levelno == logging.ERROR
    ours = record("processor", logging.INFO, "Discovered coordinator")  # not a Kafka client
    assert noise.filter(ours) is True
