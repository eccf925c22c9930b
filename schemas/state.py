"""``SessionState``: the latest state of one session, published to ``meetings.session-state``.

That compacted topic is both a product (query the latest state of any session) and the processor's
changelog, restored on rebalance and restart.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from schemas.events import SCHEMA_VERSION
from schemas.timestamps import Timestamp

SessionStatus = Literal["active", "ended", "timed_out"]
RecordingStatus = Literal["started", "ended", "ready"]


class ActiveParticipant(msgspec.Struct, frozen=True, kw_only=True):
    participant_id: str
    name: str | None
    is_host: bool
    joined_at: Timestamp


class RecordingState(msgspec.Struct, frozen=True, kw_only=True):
    recording_id: str
    status: RecordingStatus
    started_at: Timestamp | None
    ended_at: Timestamp | None = None
    duration_s: float | None = None
    url: str | None = None


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
