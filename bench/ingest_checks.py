"""The request checks ingest runs before storing a callback, against the previous checks, per
call and in-process: what the hostile-input validation (full UTF-8 check, id lengths, content
encoding) adds to each request."""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from ingest.checks.validation import check_content_encoding, check_content_type, inspect_body
from schemas.decoding import validation_error_path

ROUNDS = 15
CALLS = 10_000


class _PreviousView(msgspec.Struct, frozen=True):
    """The view before: ``event`` and the two key fields, nothing bounded."""

    event: str
    session_id: str | None = None
    room_id: str | None = None


_PREVIOUS_BODY = msgspec.json.Decoder(_PreviousView | str)
Checks = Callable[[str, bytes], object]


def previous_checks(content_type: str, body: bytes) -> object:
    """The previous path: content type, then one msgspec pass (no UTF-8 check of skipped
    values, no id bounds, no encoding check)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        return None
    try:
        return _PREVIOUS_BODY.decode(body)
    except msgspec.ValidationError as exc:
        return validation_error_path(str(exc))


def current_checks(content_type: str, body: bytes) -> object:
    return check_content_type(content_type) or check_content_encoding(None) or inspect_body(body)


def nanoseconds_per_call(body: bytes) -> tuple[float, float]:
    """(previous, current) cost of one request's checks. Rounds are interleaved and the fastest
    of each kept: on a shared machine noise only ever adds time, to either side."""
    content_type = "application/json"
    samples: dict[Checks, list[float]] = {previous_checks: [], current_checks: []}
    for _ in range(ROUNDS):
        for checks, timings in samples.items():
            began = time.perf_counter_ns()
            for _ in range(CALLS):
                checks(content_type, body)
            timings.append((time.perf_counter_ns() - began) / CALLS)
    return min(samples[previous_checks]), min(samples[current_checks])
