"""Logging for both services: readable lines on a terminal, one JSON object per line otherwise.

``LOG_FORMAT=auto`` (the default) picks ``text`` when stderr is a terminal and ``json`` when it is
not (a container, a file, a log pipeline). Kafka clients report the expected transitions of a
starting cluster (no group coordinator yet, leaders being elected for new topics) as errors;
``KafkaNoiseFilter`` keeps those at debug level during a start-up grace period and as warnings
after it, so a clean start is quiet and a persisting problem is still seen.
"""

from __future__ import annotations

import enum
import logging
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from servicekit.settings import setting

FIELDS_ATTRIBUTE = "fields"
"""Pass structured fields as ``logger.info(msg, extra={"fields": {...}})``."""

LOG_LEVELS = ("debug", "info", "warning", "error")

STARTUP_GRACE_S = 30.0
"""How long after start-up the expected transient Kafka client complaints stay at debug."""

_STANDARD = {"ts", "level", "logger", "msg"}


class LogFormat(enum.StrEnum):
    AUTO = "auto"
    TEXT = "text"
    JSON = "json"


def log_format_setting() -> LogFormat:
    """The ``LOG_FORMAT`` setting, declared once for both services."""
    return setting(
        "LOG_FORMAT",
        LogFormat.AUTO,
        "`text` (readable lines), `json` (one object per line) or `auto`: text on a terminal, "
        "else JSON",
    )


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, FIELDS_ATTRIBUTE, None)
    if isinstance(fields, dict):
        return {k: v for k, v in fields.items() if k not in _STANDARD}
    return {}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """``12:00:01.234 INFO  processor: assigned partitions [0, 1] key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        line = f"{moment} {record.levelname:<7} {record.name}: {record.getMessage()}"
        fields = _fields(record)
        if fields:
            line += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


# What a Kafka client says while a cluster or a new topic settles. Matched on the message.
_TRANSIENT = re.compile(
    r"GroupCoordinatorNotAvailable|CoordinatorNotAvailable|NotCoordinator|"
    r"LeaderNotAvailable|NotLeaderForPartition|NotLeaderOrFollower|"
    r"UnknownTopicOrPartition|Topic .* not found in cluster metadata|"
    r"Heartbeat session expired|coordinator (is )?(dead|unavailable)"
)
# Routine client chatter that is not worth an info line in the services' own logs.
_CHATTER = re.compile(
    r"Discovered coordinator|Revoking previously assigned partitions|"
    r"Setting newly assigned partitions|Successfully synced group|Joined group|"
    r"Elected group leader|OffsetCommit failed for group .* due to group error|"
    r"(Re-)?joining group|Metadata for partition .* not available|"
    r"Updating subscribed topics|Subscribed to topic|LeaveGroup request succeeded"
)


class KafkaNoiseFilter(logging.Filter):
    """Lowers the level of the Kafka clients' expected start-up complaints and chatter."""

    def __init__(
        self,
        threshold: int,
        *,
        grace_s: float = STARTUP_GRACE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._threshold = threshold
        self._clock = clock
        self._grace_ends = clock() + grace_s

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka") or record.levelno <= logging.DEBUG:
            return True
        message = record.getMessage()
        if _CHATTER.search(message):
            _set_level(record, logging.DEBUG)
        elif _TRANSIENT.search(message):
            in_grace = self._clock() < self._grace_ends
            _set_level(record, logging.DEBUG if in_grace else min(record.levelno, logging.WARNING))
        # The handler's own level was checked before the level was lowered: check again.
        return record.levelno >= self._threshold


def _set_level(record: logging.LogRecord, level: int) -> None:
    record.levelno = level
    record.levelname = logging.getLevelName(level)


def resolve_format(fmt: LogFormat, stream: TextIO) -> LogFormat:
    if fmt is not LogFormat.AUTO:
        return fmt
    isatty = getattr(stream, "isatty", None)
    return LogFormat.TEXT if isatty is not None and isatty() else LogFormat.JSON


def configure_logging(
    level: str, fmt: LogFormat = LogFormat.AUTO, *, stream: TextIO | None = None
) -> None:
    """One handler on the root logger, on stderr; called by the entry points only."""
    out = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(out)
    chosen = resolve_format(fmt, out)
    handler.setFormatter(TextFormatter() if chosen is LogFormat.TEXT else JsonFormatter())
    threshold = logging.getLevelNamesMapping()[level.upper()]
    handler.addFilter(KafkaNoiseFilter(threshold))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(threshold)
