"""The Kafka topics of SPEC §4: names, keys, cleanup policies, headers and payloads.

Everything here is public API: downstream teams subscribe by these names and headers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import msgspec

from schemas.callbacks import Callback
from schemas.events import (
    DerivedEvent,
    ParticipantAttendanceEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    RecordingEndedEvent,
    RecordingReadyEvent,
    RecordingStartedEvent,
    RoomExpiredEvent,
    SessionEndedEvent,
    SessionStartedEvent,
)
from schemas.state import SessionState


class CleanupPolicy(enum.StrEnum):
    DELETE = "delete"
    COMPACT = "compact"


@dataclass(frozen=True, slots=True)
class TopicContract:
    name: str
    key: str
    """What the record key holds."""
    cleanup_policy: CleanupPolicy
    description: str
    events: tuple[type[DerivedEvent], ...] = ()
    """Derived event types published here (empty for raw, DLQ and state topics)."""
    payload: type[msgspec.Struct] | object | None = None
    """The payload type when it is not a derived event (state, raw callbacks)."""
    co_partitioned: bool = True
    """Keyed by ``session_id`` with the raw topic's partition count (SPEC §4 Partitioning)."""


# Headers on meetings.callbacks.raw (written by ingest).
HEADER_RECEIVED_AT = "received-at"
"""Epoch milliseconds at which ingest received the callback (also the record timestamp)."""
HEADER_SOURCE_ROUTE = "source-route"
HEADER_REQUEST_ID = "request-id"
HEADER_CONTENT_TYPE = "content-type"

# Headers added on meetings.callbacks.dlq (the raw record's own headers are kept).
HEADER_DLQ_REASON = "dlq-reason"
HEADER_DLQ_ERROR = "dlq-error"
HEADER_SOURCE_TOPIC = "source-topic"
HEADER_SOURCE_PARTITION = "source-partition"
HEADER_SOURCE_OFFSET = "source-offset"

RAW = TopicContract(
    name="meetings.callbacks.raw",
    key="session_id, else room_id",
    cleanup_policy=CleanupPolicy.DELETE,
    description="Every accepted callback body exactly as received, with ingest's headers.",
    payload=Callback,
)
DLQ = TopicContract(
    name="meetings.callbacks.dlq",
    key="as on the raw topic",
    cleanup_policy=CleanupPolicy.DELETE,
    description="Raw records the processor could not use, unchanged, with dlq-* and source-* "
    "headers saying why and where they came from.",
    payload=Callback,
    co_partitioned=False,
)
SESSION_STATE = TopicContract(
    name="meetings.session-state",
    key="session_id",
    cleanup_policy=CleanupPolicy.COMPACT,
    description="Latest SessionState of each session; a tombstone once a finished session "
    "passes its retention. Also the processor's changelog.",
    payload=SessionState,
)
SESSION_CHANGELOG = TopicContract(
    name="meetings.processor.session-changelog",
    key="the processor's own (session_id, chunk, part)",
    cleanup_policy=CleanupPolicy.COMPACT,
    description="Internal, not part of the contract: the processor's restore data (every "
    "participant's stints, in msgpack chunks), co-partitioned with the raw topic.",
)
"""Internal: listed in the README, left out of ``ALL_TOPICS`` and the AsyncAPI document."""
SESSIONS = TopicContract(
    name="meetings.sessions",
    key="session_id",
    cleanup_policy=CleanupPolicy.DELETE,
    description="Session lifecycle: session.started, session.ended with its summary.",
    events=(SessionStartedEvent, SessionEndedEvent),
)
PARTICIPANTS = TopicContract(
    name="meetings.participants",
    key="session_id",
    cleanup_policy=CleanupPolicy.DELETE,
    description="participant.joined and participant.left (one pair per stint, with its "
    "number, attendance and reason); at every session.ended one participant.attendance per "
    "participant id.",
    events=(ParticipantJoinedEvent, ParticipantLeftEvent, ParticipantAttendanceEvent),
)
RECORDINGS = TopicContract(
    name="meetings.recordings",
    key="recording_id",
    cleanup_policy=CleanupPolicy.DELETE,
    description="Recording lifecycle: recording.started, recording.ended, recording.ready.",
    events=(RecordingStartedEvent, RecordingEndedEvent, RecordingReadyEvent),
    co_partitioned=False,
)
ROOMS = TopicContract(
    name="meetings.rooms",
    key="room_id",
    cleanup_policy=CleanupPolicy.DELETE,
    description="room.expired.",
    events=(RoomExpiredEvent,),
    co_partitioned=False,
)

ALL_TOPICS: tuple[TopicContract, ...] = (
    RAW,
    DLQ,
    SESSION_STATE,
    SESSIONS,
    PARTICIPANTS,
    RECORDINGS,
    ROOMS,
)
DERIVED_TOPICS: tuple[TopicContract, ...] = (SESSIONS, PARTICIPANTS, RECORDINGS, ROOMS)
