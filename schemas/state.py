"""``SessionState``: the latest state of one session, published to the session-state topic.

Bounded whatever the session's size: it lists at most ``STATE_MAX_LISTED_PARTICIPANTS`` present
participants (the earliest joined first) and says whether some were left out; the counts are
always exact. What the processor needs beyond it to restore a session (every participant's
stints) lives in its own internal changelog topic.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from schemas.events import SCHEMA_VERSION, SessionSummary, Source
from schemas.timestamps import Timestamp

SessionStatus = Literal["active", "ended", "timed_out"]
RecordingStatus = Literal["started", "paused", "ended", "ready", "failed", "expired"]


class ActiveParticipant(msgspec.Struct, frozen=True, kw_only=True):
    participant_id: str
    name: str | None
    is_host: bool
    joined_at: Timestamp


class ParticipantRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A participant as earlier versions listed them in ``SessionState.participants``."""

    participant_id: str
    name: str | None
    is_host: bool
    participant_type: str | None = None
    joined_at: Timestamp | None = None
    left_at: Timestamp | None = None


class RecordingState(msgspec.Struct, frozen=True, kw_only=True):
    recording_id: str
    status: RecordingStatus
    """The furthest stage seen: ``expired`` > ``failed`` > ``ready`` > ``ended`` >
    ``paused``/``started`` (a Video archive cycles between those two while recording)."""
    started_at: Timestamp | None
    ended_at: Timestamp | None = None
    duration_s: float | None = None
    url: str | None = None
    stages_seen: list[RecordingStatus] = []
    """Every stage whose callback was seen, in lifecycle order (callbacks can skip stages)."""
    started_received_at: Timestamp | None = None
    """When ``recording:started`` was received; ``started_at`` prefers Vonage's own time."""


class SessionState(msgspec.Struct, frozen=True, kw_only=True):
    session_id: str
    room_id: str | None
    status: SessionStatus
    started_at: Timestamp | None
    ended_at: Timestamp | None
    duration_s: float | None
    """Set once the session has ended."""
    active_participants: list[ActiveParticipant]
    """Present participants with their open stint's ``joined_at``, the earliest joined first,
    at most ``STATE_MAX_LISTED_PARTICIPANTS`` of them."""
    active_count: int
    """How many participants are present (exact, even when the list is truncated)."""
    peak_concurrency: int
    """The most participants present at once: as callbacks arrived while the session is
    active, the summary's figure (from the stints' times) once it has ended."""
    unique_participants: int
    """Participant ids seen (joined or left)."""
    total_joins: int
    """Stints started (a participant who leaves and comes back counts once per return)."""
    recordings: list[RecordingState]
    recording_active: bool
    last_event_at: Timestamp | None
    version: int
    """Increments on every change."""
    schema_version: int = SCHEMA_VERSION
    participants: list[ParticipantRecord] = []
    """Deprecated, always empty: earlier versions listed every participant seen here, which made
    the state of a large session exceed Kafka's 1 MB. Attendance is in ``participant.attendance``
    (at the end) and the present participants in ``active_participants``."""
    active_participants_truncated: bool = False
    """Whether present participants were left out of ``active_participants``."""
    recordings_truncated: bool = False
    """Whether recordings were left out of ``recordings`` (only when their URLs together are
    very long: the state record stays far below Kafka's 1 MB); ``summary.recordings`` counts
    them all."""
    session_started_seen: bool = False
    """Whether ``session:started`` was seen (else ``started_at`` came from ``session:ended``)."""
    summary: SessionSummary | None = None
    """The summary of the latest ``session.ended`` published; ``None`` until the session ends."""
    last_received_at: Timestamp | None = None
    """Latest ingest receive time of a callback that changed the session (wall clock): idle
    expiry and retention are measured from it."""
    source: Source = "meetings"
    tenant_id: str | None = None
    instance: int = 1
    """Which use of the session id this state describes (contract §7.6); always 1 for Meetings."""
    active_connections: int = 0
    """Open Video connections (a participant may have several); 0 for Meetings."""
    active_streams: int = 0
    """Video streams being published."""
