"""The facts the engine keeps about one session, as slotted dataclasses and msgspec structs.

Everything published (the ``SessionState`` snapshot, summaries, derived events) is computed from
these facts. Participants follow the stint rules of contract §5.4 in raw-topic order, so
replaying the raw topic rebuilds the same facts; session and recording times take the minimum
over every copy seen (a Vonage retry is an exact duplicate that arrives later), flags only ever
turn on.

Sizes: a session keeps what it must remember and nothing twice. A participant's id is the key of
``Session.participants`` and appears elsewhere only as a reference to that same string; the
aggregates the snapshot needs (present count, stint count, peak) are kept up to date
incrementally, and a session of more than one changelog chunk also keeps its present
participants sorted (``Crowd``), so no callback and no snapshot walks more than a chunk's worth
of participants. Containers a session rarely needs are ``None`` until it does; the decoded id
strings are most of what a small session holds (``bench.processor_state`` measures it).
"""

from __future__ import annotations

import bisect
import sys
from dataclasses import dataclass, field

import msgspec

from schemas.events import EndedBy, LeftReason, SessionSummary, Source
from schemas.state import RecordingStatus, SessionStatus

CHUNK_PARTICIPANTS = 32
"""Participants per changelog chunk (``changelog``): a change rewrites one small chunk."""


class Connection(msgspec.Struct, array_like=True, gc=False):
    """One Video connection of a participant: open from ``opened_at`` until ``closed_at``.

    ``opened_at is None``: its end was seen before its start (held, like a Meetings left
    before its join)."""

    opened_at: int | None = None
    closed_at: int | None = None

    @property
    def open(self) -> bool:
        return self.opened_at is not None and self.closed_at is None


class Stream(msgspec.Struct, array_like=True, gc=False):
    """One Video stream a participant published, from ``started_at`` until ``ended_at``."""

    connection_id: str
    video_type: str | None
    started_at: int | None = None
    """``None``: its end was seen before its start."""
    ended_at: int | None = None
    reason: str | None = None
    own_end: bool = False
    """Whether its own ``streamDestroyed`` was seen (else its connection or the session ended
    it, and a later ``streamDestroyed`` still refines the end)."""

    @property
    def open(self) -> bool:
        return self.started_at is not None and self.ended_at is None


class PersonVideo(msgspec.Struct, array_like=True, gc=False):
    """A Video participant's connections and streams."""

    connections: dict[str, Connection] = msgspec.field(default_factory=dict)
    streams: dict[str, Stream] = msgspec.field(default_factory=dict)

    def kept_connection_id(self, connection_id: str) -> str:
        """The equal connection id this person keeps already, else ``connection_id``: a
        stream names its connection with the copy its person holds, not with one more
        (a connection id is an 85-byte string; a person has a connection or two)."""
        for kept in self.connections:
            if kept == connection_id:
                return kept
        return connection_id


