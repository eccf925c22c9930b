"""Logging for both services: readable lines on a terminal, one JSON object per line otherwise.

``LOG_FORMAT=auto`` (the default) picks ``text`` when stderr is a terminal and ``json`` when it is
not (a container, a file, a log pipeline). Kafka clients report the expected transitions of a
starting cluster (no group coordinator yet, leaders being elected for new topics) as errors;
``KafkaNoiseFilter`` keeps those at debug level during a start-up grace period and as warnings
after it, so a clean start is quiet and a persisting problem is still seen. A broker that stops
accepting connections is reported once when it goes and once when it is back
(``servicekit.reachability``); aiokafka's line per failed attempt stays at debug.
"""

from __future__ import annotations

import enum
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from aiokafka.errors import (
    GroupCoordinatorNotAvailableError,
    LeaderNotAvailableError,
    NodeNotReadyError,
    NotCoordinatorForGroupError,
    NotLeaderForPartitionError,
    UnknownTopicOrPartitionError,
)

from servicekit.aiokafka_internals import CHATTER_LINES, CONNECT_FAILURE_LINES, TRANSIENT_LINES
from servicekit.reachability import watch_broker_connections
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


_TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    GroupCoordinatorNotAvailableError,
    NotCoordinatorForGroupError,
    LeaderNotAvailableError,
    NotLeaderForPartitionError,
    UnknownTopicOrPartitionError,
)
"""Errors a client meets while a cluster or a new topic settles: a line of aiokafka's whose
arguments carry one (an instance, its class or its class name) is transient."""
_TRANSIENT_NAMES = frozenset(error.__name__ for error in _TRANSIENT_ERRORS)
_KEYED: dict[tuple[str, str], str] = {
    **{(line.logger, line.template): "debug" for line in CHATTER_LINES},
    **{(line.logger, line.template): "debug" for line in CONNECT_FAILURE_LINES},
    **{(line.logger, line.template): "transient" for line in TRANSIENT_LINES},
}
"""aiokafka's lines by (logger name, message template): always debug, or transient."""


def _carries(args: object, errors: tuple[type[Exception], ...], names: frozenset[str]) -> bool:
    """Whether a record's arguments carry one of ``errors`` (instance, class or class name)."""
    if not isinstance(args, tuple):
        return False
    for arg in args:
        if isinstance(arg, errors):
            return True
        if isinstance(arg, type) and issubclass(arg, errors):
            return True
        if isinstance(arg, str) and arg in names:
            return True
    return False


_NOT_READY = (NodeNotReadyError,)
_NOT_READY_NAMES = frozenset({NodeNotReadyError.__name__})


class KafkaNoiseFilter(logging.Filter):
    """Lowers the level of the Kafka clients' expected start-up complaints and chatter.

    Lines are recognised by logger name and message template (``servicekit.aiokafka_internals``
    lists them), or by the error they carry, never by their formatted text."""

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
        kind = _KEYED.get((record.name, record.msg)) if isinstance(record.msg, str) else None
        if kind is None:
            if _carries(record.args, _NOT_READY, _NOT_READY_NAMES):
                kind = "debug"  # a request to a broker not connected: part of an outage
            elif _carries(record.args, _TRANSIENT_ERRORS, _TRANSIENT_NAMES):
                kind = "transient"
        if kind == "debug":
            _set_level(record, logging.DEBUG)
        elif kind == "transient":
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
    watch_broker_connections()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(threshold)
