"""Derived events and SessionState: wire format, common fields, round trips."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import (
    ActiveParticipant,
    DerivedEvent,
    ParticipantLeftEvent,
    RecordingReadyEvent,
    RecordingState,
    RoomExpiredEvent,
    SessionEndedEvent,
    SessionStartedEvent,
    SessionState,
    SessionSummary,
    decode_event,
    decode_state,
    encode,
)
from schemas.events import DERIVED_EVENT_TYPES, event_type_name
from schemas.timestamps import (
    format_epoch_ms,
    format_timestamp,
    from_epoch_ms,
    parse_timestamp,
    to_epoch_ms,
)

SESSION = "2_MX40NjMzOTg5Mn5-MTYzNTg2ODQwODY4NH41cXIzMDdSa1BZa05BUDFpYnhxcTV4MCt-fg"
ROOM = "b307d837-c0ce-4619-8c5c-70e418ef9693"


def test_derived_event_types_are_those_of_the_spec() -> None:
    assert sorted(event_type_name(t) for t in DERIVED_EVENT_TYPES) == [
        "participant.attendance",
        "participant.joined",
        "participant.left",
        "recording.ended",
        "recording.expired",
        "recording.failed",
        "recording.paused",
        "recording.ready",
        "recording.resumed",
        "recording.started",
        "room.expired",
        "session.ended",
        "session.started",
        "stream.ended",
        "stream.started",
    ]


def test_every_derived_event_has_the_common_fields() -> None:
    common = {
        "type",
        "event_id",
        "occurred_at",
        "session_id",
        "room_id",
        "schema_version",
        "source",
        "tenant_id",
    }
    for event_type in DERIVED_EVENT_TYPES:
        schema = msgspec.json.schema(event_type)
        properties = schema["$defs"][event_type.__name__]["properties"]
        assert common <= set(properties), event_type


def test_every_session_keyed_event_carries_its_instance() -> None:
    for event_type in DERIVED_EVENT_TYPES:
        schema = msgspec.json.schema(event_type)
        properties = schema["$defs"][event_type.__name__]["properties"]
        assert ("instance" in properties) == (event_type is not RoomExpiredEvent), event_type


def test_session_started_wire_format() -> None:
    event = SessionStartedEvent(
        event_id="e1",
        occurred_at="2021-11-02T15:53:28.753Z",
        session_id=SESSION,
        room_id=ROOM,
        started_at="2021-11-02T15:53:28.753Z",
    )
    assert msgspec.json.decode(encode(event)) == {
        "type": "session.started",
        "event_id": "e1",
        "occurred_at": "2021-11-02T15:53:28.753Z",
        "session_id": SESSION,
        "room_id": ROOM,
        "schema_version": 1,
        "source": "meetings",
        "tenant_id": None,
        "instance": 1,
        "started_at": "2021-11-02T15:53:28.753Z",
    }


EXAMPLES: list[DerivedEvent] = [
    SessionEndedEvent(
        event_id="e2",
        occurred_at="2021-11-02T16:41:02.120Z",
        session_id=SESSION,
        room_id=ROOM,
        summary=SessionSummary(
            started_at="2021-11-02T15:53:28.753Z",
            ended_at="2021-11-02T16:41:02.120Z",
            duration_s=2853.367,
            unique_participants=3,
            peak_concurrency=2,
            total_joins=4,
            participant_seconds=4000.5,
            recordings=1,
            recorded_seconds=2430.5,
            ended_by="callback",
            revision=1,
        ),
    ),
    ParticipantLeftEvent(
        event_id="e3",
        occurred_at="2021-11-02T16:00:00.000Z",
        session_id=SESSION,
        room_id=ROOM,
        participant_id="p1",
        name="New Joiner",
        is_host=True,
        participant_type="Guest",
        joined_at=None,
        left_at="2021-11-02T16:00:00.000Z",
        duration_s=None,
        left_reason="session_ended",
    ),
    RecordingReadyEvent(
        event_id="e4",
        occurred_at="2021-11-02T16:35:30.500Z",
        session_id=SESSION,
        room_id=None,
        recording_id="r1",
        started_at="2021-11-02T15:55:00.000Z",
        ended_at="2021-11-02T16:35:30.500Z",
        duration_s=2430.5,
        url="https://example.invalid/r1.mp4",
    ),
    RoomExpiredEvent(
        event_id="e5",
        occurred_at="2021-11-02T22:53:28.000Z",
        session_id=None,
        room_id=ROOM,
        room_type="instant",
        expires_at="2021-11-02T22:53:28.000Z",
    ),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: type(e).__name__)
def test_derived_events_round_trip_through_the_union_decoder(event: DerivedEvent) -> None:
    assert decode_event(encode(event)) == event


def test_decoding_an_unknown_derived_type_is_an_error() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"Invalid value 'session\.paused'"):
        decode_event(b'{"type": "session.paused", "event_id": "x"}')


def test_session_state_round_trips() -> None:
    state = SessionState(
        session_id=SESSION,
        room_id=ROOM,
        status="active",
        started_at="2021-11-02T15:53:28.753Z",
        ended_at=None,
        duration_s=None,
        active_participants=[
            ActiveParticipant(
                participant_id="p1", name="A", is_host=True, joined_at="2021-11-02T15:54:00.000Z"
            )
        ],
        active_count=1,
        peak_concurrency=1,
        unique_participants=1,
        total_joins=1,
        recordings=[
            RecordingState(
                recording_id="r1", status="started", started_at="2021-11-02T15:55:00.000Z"
            )
        ],
        recording_active=True,
        last_event_at="2021-11-02T15:55:00.000Z",
        version=3,
    )
    assert decode_state(encode(state)) == state


def test_timestamps_are_published_with_milliseconds_and_z() -> None:
    moment = datetime(2021, 11, 2, 15, 53, 28, 753999, tzinfo=UTC)
    assert format_timestamp(moment) == "2021-11-02T15:53:28.753Z"
    assert format_timestamp(moment.replace(microsecond=0)) == "2021-11-02T15:53:28.000Z"
    assert format_epoch_ms(-1) == "1969-12-31T23:59:59.999Z"
    assert parse_timestamp("2021-11-02T16:53:28.753+01:00") == moment.replace(microsecond=753000)


@given(st.integers(min_value=-(10**12), max_value=4 * 10**12))
def test_epoch_ms_formatting_round_trips(epoch_ms: int) -> None:
    text = format_epoch_ms(epoch_ms)
    assert to_epoch_ms(parse_timestamp(text)) == epoch_ms
    assert from_epoch_ms(epoch_ms) == parse_timestamp(text)


@given(st.integers(min_value=-(10**12), max_value=4 * 10**12))
def test_epoch_ms_formatting_matches_isoformat(epoch_ms: int) -> None:
    expected = from_epoch_ms(epoch_ms).isoformat(timespec="milliseconds")
    assert format_epoch_ms(epoch_ms) == expected.removesuffix("+00:00") + "Z"