class Participant(msgspec.Struct, array_like=True, gc=False):
    """One participant id's stints in a session (its id is its key in the session).

    The current (last) stint is ``joined_at``/``left_at``; earlier ones, always closed by a
    ``left``, are in ``earlier`` as ``[joined, left, joined, left, ...]``. States:

    * ``joined_at is None and left_at is None``: never the case once stored;
    * ``joined_at is None``, ``left_at`` set: a ``left`` held from before any join (contract §5.4);
    * ``joined_at`` set, ``left_at is None``: present — or, once the session is closed, sent
      away by the closing (a later ``left`` still refines the stint's end);
    * both set: absent, its last stint closed by a ``left``.

    A msgspec struct outside the garbage collector's tracking (it holds no reference back to
    anything that could form a cycle): 16 bytes less each, and restoring 100,000 sessions
    does not trigger collections that walk them all. Its fields, in order, are also its
    encoding in the changelog (``changelog``), which decodes rows straight into it.
    """

    name: str | None
    is_host: bool
    participant_type: str | None
    joined_at: int | None = None
    left_at: int | None = None
    earlier: list[int] | None = None

    @property
    def video(self) -> PersonVideo | None:
        """Video: the participant's connections and streams; a field of ``VideoParticipant``
        and ``VideoCrowdParticipant`` only, so a Meetings participant costs no slot for it."""
        return None

    @property
    def connections(self) -> dict[str, Connection] | None:
        """Video: the participant's connections by id. The live stint above follows them as
        callbacks arrive; attendance is their union by event time (``attended_stints``)."""
        return None if self.video is None else self.video.connections

    @property
    def streams(self) -> dict[str, Stream] | None:
        """Video: the streams the participant published, by stream id."""
        return None if self.video is None else self.video.streams

    def video_part(self) -> PersonVideo:
        raise TypeError("not a Video participant (Session.video_participant makes one)")

    @property
    def chunk(self) -> int:
        """The changelog chunk this participant is written in: the first, unless it is a
        ``CrowdParticipant`` (no slot for it in the participants of most sessions)."""
        return 0

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
        earlier = self.earlier
        if earlier is None:  # most participants: one stint or none
            return [] if self.joined_at is None else [(self.joined_at, self.left_at)]
        closed: list[tuple[int, int | None]] = [
            (earlier[i], earlier[i + 1]) for i in range(0, len(earlier), 2)
        ]
        if self.joined_at is not None:
            closed.append((self.joined_at, self.left_at))
        return closed

    def attended_stints(self) -> list[tuple[int, int | None]]:
        """The stints attendance reports: ``stints()``, or for a participant with connections
        their union by event time (a person is present while at least one connection is
        open: overlapping or touching connections are one stint), whatever the order their
        callbacks arrived in."""
        connections = self.connections
        if connections is None:
            return self.stints()
        spans = sorted(
            (
                (connection.opened_at, connection.closed_at)
                for connection in connections.values()
                if connection.opened_at is not None
            ),
            key=_span_order,
        )
        merged: list[tuple[int, int | None]] = []
        for opened, closed in spans:
            if merged:
                start, end = merged[-1]
                if end is None or opened <= end:
                    merged[-1] = (
                        start,
                        None if end is None or closed is None else max(end, closed),
                    )
                    continue
            merged.append((opened, closed))
        return merged

    def open_connections(self) -> int:
        connections = self.connections
        if connections is None:
            return 0
        return sum(1 for connection in connections.values() if connection.open)


class CrowdParticipant(Participant, array_like=True, gc=False):
    """A participant beyond a session's first chunk, which records its chunk."""

    chunk: int = 0  # a field here, always 0 as a property of Participant
    """Shared int objects: every member of a chunk refers to the same one."""


class VideoParticipant(Participant, array_like=True, gc=False):
    """A participant of a Video session: a ``Participant`` with its connections and streams
    (encoded after its stints: a row of the changelog's format, one element longer)."""

    video: PersonVideo | None = None  # a field here, always None as a property of Participant

    def video_part(self) -> PersonVideo:
        if self.video is None:
            self.video = PersonVideo()
        return self.video


class VideoCrowdParticipant(CrowdParticipant, array_like=True, gc=False):
    """A participant of a Video session beyond its first chunk."""

    video: PersonVideo | None = None

    def video_part(self) -> PersonVideo:
        if self.video is None:
            self.video = PersonVideo()
        return self.video


class ArchiveFacts(msgspec.Struct, array_like=True, gc=False):
    """What a Video archive has besides the stages every recording has."""

    paused: list[int] | None = None
    """Event times of its pauses."""
    resumed: list[int] | None = None
    """Event times of the ``started`` that followed its first (resumptions)."""
    failed_at: int | None = None
    expired_at: int | None = None
    reason: str | None = None
    """Why it stopped or failed, as the platform said."""
    storage: str | None = None
    url_expires_at: int | None = None
    size_bytes: int | None = None
    output_mode: str | None = None


