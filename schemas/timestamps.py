"""Timestamps as published: ISO-8601 UTC with millisecond precision and ``Z`` (contract §4).

msgspec writes datetimes with microseconds, so published structs carry timestamps as strings
in exactly this form; these helpers convert at the edges.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec
from msgspec import Meta

_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"

Timestamp = Annotated[
    str,
    Meta(
        description="ISO-8601 UTC timestamp with milliseconds, e.g. 2021-11-02T15:53:28.753Z",
        extra_json_schema={"format": "date-time", "pattern": _PATTERN},
    ),
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATETIME_DECODER = msgspec.json.Decoder(Annotated[datetime, Meta(tz=True)])


def to_epoch_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch (sub-millisecond digits are dropped)."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(epoch_ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=epoch_ms)


_MILLIS_SUFFIX = tuple(f".{millis:03d}Z" for millis in range(1000))


@functools.lru_cache(maxsize=1 << 14)
def _format_second(epoch_second: int) -> str:
    return from_epoch_ms(epoch_second * 1000).isoformat(timespec="seconds").removesuffix("+00:00")


def format_epoch_ms(epoch_ms: int) -> Timestamp:
    # The second is cached and the milliseconds come from a table: a session's snapshot repeats
    # the same join and start times commit after commit, and events of one session cluster in
    # a few seconds, so almost every call is two lookups and a concatenation.
    epoch_second, millis = divmod(epoch_ms, 1000)
    return _format_second(epoch_second) + _MILLIS_SUFFIX[millis]


def clear_format_cache() -> None:
    """Drop the cached seconds (process-wide and bounded; measurements exclude it)."""
    _format_second.cache_clear()


def format_timestamp(moment: datetime) -> Timestamp:
    return format_epoch_ms(to_epoch_ms(moment))


def parse_timestamp(text: str) -> datetime:
    """The inverse of ``format_timestamp`` (accepts any RFC 3339 timestamp with a zone)."""
    parsed: datetime = _DATETIME_DECODER.decode(msgspec.json.encode(text))
    return parsed.astimezone(UTC)
