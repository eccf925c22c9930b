"""The facts the engine keeps about one session, as mutable slotted dataclasses.

Everything published (the ``SessionState`` snapshot, summaries, derived events) is computed from
these facts. Participants follow the stint rules of SPEC §5 in raw-topic order, so replaying the
raw topic rebuilds the same facts; session and recording times take the minimum over every copy
seen (a Vonage retry is an exact duplicate that arrives later), flags only ever turn on.

Sizes: a session keeps what it must remember and nothing twice. A participant's id is the key of
``Session.participants`` and appears elsewhere only as a reference to that same string; the
aggregates the snapshot needs (present participants in join order, stint count, peak) are kept
up to date incrementally, so no callback and no snapshot walks every participant.
"""

from __future__ import annotations

import bisect
import sys
from dataclasses import dataclass, field

from schemas.events import EndedBy, LeftReason, SessionSummary
from schemas.state import RecordingStatus, SessionStatus

CHUNK_PARTICIPANTS = 32
"""Participants per changelog chunk (``changelog``): a change rewrites one small chunk."""


@dataclass(slots=True)
class Participant:
    """One participant id's stints in a session (its id is its key in the session).

    The current (last) stint is ``joined_at``/``left_at``; earlier ones, always closed by a
    ``left``, are in ``earlier`` as ``[joined, left, joined, left, ...]``. States:

    * ``joined_at is None and left_at is None``: never the case once stored;
    * ``joined_at is None``, ``left_at`` set: a ``left`` held from before any join (SPEC §5);
    * ``joined_at`` set, ``left_at is None``: present — or, once the session is closed, sent
      away by the closing (a later ``left`` still refines the stint's end);
    * both set: absent, its last stint closed by a ``left``.
    """

    name: str | None
    is_host: bool
    participant_type: str | None
    chunk: int
    """The changelog chunk this participant is written in (shared int objects, see Session)."""
    joined_at: int | None = None
    left_at: int | None = None
    earlier: list[int] | None = None

    @property
    def stint_count(self) -> int:
        if self.joined_at is None:
            return 0
        return 1 + (0 if self.earlier is None else len(self.earlier) // 2)

    @property
    def present(self) -> bool:
        return self.joined_at is not None and self.left_at is None

    def stints(self) -> list[tuple[int, int | None]]:
        """Every stint as raw ``(joined, left)``, oldest first; ``left`` is ``None`` while open."""
        earlier = self.earlier or []
        closed: list[tuple[int, int | None]] = [
            (earlier[i], earlier[i + 1]) for i in range(0, len(earlier), 2)
        ]
        if self.joined_at is not None:
            closed.append((self.joined_at, self.left_at))
        return closed


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
    participants: dict[str, Participant] = field(default_factory=dict)
    """By ``participant_id``, in order of first sighting."""
    present_at: list[int] = field(default_factory=list)
    """The open stints' join times of the present participants, sorted by (time, id); empty
    once the session is closed. Its length is the exact active count."""
    present_ids: list[str] = field(default_factory=list)
    """The present participants' ids, in the order of ``present_at`` (two flat lists rather
    than a list of pairs: 8 bytes per present participant instead of 64)."""
    chunks: list[list[str]] = field(default_factory=list)
    """The participant ids of each changelog chunk, in order of first sighting."""
    total_joins: int = 0
    """Stints started, over every participant."""
    live_peak: int = 0
    """The most participants present at once, as the callbacks were applied."""
    recordings: dict[str, RecordingFacts] = field(default_factory=dict)
    summary: SessionSummary | None = None
    """The last summary published in a ``session.ended``; revisions continue from it."""
    published_digest: bytes = b""
    """Digest of the attendance published with ``summary``: a revision goes out only when the
    summary or an attendance report differs."""
    unsettled_changes: int = 0
    """Changes to the closed session since its last revision was considered (``lifecycle``)."""
    version: int = 0
    """Incremented by every change, so an unchanged session keeps its snapshot's version."""
    dirty_chunks: list[int] = field(default_factory=list, compare=False)
    """Changelog chunks changed since the changelog was last written (``changelog``), possibly
    repeated (a list costs a quarter of an empty set, and most sessions have one chunk)."""
    split_parts: dict[int, int] | None = field(default=None, compare=False)
    """Changelog chunks (``-1``: the header) last written in more than one part, and how many."""

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

    def add_participant(
        self, participant_id: str, name: str | None, is_host: bool, participant_type: str | None
    ) -> Participant:
        """A participant id seen for the first time, placed in the last changelog chunk."""
        chunks = self.chunks
        if not chunks or len(chunks[-1]) >= CHUNK_PARTICIPANTS:
            chunks.append([])
            chunk = len(chunks) - 1
            if chunk == 1:  # the first chunk leaves the header for a record of its own
                self.dirty_chunks.append(0)
        else:
            # Every member of a chunk refers to one int object rather than an equal copy each.
            chunk = self.participants[chunks[-1][0]].chunk
        chunks[-1].append(participant_id)
        participant = Participant(
            name=name, is_host=is_host, participant_type=intern(participant_type), chunk=chunk
        )
        self.participants[participant_id] = participant
        return participant

    def touch(self, participant: Participant) -> None:
        """Mark a participant's chunk as changed, for the next changelog write."""
        dirty = self.dirty_chunks
        if not dirty or dirty[-1] != participant.chunk:
            dirty.append(participant.chunk)

    @property
    def active_count(self) -> int:
        return len(self.present_ids)

    def arrive(self, participant_id: str, joined_at: int) -> None:
        """A present participant, placed by (join time, id): a bisection, and an insertion
        that is at or near the end when joins arrive in time order."""
        index = self._position(participant_id, joined_at)
        self.present_at.insert(index, joined_at)
        self.present_ids.insert(index, participant_id)
        self.live_peak = max(self.live_peak, len(self.present_ids))

    def depart(self, participant_id: str, joined_at: int) -> None:
        index = self._position(participant_id, joined_at)
        if index < len(self.present_ids) and self.present_ids[index] == participant_id:
            del self.present_at[index]
            del self.present_ids[index]

    def send_everyone_away(self) -> None:
        self.present_at.clear()
        self.present_ids.clear()

    def _position(self, participant_id: str, joined_at: int) -> int:
        times = self.present_at
        low = bisect.bisect_left(times, joined_at)
        high = bisect.bisect_right(times, joined_at, low)
        return bisect.bisect_left(self.present_ids, participant_id, low, high)


def intern(participant_type: str | None) -> str | None:
    """One shared copy of each participant type (a handful of values: ``Guest``, ``Host``...)
    instead of one per decoded callback."""
    return None if participant_type is None else sys.intern(participant_type)