class RecordingFacts(msgspec.Struct, array_like=True, gc=False):
    """One recording, keyed by ``recording_id``; each stage's callback may arrive in any order.

    Untracked by the garbage collector and encoded as itself in the changelog, as
    ``Participant`` (fields are only ever appended, with defaults)."""

    recording_id: str
    started_received_at: int | None = None
    """Earliest time of its start: the receive time of ``recording:started`` (Meetings), the
    event time of the first ``started`` (Video); ``None`` until it is seen."""
    ended_seen: bool = False
    ready_seen: bool = False
    started_at: int | None = None
    """The platform's start time, carried by ``recording:ended`` and ``recording:uploaded``
    (Meetings) or an archive's ``createdAt`` (Video)."""
    ended_at: int | None = None
    duration_s: float | None = None
    url: str | None = None
    archive: ArchiveFacts | None = None
    """What only a Video archive has (``None`` for Meetings recordings: one slot, not nine)."""

    def archive_part(self) -> ArchiveFacts:
        if self.archive is None:
            self.archive = ArchiveFacts()
        return self.archive

    @property
    def reason(self) -> str | None:
        return None if self.archive is None else self.archive.reason

    @property
    def failed_at(self) -> int | None:
        return None if self.archive is None else self.archive.failed_at

    @property
    def expired_at(self) -> int | None:
        return None if self.archive is None else self.archive.expired_at

    @property
    def paused(self) -> list[int] | None:
        return None if self.archive is None else self.archive.paused

    @property
    def status(self) -> RecordingStatus:
        """The furthest stage seen; never goes back (but a recording in progress may pause
        and resume)."""
        if self.expired_at is not None:
            return "expired"
        if self.failed_at is not None:
            return "failed"
        if self.ready_seen:
            return "ready"
        if self.ended_seen:
            return "ended"
        archive = self.archive
        if (
            archive is not None
            and archive.paused
            and (max(archive.paused) > max(archive.resumed or (-1,)))
        ):
            return "paused"
        return "started"

    @property
    def effective_started_at(self) -> int | None:
        """The platform's start time when known, else the time its start was seen."""
        return self.started_at if self.started_at is not None else self.started_received_at


@dataclass(slots=True)
class Crowd:
    """What a session of more than one changelog chunk keeps so that no callback and no commit
    walks all of its participants."""

    chunks: list[list[str]]
    """The participant ids of each changelog chunk, in order of first sighting."""
    present_at: list[int]
    """The open stints' join times of the present participants, sorted by (time, id); empty
    once the session is closed."""
    present_ids: list[str]
    """The present participants' ids, in the order of ``present_at`` (two flat lists rather
    than a list of pairs: 8 bytes per present participant instead of 64)."""
    dirty: int = field(default=0, compare=False)
    """Chunks changed since the changelog was last written (``changelog``): bit *n*, chunk *n*."""
    last_chunk: int = field(default=0, compare=False)
    """The number of the last chunk: one int object its members all refer to (rather than an
    equal copy each)."""

    def chunk_for_newcomer(self, participant_id: str) -> int:
        """Place a participant id seen for the first time in the last chunk (or a new one)."""
        chunks = self.chunks
        if len(chunks[-1]) >= CHUNK_PARTICIPANTS:
            chunks.append([])
            self.last_chunk = len(chunks) - 1
        chunks[-1].append(participant_id)
        return self.last_chunk

    def arrive(self, participant_id: str, joined_at: int) -> None:
        """Placed by (join time, id): a bisection, and an insertion that is at or near the end
        when joins arrive in time order."""
        index = self._position(participant_id, joined_at)
        self.present_at.insert(index, joined_at)
        self.present_ids.insert(index, participant_id)

    def depart(self, participant_id: str, joined_at: int) -> bool:
        """Whether the participant was present (and now is not)."""
        index = self._position(participant_id, joined_at)
        if index < len(self.present_ids) and self.present_ids[index] == participant_id:
            del self.present_at[index]
            del self.present_ids[index]
            return True
        return False

    def _position(self, participant_id: str, joined_at: int) -> int:
        times = self.present_at
        low = bisect.bisect_left(times, joined_at)
        high = bisect.bisect_right(times, joined_at, low)
        return bisect.bisect_left(self.present_ids, participant_id, low, high)


