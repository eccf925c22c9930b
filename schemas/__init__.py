"""The pipeline's vocabulary: raw callbacks in, derived events and state out. Pure data, no I/O."""

from schemas.callbacks import (
    BaseCallback,
    Callback,
    ParticipantJoinedCallback,
    ParticipantLeftCallback,
    RecordingEndedCallback,
    RecordingReadyCallback,
    RecordingStartedCallback,
    RoomExpiredCallback,
    SessionEndedCallback,
    SessionStartedCallback,
)
from schemas.codec import decode_event, decode_state, encode
from schemas.decoding import DecodeFailure, FailureReason, decode_callback
from schemas.events import (
    AnyDerivedEvent,
    DerivedEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    RecordingEndedEvent,
    RecordingReadyEvent,
    RecordingStartedEvent,
    RoomExpiredEvent,
    SessionEndedEvent,
    SessionStartedEvent,
    SessionSummary,
)
from schemas.state import ActiveParticipant, RecordingState, SessionState

__all__ = [
    "ActiveParticipant",
    "AnyDerivedEvent",
    "BaseCallback",
    "Callback",
    "DecodeFailure",
    "DerivedEvent",
    "FailureReason",
    "ParticipantJoinedCallback",
    "ParticipantJoinedEvent",
    "ParticipantLeftCallback",
    "ParticipantLeftEvent",
    "RecordingEndedCallback",
    "RecordingEndedEvent",
    "RecordingReadyCallback",
    "RecordingReadyEvent",
    "RecordingStartedCallback",
    "RecordingStartedEvent",
    "RecordingState",
    "RoomExpiredCallback",
    "RoomExpiredEvent",
    "SessionEndedCallback",
    "SessionEndedEvent",
    "SessionStartedCallback",
    "SessionStartedEvent",
    "SessionState",
    "SessionSummary",
    "decode_callback",
    "decode_event",
    "decode_state",
    "encode",
]
