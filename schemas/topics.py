"""The Kafka topics of contract §4, declared once: names, keys, cleanup, retention, routing,
headers.

Everything here is public API except the processor's internal changelog (``SESSION_CHANGELOG``,
what it restores its sessions from): downstream teams subscribe by these names and headers. Every
other part of the pipeline (ingest, the processor's routing and topic provisioning, the published
contract, the tools and the tests) reads topic knowledge from this module; a topic name is
written nowhere else. Names are the suffixes below under a prefix (``DEFAULT_PREFIX``, or the
services' ``MEETINGS_TOPIC_PREFIX``).
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

import msgspec

from schemas.callbacks import Callback
from schemas.events import (
    DerivedEvent,
    ParticipantAttendanceEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    RecordingEndedEvent,
    RecordingExpiredEvent,
    RecordingFailedEvent,
    RecordingPausedEvent,
    RecordingReadyEvent,
    RecordingResumedEvent,
    RecordingStartedEvent,
    RoomExpiredEvent,
    SessionEndedEvent,
    SessionStartedEvent,
    StreamEndedEvent,
    StreamStartedEvent,
)
from schemas.state import SessionState

DEFAULT_PREFIX = "meetings."
"""The prefix of every topic name unless configured otherwise."""


class CleanupPolicy(enum.StrEnum):
    DELETE = "delete"
    COMPACT = "compact"


class Retention(enum.StrEnum):
    """Which time retention a topic gets when it is created (the durations are settings)."""

    RAW = "raw"
    """Input and dead letters: ``RAW_RETENTION_MS``."""
    DERIVED = "derived"
    """Derived event topics: ``DERIVED_RETENTION_MS``."""
    NONE = "none"
    """Never deleted by time (the compacted session-state and changelog topics):
    ``retention.ms=-1``."""


@dataclass(frozen=True, slots=True)
class TopicContract:
    suffix: str
    """The name without its prefix: ``callbacks.raw`` is ``meetings.callbacks.raw``."""
    key: str
    """What the record key holds."""
    cleanup_policy: CleanupPolicy
    retention: Retention
    description: str
    events: tuple[type[DerivedEvent], ...] = ()
    """Derived event types published here (empty for the raw, DLQ, state and changelog topics)."""
    key_field: str | None = None
    """For derived topics: the event field whose value is the record key."""
    payload: type[msgspec.Struct] | object | None = None
    """The payload type when it is not a derived event (state, raw callbacks)."""
    co_partitioned: bool = True
    """Keyed by ``session_id`` with the raw topic's partition count (contract §4.2)."""
    public: bool = True
    """Part of the contract; internal topics are the processor's own and may change."""

    @property
    def name(self) -> str:
        """The name under ``DEFAULT_PREFIX``."""
        return self.name_under(DEFAULT_PREFIX)

    def name_under(self, prefix: str) -> str:
        return f"{prefix}{self.suffix}"


# Headers on the raw topic (written by ingest).
HEADER_RECEIVED_AT = "received-at"
"""Epoch milliseconds at which ingest received the callback (also the record timestamp)."""
HEADER_SOURCE_ROUTE = "source-route"
HEADER_REQUEST_ID = "request-id"
HEADER_CONTENT_TYPE = "content-type"

# Headers added on the DLQ topic (the raw record's own headers are kept).
HEADER_DLQ_REASON = "dlq-reason"
HEADER_DLQ_ERROR = "dlq-error"
HEADER_SOURCE_TOPIC = "source-topic"
HEADER_SOURCE_PARTITION = "source-partition"
HEADER_SOURCE_OFFSET = "source-offset"