class Publication(msgspec.Struct, gc=False):
    """The summary last published in a ``session.ended``, and what revisions continue from."""

    summary: SessionSummary
    digest: bytes
    """Digest of the attendance published with ``summary``: a revision goes out only when the
    summary or an attendance report differs."""
    unsettled_changes: int = 0
    """Changes to the closed session since its last revision was considered (``lifecycle``)."""


@dataclass(slots=True)
class VideoSession:
    """What a Video session keeps besides the facts every session has."""

    tenant_id: str | None = None
    instance: int = 1
    """Which use of the session id (Video session ids are reusable; contract §7.6)."""
    opened_at: int = 0
    """Event time of the callback that opened this instance: with ``instance``, what tells its
    events' ids from those of an instance of the same number after the session id's state
    was dropped (past its retention) and the id was used again."""
    end_reason: str | None = None
    """The ``sessionDestroyed`` reason of the end, if one ended it."""
    connection_owners: dict[str, str] = field(default_factory=dict)
    """The participant id of each connection id seen; not in the changelog: it is read off
    the participants' connections on restore."""
    open_connections: int = 0
    """Connections open; 0 once the session is closed."""
    open_streams: int = 0
    """Streams being published; 0 once the session is closed."""
    emptied_at: int | None = None
    """Event time at which the last open connection closed, while none is open."""
    last_closed_at: int | None = None
    """The latest close time of any connection: when none is open, the session has been
    empty since then, whatever order the closes arrived in (not in the changelog: read off
    the connections on restore)."""
    empty_ended_at: int | None = None
    """Set while the session is closed by the empty rule: ``emptied_at`` at that moment."""
    previous: Session | None = None
    """The instance before this one, ended, kept for late callbacks until its retention."""
    previous_dirty: bool = field(default=False, compare=False)
    """Whether ``previous`` changed since the changelog was last written."""
    pending: list[tuple[bytes, bytes | None]] = field(default_factory=list, compare=False)
    """Tombstones the next changelog write starts with: the records of instances this one
    replaced or let go (``changelog``)."""


