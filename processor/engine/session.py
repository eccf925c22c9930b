"""The facts the engine keeps about one session, as mutable slotted dataclasses.

Everything published (the ``SessionState`` snapshot, summaries, derived events) is computed from
these facts, never from the order the callbacks arrived in. Each fact is combined so that applying
the same callback again, or the same callbacks in another order, ends in the same facts: times take
the minimum over every copy seen (a Vonage retry is an exact duplicate that arrives later), flags
only ever turn on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.events import EndedBy, LeftReason, SessionSummary
from schemas.state import RecordingStatus, SessionStatus


@dataclass(slots=True)
class ParticipantFacts:
    """One participant, keyed by ``participant_id``.

    A participant that joins twice cannot be told apart from a retried join (no callback carries
    an id or a sequence number), so a ``participant_id`` has exactly one attendance: from its
    earliest join to its earliest left.
    """

    participant_id: str
    name: str | None
    is_host: bool
    participant_type: str | None
    joined_at: int | None = None
    """Earliest receive time of a join; ``None`` until a join is seen."""
    left_at: int | None = None
    """Earliest receive time of a left; ``None`` until a left is seen."""


@dataclass(slots=True)
class RecordingFacts:
    """One recording, keyed by ``recording_id``; each stage's callback may arrive in any order."""

    recording_id: str
    started_received_at: int | None = None
    """Earliest receive time of ``recording:started``; ``None`` until it is seen."""
    ended_seen: bool = False
    ready_seen: bool = False
    started_at: int | None = None
    """Vonage's start time, carried by ``recording:ended`` and ``recording:uploaded``."""
    ended_at: int | None = None
    duration_s: float | None = None
    url: str | None = None

    @property
    def status(self) -> RecordingStatus:
        """The furthest stage seen; never goes back."""
        if self.ready_seen:
            return "ready"
        if self.ended_seen:
            return "ended"
        return "started"

    @property
    def effective_started_at(self) -> int | None:
        """Vonage's start time when known, else the receive time of ``recording:started``."""
        return self.started_at if self.started_at is not None else self.started_received_at


@dataclass(slots=True)
class Session:
    """One session's facts, plus the bookkeeping needed to emit each derived event once."""

    session_id: str
    room_id: str | None
    last_event_at: int
    """Latest event time among the callbacks that changed a fact (duplicates do not count)."""
    last_received_at: int = 0
    """Latest ingest receive time (wall clock) among the callbacks that changed a fact: what
    idle expiry and retention are measured from."""
    started_at: int | None = None
    """From ``session:started``; from ``session:ended`` only while ``session:started`` is unseen."""
    session_started_seen: bool = False
    ended_at: int | None = None
    """From ``session:ended``; ``None`` until one is seen."""
    timed_out_at: int | None = None
    """Set while the session is closed by idle timeout: its last event time at that moment."""
    participants: dict[str, ParticipantFacts] = field(default_factory=dict)
    recordings: dict[str, RecordingFacts] = field(default_factory=dict)
    summary: SessionSummary | None = None
    """The last summary published in a ``session.ended``; revisions continue from it."""
    version: int = 0
    """Incremented by every change, so an unchanged session keeps its snapshot's version."""

    @property
    def closed_at(self) -> int | None:
        """When the session ended; a ``session:ended`` callback outranks an idle timeout."""
        return self.ended_at if self.ended_at is not None else self.timed_out_at

    @property
    def status(self) -> SessionStatus:
        if self.ended_at is not None:
            return "ended"
        if self.timed_out_at is not None:
            return "timed_out"
        return "active"

    @property
    def ended_by(self) -> EndedBy:
        """Who closed the session (meaningful once it is closed)."""
        return "callback" if self.ended_at is not None else "timeout"

    @property
    def closing_left_reason(self) -> LeftReason:
        """The ``left_reason`` of participants sent away by the session closing."""
        return "session_ended" if self.ended_at is not None else "timeout"

    def present_participants(self) -> list[tuple[int, ParticipantFacts]]:
        """``(joined_at, participant)`` for every participant joined and not seen leaving,
        ordered by join time then id."""
        present = [
            (participant.joined_at, participant)
            for participant in self.participants.values()
            if participant.joined_at is not None and participant.left_at is None
        ]
        present.sort(key=lambda pair: (pair[0], pair[1].participant_id))
        return present