RAW = TopicContract(
    suffix="callbacks.raw",
    key="session_id, else room_id",
    cleanup_policy=CleanupPolicy.DELETE,
    retention=Retention.RAW,
    description="Every accepted callback body exactly as received, with ingest's headers.",
    payload=Callback,
)
DLQ = TopicContract(
    suffix="callbacks.dlq",
    key="as on the raw topic",
    cleanup_policy=CleanupPolicy.DELETE,
    retention=Retention.RAW,
    description="Raw records the processor could not use, unchanged, with dlq-* and source-* "
    "headers saying why and where they came from.",
    payload=Callback,
    co_partitioned=False,
)
SESSION_STATE = TopicContract(
    suffix="session-state",
    key="session_id",
    cleanup_policy=CleanupPolicy.COMPACT,
    retention=Retention.NONE,
    description="Latest SessionState of each session (bounded: at most "
    "STATE_MAX_LISTED_PARTICIPANTS listed); a tombstone once a finished session passes its "
    "retention.",
    payload=SessionState,
)
SESSION_CHANGELOG = TopicContract(
    suffix="processor.session-changelog",
    key="the processor's own: msgpack [session_id, chunk, part]",
    cleanup_policy=CleanupPolicy.COMPACT,
    retention=Retention.NONE,
    description="Internal: what the processor restores sessions from (every participant's "
    "stints, in msgpack chunks of a few kilobytes), written per partition like the state.",
    public=False,
)
SESSIONS = TopicContract(
    suffix="sessions",
    key="session_id",
    cleanup_policy=CleanupPolicy.DELETE,
    retention=Retention.DERIVED,
    description="Session lifecycle: session.started, session.ended with its summary.",
    events=(SessionStartedEvent, SessionEndedEvent),
    key_field="session_id",
)
PARTICIPANTS = TopicContract(
    suffix="participants",
    key="session_id",
    cleanup_policy=CleanupPolicy.DELETE,
    retention=Retention.DERIVED,
    description="participant.joined and participant.left (one pair per stint, with its "
    "number, attendance and reason); at every session.ended one participant.attendance per "
    "participant id; stream.started and stream.ended (Video: camera, screen share).",
    events=(
        ParticipantJoinedEvent,
        ParticipantLeftEvent,
        ParticipantAttendanceEvent,
        StreamStartedEvent,
        StreamEndedEvent,
    ),
    key_field="session_id",
)
RECORDINGS = TopicContract(
    suffix="recordings",
    key="recording_id",
    cleanup_policy=CleanupPolicy.DELETE,
    retention=Retention.DERIVED,
    description="Recording lifecycle: recording.started, recording.ended, recording.ready; "
    "for Video archives also recording.paused, recording.resumed, recording.failed, "
    "recording.expired.",
    events=(
        RecordingStartedEvent,
        RecordingPausedEvent,
        RecordingResumedEvent,
        RecordingEndedEvent,
        RecordingReadyEvent,
        RecordingFailedEvent,
        RecordingExpiredEvent,
    ),
    key_field="recording_id",
    co_partitioned=False,
)
ROOMS = TopicContract(
    suffix="rooms",
    key="room_id",
    cleanup_policy=CleanupPolicy.DELETE,
    retention=Retention.DERIVED,
    description="room.expired.",
    events=(RoomExpiredEvent,),
    key_field="room_id",
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
    SESSION_CHANGELOG,
)
"""Every topic the pipeline uses, the raw topic first (provisioning relies on that order)."""

PUBLIC_TOPICS: tuple[TopicContract, ...] = tuple(topic for topic in ALL_TOPICS if topic.public)


def topic_of(event_type: type[DerivedEvent]) -> TopicContract:
    """The topic a derived event type is published to."""
    return _TOPIC_OF_EVENT[event_type]


def key_of(event: DerivedEvent) -> str:
    """The record key of a derived event: the value of its topic's ``key_field``."""
    key: str | None = getattr(event, _KEY_FIELD_OF_EVENT[type(event)])
    return key or ""


_TOPIC_OF_EVENT: dict[type[DerivedEvent], TopicContract] = {
    event_type: topic for topic in ALL_TOPICS for event_type in topic.events
}
_KEY_FIELD_OF_EVENT: dict[type[DerivedEvent], str] = {
    event_type: topic.key_field
    for topic in ALL_TOPICS
    if topic.key_field is not None
    for event_type in topic.events
}


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicNames:
    """Every topic's full name under one prefix."""

    prefix: str
    raw: str
    dlq: str
    session_state: str
    sessions: str
    participants: str
    recordings: str
    rooms: str
    changelog: str
    """Internal: the processor's changelog, which its restores read (``SESSION_CHANGELOG``)."""

    @classmethod
    @functools.cache  # a handful of prefixes per process
    def with_prefix(cls, prefix: str = DEFAULT_PREFIX) -> TopicNames:
        return cls(
            prefix=prefix,
            **{field: topic.name_under(prefix) for topic, field in _NAME_FIELDS.values()},
        )

    def of(self, topic: TopicContract) -> str:
        """``topic``'s name here (a replay's names read the raw topic under another prefix)."""
        name: str = getattr(self, _NAME_FIELDS[topic.suffix][1])
        return name


_NAME_FIELDS = {
    topic.suffix: (topic, field)
    for topic, field in (
        (RAW, "raw"),
        (DLQ, "dlq"),
        (SESSION_STATE, "session_state"),
        (SESSIONS, "sessions"),
        (PARTICIPANTS, "participants"),
        (RECORDINGS, "recordings"),
        (ROOMS, "rooms"),
        (SESSION_CHANGELOG, "changelog"),
    )
}
"""Each topic and its ``TopicNames`` field, by suffix: ``with_prefix`` and ``of`` both read it."""
