"""Every example callback decodes to its canonical type, irregular inputs included."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas import (
    BaseCallback,
    ParticipantJoinedCallback,
    ParticipantLeftCallback,
    RecordingEndedCallback,
    RecordingReadyCallback,
    RecordingStartedCallback,
    RoomExpiredCallback,
    SessionEndedCallback,
    SessionStartedCallback,
    decode_callback,
)
from schemas.callbacks import CANONICAL_TYPES, EVENT_SPELLINGS
from tests.callback_fixtures import valid_body, valid_names

SESSION_ID = "2_MX40NjMzOTg5Mn5-MTYzNTg2ODQwODY4NH41cXIzMDdSa1BZa05BUDFpYnhxcTV4MCt-fg"
ROOM_ID = "b307d837-c0ce-4619-8c5c-70e418ef9693"

EXPECTED_TYPE: dict[str, type[BaseCallback]] = {
    "participant-joined-hyphen.json": ParticipantJoinedCallback,
    "participant-joined-no-type.json": ParticipantJoinedCallback,
    "participant-joined-short.json": ParticipantJoinedCallback,
    "participant-joined.json": ParticipantJoinedCallback,
    "participant-left-hyphen.json": ParticipantLeftCallback,
    "participant-left-short.json": ParticipantLeftCallback,
    "participant-left.json": ParticipantLeftCallback,
    "recording-ended-duration-string.json": RecordingEndedCallback,
    "recording-ended.json": RecordingEndedCallback,
    "recording-ready.json": RecordingReadyCallback,
    "recording-started.json": RecordingStartedCallback,
    "recording-uploaded-no-room.json": RecordingReadyCallback,
    "recording-uploaded.json": RecordingReadyCallback,
    "room-expired-long-term.json": RoomExpiredCallback,
    "room-expired.json": RoomExpiredCallback,
    "session-ended.json": SessionEndedCallback,
    "session-started-double-encoded.json": SessionStartedCallback,
    "session-started-extra-fields.json": SessionStartedCallback,
    "session-started-offset-timestamp.json": SessionStartedCallback,
    "session-started.json": SessionStartedCallback,
}


def decode_ok(name: str) -> BaseCallback:
    decoded = decode_callback(valid_body(name))
    assert isinstance(decoded, BaseCallback), decoded
    return decoded


def test_every_valid_fixture_has_an_expectation() -> None:
    assert sorted(EXPECTED_TYPE) == valid_names()


@pytest.mark.parametrize("name", valid_names())
def test_valid_fixture_decodes_to_its_canonical_type(name: str) -> None:
    decoded = decode_ok(name)
    assert isinstance(decoded, EXPECTED_TYPE[name])
    assert decoded.canonical_event == EXPECTED_TYPE[name].canonical_event
    if isinstance(decoded, RoomExpiredCallback):
        assert decoded.room_id == ROOM_ID
    else:
        assert getattr(decoded, "session_id", None) == SESSION_ID


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("session:participant:joined", "session:participant:joined"),
        ("participant:joined", "session:participant:joined"),
        ("participant-joined", "session:participant:joined"),
        ("session:participant:left", "session:participant:left"),
        ("participant:left", "session:participant:left"),
        ("participant-left", "session:participant:left"),
        ("recording:uploaded", "recording:uploaded"),
        ("recording:ready", "recording:uploaded"),
        ("room:expired", "room:expired"),
        ("session:started", "session:started"),
        ("session:ended", "session:ended"),
        ("recording:started", "recording:started"),
        ("recording:ended", "recording:ended"),
    ],
)
def test_every_spelling_maps_to_one_canonical_event(spelling: str, canonical: str) -> None:
    assert EVENT_SPELLINGS[spelling] == canonical


def test_there_are_eight_canonical_callbacks_and_thirteen_spellings() -> None:
    assert len(CANONICAL_TYPES) == 8
    assert len(EVENT_SPELLINGS) == 13


def test_duration_may_be_a_numeric_string() -> None:
    as_number = decode_ok("recording-ended.json")
    as_string = decode_ok("recording-ended-duration-string.json")
    assert isinstance(as_number, RecordingEndedCallback)
    assert isinstance(as_string, RecordingEndedCallback)
    assert as_number.duration == 2430.0
    assert as_string.duration == 2430.5


def test_participant_type_may_be_missing() -> None:
    decoded = decode_ok("participant-joined-no-type.json")
    assert isinstance(decoded, ParticipantJoinedCallback)
    assert decoded.type is None
    assert decode_ok("participant-joined.json") == ParticipantJoinedCallback(
        participant_id="b424e1c4-e988-4ce2-8ab9-e3efea7de542",
        session_id=SESSION_ID,
        room_id=ROOM_ID,
        name="New Joiner",
        type="Guest",
        is_host=True,
    )


def test_room_id_may_be_missing_on_recording_events() -> None:
    decoded = decode_ok("recording-uploaded-no-room.json")
    assert isinstance(decoded, RecordingReadyCallback)
    assert decoded.room_id is None
    assert decoded.url == "https://example.invalid/recordings/5f2c3a8e.mp4"
    started = decode_ok("recording-started.json")
    assert isinstance(started, RecordingStartedCallback)
    assert started.room_id is None


def test_unknown_extra_fields_are_ignored() -> None:
    assert decode_ok("session-started-extra-fields.json") == decode_ok("session-started.json")


def test_double_encoded_body_decodes_like_the_plain_one() -> None:
    assert decode_ok("session-started-double-encoded.json") == decode_ok("session-started.json")


def test_timestamps_are_aware_utc_datetimes() -> None:
    plain = decode_ok("session-started.json")
    shifted = decode_ok("session-started-offset-timestamp.json")
    expected = datetime(2021, 11, 2, 15, 53, 28, 753000, tzinfo=UTC)
    for decoded in (plain, shifted):
        assert isinstance(decoded, SessionStartedCallback)
        assert decoded.started_at == expected
        assert decoded.started_at.tzinfo is UTC
        assert decoded.event_time == expected


def test_event_time_is_the_callbacks_own_time_field_or_none() -> None:
    assert decode_ok("session-ended.json").event_time == datetime(
        2021, 11, 2, 16, 41, 2, 120000, tzinfo=UTC
    )
    assert decode_ok("recording-ended.json").event_time == datetime(
        2021, 11, 2, 16, 35, 30, 500000, tzinfo=UTC
    )
    assert decode_ok("room-expired.json").event_time == datetime(
        2021, 11, 2, 22, 53, 28, tzinfo=UTC
    )
    # join, left and recording:started carry no time: the processor uses the receive time.
    for name in ("participant-joined.json", "participant-left.json", "recording-started.json"):
        assert decode_ok(name).event_time is None


def test_is_host_defaults_to_false_and_name_to_none_when_absent() -> None:
    decoded = decode_callback(
        b'{"event":"participant:left","participant_id":"p","session_id":"s","room_id":"r"}'
    )
    assert isinstance(decoded, ParticipantLeftCallback)
    assert decoded.is_host is False
    assert decoded.name is None
