"""Log lines: readable on a terminal, JSON elsewhere; Kafka clients' start-up noise kept down."""

from __future__ import annotations

import io
import json
import logging

from aiokafka.errors import GroupCoordinatorNotAvailableError, NotLeaderForPartitionError

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


def record(name: str, level: int, template: str, *args: object) -> logging.LogRecord:
    """A record as aiokafka makes it: a message template and its arguments."""
    return logging.LogRecord(name, level, __file__, 1, template, args or None, None)


def test_transient_kafka_errors_are_debug_during_start_up_and_warnings_after() -> None:
    now = [0.0]
    noise = KafkaNoiseFilter(logging.INFO, grace_s=30, clock=lambda: now[0])
    coordinator = "aiokafka.consumer.group_coordinator"
    unavailable = GroupCoordinatorNotAvailableError()
    early = record(coordinator, logging.ERROR, "Group Coordinator Request failed: %s", unavailable)
    assert noise.filter(early) is False  # lowered to debug, below the threshold: dropped
    assert early.levelno == logging.DEBUG
    now[0] = 31.0
    late = record(coordinator, logging.ERROR, "Group Coordinator Request failed: %s", unavailable)
    assert noise.filter(late) is True
    assert late.levelname == "WARNING"
    expired = record(
        coordinator, logging.ERROR, "Heartbeat session expired - marking coordinator dead"
    )
    assert noise.filter(expired) is True
    assert expired.levelname == "WARNING"
    # The error's class, or its name, as some of aiokafka's lines pass it.
    for arg in (NotLeaderForPartitionError, "UnknownTopicOrPartitionError"):
        line = record(coordinator, logging.ERROR, "OffsetCommit failed for group %s - %s", "g", arg)
        noise.filter(line)
        assert line.levelname == "WARNING"


def test_routine_client_chatter_is_debug_and_real_errors_pass() -> None:
    noise = KafkaNoiseFilter(logging.INFO, grace_s=0)
    chatter = record(
        "aiokafka.consumer.group_coordinator",
        logging.INFO,
        "Discovered coordinator %s for group %s",
        1,
        "g",
    )
    assert noise.filter(chatter) is False
    failure = record("aiokafka.producer", logging.ERROR, "Unexpected error in sender routine")
    assert noise.filter(failure) is True
    assert failure.levelno == logging.ERROR
    # Not a Kafka client: the same template from another logger is left alone.
    ours = record("processor", logging.INFO, "Discovered coordinator %s for group %s", 1, "g")
    assert noise.filter(ours) is True
    # Only the template decides, not text that happens to look like one.
    lookalike = record(
        "aiokafka.consumer.group_coordinator", logging.ERROR, "Discovered coordinator 1 for group g"
    )
    assert noise.filter(lookalike) is True
    assert lookalike.levelno == logging.ERROR
