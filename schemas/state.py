"""``SessionState``: the latest state of one session, published to the session-state topic.

That compacted topic is both a product (query the latest state of any session) and the processor's
changelog, restored on rebalance and restart.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from schemas.events import SCHEMA_VERSION, SessionSummary
from schemas.timestamps import Timestamp

SessionStatus = Literal["active", "ended", "timed_out"]
RecordingStatus = Literal["started", "ended", "ready"]


class ActiveParticipant(msgspec.Struct, frozen=True, kw_only=True):
    participant_id: str
    name: str | None
    is_host: bool
    joined_at: Timestamp


class ParticipantRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What is known about one participant of the session, present or gone."""

    participant_id: str
    name: str | None
    is_host: bool
    participant_type: str | None = None
    """The callback's ``type`` (e.g. ``Guest``), when it had one."""
    joined_at: Timestamp | None = None
    """Earliest join seen (ingest receive time); ``None`` when only its left was seen."""
    left_at: Timestamp | None = None
    """Earliest left seen (ingest receive time); ``None`` when no left callback was seen."""


class RecordingState(msgspec.Struct, frozen=True, kw_only=True):
    recording_id: str
    status: RecordingStatus
    """The furthest stage seen: ``ready`` > ``ended`` > ``started``."""
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
    active_count: int
    peak_concurrency: int
    unique_participants: int
    total_joins: int
    recordings: list[RecordingState]
    recording_active: bool
    last_event_at: Timestamp | None
    version: int
    """Increments on every change."""
    schema_version: int = SCHEMA_VERSION
    participants: list[ParticipantRecord] = []
    """Every participant seen (joined or left), by ``participant_id``."""
    session_started_seen: bool = False
    """Whether ``session:started`` was seen (else ``started_at`` came from ``session:ended``)."""
    summary: SessionSummary | None = None
    """The summary of the latest ``session.ended`` published; ``None`` until the session ends."""
    last_received_at: Timestamp | None = None
    """Latest ingest receive time of a callback that changed the session (wall clock): idle
    expiry and retention are measured from it."""