@dataclass(slots=True)
class Session:
    """One session's facts, plus the bookkeeping needed to emit each derived event once.

    What only a session of more than ``CHUNK_PARTICIPANTS`` participant ids needs (the list of
    each changelog chunk's members, the present participants kept sorted) is ``None`` in the
    others (most sessions): for them, both are read off ``participants`` when wanted.
    """

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
    active_count: int = 0
    """How many participants are present; 0 once the session is closed."""
    crowd: Crowd | None = None
    """What a session of more than one changelog chunk keeps besides; ``None`` in the others."""
    total_joins: int = 0
    """Stints started, over every participant."""
    live_peak: int = 0
    """The most participants present at once, as the callbacks were applied."""
    recording_facts: RecordingFacts | dict[str, RecordingFacts] | None = None
    """The recordings: none, the only one, or (from the second on) by ``recording_id`` in
    order of first sighting; read them with ``recordings`` and ``find_recording``."""
    published: Publication | None = None
    """The last summary published, once the session has closed."""
    version: int = 0
    """Incremented by every change, so an unchanged session keeps its snapshot's version."""
    split_parts: dict[int, int] | None = field(default=None, compare=False)
    """Changelog chunks (``-1``: the header) last written in more than one part, and how many."""
    video: VideoSession | None = None
    """What only a Video session has (``None`` for Meetings: one slot rather than many)."""

    # -- Video -----------------------------------------------------------------------------

    @property
    def source(self) -> Source:
        return "meetings" if self.video is None else "video"

    @property
    def tenant_id(self) -> str | None:
        return None if self.video is None else self.video.tenant_id

    @property
    def instance(self) -> int:
        return 1 if self.video is None else self.video.instance

    @property
    def end_reason(self) -> str | None:
        return None if self.video is None else self.video.end_reason

    @property
    def open_connections(self) -> int:
        return 0 if self.video is None else self.video.open_connections

    @property
    def open_streams(self) -> int:
        return 0 if self.video is None else self.video.open_streams

    @property
    def previous(self) -> Session | None:
        """The instance before this one, ended and still revisable by late callbacks."""
        return None if self.video is None else self.video.previous

    def video_part(self) -> VideoSession:
        """The Video part, made on first need (a session id both sources report on)."""
        if self.video is None:
            self.video = VideoSession()
        return self.video

    def owner_of(self, connection_id: str) -> str | None:
        return None if self.video is None else self.video.connection_owners.get(connection_id)

    def own(self, connection_id: str, participant_id: str) -> None:
        self.video_part().connection_owners[connection_id] = participant_id

    @property
    def summary(self) -> SessionSummary | None:
        """The last summary published in a ``session.ended``; revisions continue from it."""
        return None if self.published is None else self.published.summary

    @property
    def closed_at(self) -> int | None:
        """When the session ended; an end callback outranks an idle timeout, which outranks
        the (Video) empty rule."""
        if self.ended_at is not None:
            return self.ended_at
        if self.timed_out_at is not None:
            return self.timed_out_at
        video = self.video
        return None if video is None else video.empty_ended_at

    @property
    def empty_ended(self) -> bool:
        """Whether the (Video) empty rule closed the session, and nothing outranks it."""
        video = self.video
        return (
            video is not None
            and video.empty_ended_at is not None
            and self.ended_at is None
            and self.timed_out_at is None
        )

    @property
    def status(self) -> SessionStatus:
        if self.ended_at is not None or self.empty_ended:
            return "ended"
        if self.timed_out_at is not None:
            return "timed_out"
        return "active"

    @property
    def ended_by(self) -> EndedBy:
        """Who closed the session (meaningful once it is closed)."""
        if self.ended_at is not None:
            return "callback"
        return "timeout" if self.timed_out_at is not None else "empty"

    @property
    def closing_left_reason(self) -> LeftReason:
        """The ``left_reason`` of participants sent away by the session closing."""
        return "timeout" if self.ended_by == "timeout" else "session_ended"

    # -- participants ----------------------------------------------------------------------

    @property
    def chunk_count(self) -> int:
        """Changelog chunks of participants: 0 without participants."""
        if self.crowd is not None:
            return len(self.crowd.chunks)
        return 1 if self.participants else 0

    def chunk_members(self, chunk: int) -> list[str]:
        """The participant ids of one changelog chunk, in order of first sighting."""
        if self.crowd is not None:
            return self.crowd.chunks[chunk]
        return list(self.participants)

    def add_participant(
        self, participant_id: str, name: str | None, is_host: bool, participant_type: str | None
    ) -> Participant:
        """A participant id seen for the first time, placed in the last changelog chunk."""
        name = shared_name(name)
        participant_type = intern(participant_type)
        video = self.video is not None
        participant: Participant
        if self.crowd is None and len(self.participants) < CHUNK_PARTICIPANTS:
            kind = VideoParticipant if video else Participant
            participant = kind(name, is_host, participant_type)
        else:
            crowd = self.crowd if self.crowd is not None else self._become_crowd()
            crowd_kind = VideoCrowdParticipant if video else CrowdParticipant
            participant = crowd_kind(
                name, is_host, participant_type, chunk=crowd.chunk_for_newcomer(participant_id)
            )
        self.participants[participant_id] = participant
        return participant

    def video_participant(self, participant_id: str) -> Participant | None:
        """The participant, able to hold connections and streams: one a Meetings callback
        made first (a session id both sources report on) is made a Video one."""
        participant = self.participants.get(participant_id)
        if participant is None or participant.video is not None:
            return participant
        if isinstance(participant, VideoParticipant | VideoCrowdParticipant):
            return participant
        self.video_part()
        fields = msgspec.structs.astuple(participant)
        replacement: Participant
        if isinstance(participant, CrowdParticipant):
            replacement = VideoCrowdParticipant(*fields)
        else:
            replacement = VideoParticipant(*fields)
        self.participants[participant_id] = replacement
        return replacement

    def _become_crowd(self) -> Crowd:
        """The session outgrows its first chunk, which leaves the header for a record of its
        own; from now on the present participants are kept sorted, not sorted when read."""
        present_ids = self.present_ids()
        participants = self.participants
        self.crowd = Crowd(
            chunks=[list(participants)],
            present_at=[participants[pid].joined_at or 0 for pid in present_ids],
            present_ids=present_ids,
            dirty=1,
        )
        return self.crowd

    def touch(self, participant: Participant) -> None:
        """Mark a participant's chunk as changed, for the next changelog write."""
        if self.crowd is not None:
            self.crowd.dirty |= 1 << participant.chunk

    def present_ids(self) -> list[str]:
        """The present participants' ids, the earliest joined first (ties by id)."""
        if self.crowd is not None:
            return self.crowd.present_ids
        if not self.active_count:
            return []
        return sorted_present(self.participants)

    def arrive(self, participant_id: str, joined_at: int) -> None:
        self.active_count += 1
        if self.active_count > self.live_peak:
            self.live_peak = self.active_count
        if self.crowd is not None:
            self.crowd.arrive(participant_id, joined_at)

    def depart(self, participant_id: str, joined_at: int) -> None:
        if self.crowd is None or self.crowd.depart(participant_id, joined_at):
            self.active_count -= 1

    def send_everyone_away(self) -> None:
        self.active_count = 0
        if self.crowd is not None:
            self.crowd.present_at.clear()
            self.crowd.present_ids.clear()

    # -- recordings ------------------------------------------------------------------------

    @property
    def recordings(self) -> dict[str, RecordingFacts]:
        """The recordings by ``recording_id``, in order of first sighting (a view: add with
        ``add_recording``)."""
        facts = self.recording_facts
        if facts is None:
            return {}
        if isinstance(facts, RecordingFacts):
            return {facts.recording_id: facts}
        return facts

    @property
    def recording_count(self) -> int:
        facts = self.recording_facts
        if facts is None:
            return 0
        return 1 if isinstance(facts, RecordingFacts) else len(facts)

    def find_recording(self, recording_id: str) -> RecordingFacts | None:
        facts = self.recording_facts
        if isinstance(facts, RecordingFacts):
            return facts if facts.recording_id == recording_id else None
        return None if facts is None else facts.get(recording_id)

    def add_recording(self, recording: RecordingFacts) -> None:
        """A recording id seen for the first time."""
        facts = self.recording_facts
        if facts is None:
            self.recording_facts = recording
        elif isinstance(facts, RecordingFacts):
            self.recording_facts = {facts.recording_id: facts, recording.recording_id: recording}
        else:
            facts[recording.recording_id] = recording


