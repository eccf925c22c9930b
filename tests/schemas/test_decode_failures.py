"""Bad bodies come back as typed failures with the DLQ reason and the offending JSON path."""

from __future__ import annotations

import pytest

from schemas import DecodeFailure, FailureReason, decode_callback
from tests.callback_fixtures import invalid_body, invalid_names

EXPECTED: dict[str, tuple[FailureReason, str | None]] = {
    "array.json": (FailureReason.NOT_AN_OBJECT, "$"),
    "bad-duration.json": (FailureReason.INVALID_CALLBACK, "$.duration"),
    "double-encoded-array.json": (FailureReason.NOT_AN_OBJECT, "$"),
    "empty-session-id.json": (FailureReason.INVALID_CALLBACK, "$.session_id"),
    "event-not-a-string.json": (FailureReason.INVALID_CALLBACK, "$.event"),
    "missing-event.json": (FailureReason.INVALID_CALLBACK, "$.event"),
    "missing-session-id.json": (FailureReason.INVALID_CALLBACK, "$.session_id"),
    "negative-duration.json": (FailureReason.INVALID_CALLBACK, "$.duration"),
    "not-json.txt": (FailureReason.INVALID_JSON, None),
    "number.json": (FailureReason.NOT_AN_OBJECT, "$"),
    "timestamp-without-zone.json": (FailureReason.INVALID_CALLBACK, "$.started_at"),
    "truncated.json": (FailureReason.INVALID_JSON, None),
    "unknown-event.json": (FailureReason.UNKNOWN_EVENT, "$.event"),
}


def test_every_invalid_fixture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == invalid_names()


@pytest.mark.parametrize("name", invalid_names())
def test_invalid_fixture_fails_with_its_reason_and_path(name: str) -> None:
    failure = decode_callback(invalid_body(name))
    assert isinstance(failure, DecodeFailure)
    reason, path = EXPECTED[name]
    assert (failure.reason, failure.path) == (reason, path)
    assert failure.message


def test_unknown_event_keeps_the_event_name() -> None:
    failure = decode_callback(invalid_body("unknown-event.json"))
    assert isinstance(failure, DecodeFailure)
    assert failure.event == "session:paused"
    assert "session:paused" in failure.message


def test_field_errors_name_the_event_and_the_problem() -> None:
    failure = decode_callback(invalid_body("bad-duration.json"))
    assert isinstance(failure, DecodeFailure)
    assert failure.event == "recording:ended"
    assert failure.message.startswith("recording:ended: Expected `float`, got `str`")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", FailureReason.INVALID_JSON),
        (b"\xff\xfe", FailureReason.INVALID_JSON),
        (b"[" * 100_000, FailureReason.INVALID_JSON),
        (b"null", FailureReason.NOT_AN_OBJECT),
        (b'"not json inside"', FailureReason.NOT_AN_OBJECT),
        (b'{"event": "session:started", "session_id": 1, ]', FailureReason.INVALID_JSON),
        (b'{"event": null}', FailureReason.INVALID_CALLBACK),
    ],
)
def test_edge_bodies_fail_without_raising(body: bytes, reason: FailureReason) -> None:
    failure = decode_callback(body)
    assert isinstance(failure, DecodeFailure)
    assert failure.reason == reason


def test_failure_reasons_are_the_dlq_header_values() -> None:
    assert {reason.value for reason in FailureReason} == {
        "invalid_json",
        "not_an_object",
        "unknown_event",
        "invalid_callback",
    }