def _span_order(span: tuple[int, int | None]) -> tuple[int, bool, int]:
    """Spans by start, an open one after the closed ones of the same start."""
    opened, closed = span
    return opened, closed is None, closed or 0


def sorted_present(participants: dict[str, Participant]) -> list[str]:
    """The present participants' ids by (open stint's join time, id)."""
    present = sorted(
        (participant.joined_at, participant_id)
        for participant_id, participant in participants.items()
        if participant.joined_at is not None and participant.left_at is None
    )
    return [participant_id for _, participant_id in present]


def intern(value: str | None) -> str | None:
    """One shared copy of a value from a handful (participant types: ``Guest``, ``Host``...;
    video types: ``camera``, ``screen``) instead of one per decoded callback."""
    return None if value is None else sys.intern(value)


SHARED_NAMES = 4096
"""Participant names remembered to share one copy between participants (and sessions)."""
_names: dict[str, str] = {}


def shared_name(name: str | None) -> str | None:
    """An equal name seen recently, else ``name``: people who attend many meetings, and the
    ``Guest`` of many others, keep one copy of their name rather than one per participant.

    The table is bounded (forgotten whole when full), so unique names cost it at most
    ``SHARED_NAMES`` entries; identity only, never a value, depends on it.
    """
    if name is None:
        return None
    known = _names.get(name)
    if known is not None:
        return known
    if len(_names) >= SHARED_NAMES:
        _names.clear()
    _names[name] = name
    return name
