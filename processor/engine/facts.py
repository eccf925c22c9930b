"""What the engine applies: facts about a session, whatever platform reported them.

Each source's adapter (``processor.sources``) translates its callbacks into these; the engine's
rules (stints, recordings, summaries, revisions, ids) are written once, against facts. A fact
carries event times as epoch milliseconds, already chosen by the adapter (the callback's own
time, else the ingest receive time), and nothing platform-specific beyond what the derived
events publish (a Video connection or stream id, a disconnect reason).

A new provider costs an adapter: decode its callbacks (a module of ``schemas``) and say which
of these facts each one is.
"""

from __future__ import annotations

import enum

import msgspec

from schemas.events import Source


class Origin(msgspec.Struct, frozen=True, gc=False):
    """Where a fact comes from: the session and the platform's own context."""

    session_id: str
    source: Source
    room_id: str | None = None
    """Meetings rooms; Video has none."""
    tenant_id: str | None = None
    """Video's ``applicationId``/``projectId``/``partnerId``; Meetings has none."""


class SessionBegan(msgspec.Struct, frozen=True, gc=False):
    """The platform says the session started at ``at`` (Meetings ``session:started``, Video
    ``sessionCreated``)."""

    origin: Origin
    at: int
    opens_instance: bool = False
    """The platform reuses session ids (Video): a begin after the session ended starts its
    next instance rather than being late news of the ended one."""


class SessionFinished(msgspec.Struct, frozen=True, gc=False):
    """The platform says the session ended at ``at`` (``session:ended``, ``sessionDestroyed``)."""

    origin: Origin
    at: int
    reported_start: int | None = None
    """The start the ending reports, used while no ``SessionBegan`` was seen (Meetings)."""
    reason: str | None = None
    """Why it ended, when the platform says (Video ``sessionDestroyed.reason``)."""
    opens_instance: bool = False
    """The platform reuses session ids (Video): an end timestamped after the session ended is
    the end of its next instance (whose begin is still to arrive)."""


class Person(msgspec.Struct, frozen=True, gc=False):
    """Who arrives or departs: a participant, and through which connection if the platform
    names one (Video; a person may then hold several at once)."""

    participant_id: str | None
    """``None``: not known from this callback (a Video ``connectionDestroyed`` whose token data
    was not repeated), so the person who opened ``connection_id`` departs."""
    connection_id: str | None = None
    name: str | None = None
    is_host: bool = False
    participant_type: str | None = None


class Arrived(msgspec.Struct, frozen=True, gc=False):
    origin: Origin
    person: Person
    at: int
    opens_instance: bool = False
    """As ``SessionBegan.opens_instance``: an arrival after the end starts the next instance."""


class Departed(msgspec.Struct, frozen=True, gc=False):
    origin: Origin
    person: Person
    at: int
    reason: str | None = None
    """The platform's disconnect reason (Video ``connectionDestroyed.reason``)."""


class StreamBegan(msgspec.Struct, frozen=True, gc=False):
    """A participant started publishing a stream (Video ``streamCreated``)."""

    origin: Origin
    stream_id: str
    person: Person
    video_type: str | None
    at: int


class StreamFinished(msgspec.Struct, frozen=True, gc=False):
    """A stream stopped (Video ``streamDestroyed``)."""

    origin: Origin
    stream_id: str
    person: Person
    video_type: str | None
    at: int
    began_at: int | None = None
    """The stream's own creation time, when the callback carries it."""
    reason: str | None = None


class Stage(enum.IntEnum):
    """What happened to a recording (the values order nothing; ``RecordingFacts`` does)."""

    STARTED = 1
    """Recording (first start, or a resume after a pause: the engine tells them apart)."""
    PAUSED = 2
    ENDED = 3
    READY = 4
    FAILED = 5
    EXPIRED = 6


class RecordingChanged(msgspec.Struct, frozen=True, gc=False):
    """A recording reached ``stage`` at ``at`` (Meetings ``recording:*``, Video ``archive``)."""

    origin: Origin
    recording_id: str
    stage: Stage
    at: int
    started_at: int | None = None
    """The platform's start of the recording, when this callback carries one."""
    ended_at: int | None = None
    duration_s: float | None = None
    url: str | None = None
    reason: str | None = None
    storage: str | None = None
    """``external`` or ``vonage`` for a ready Video archive."""
    url_expires_at: int | None = None
    size_bytes: int | None = None
    output_mode: str | None = None
    cycles: bool = False
    """The platform pauses and resumes recordings: a ``STARTED`` later than the first is a
    resumption (Video), not a retry (a Meetings retry's time is its later receive time)."""
    ready_ends: bool = False
    """A ready recording has ended: Video's ``uploaded`` may come before its ``stopped``,
    and the recording still ends once (the ``stopped`` then only refines it)."""


Fact = (
    SessionBegan
    | SessionFinished
    | Arrived
    | Departed
    | StreamBegan
    | StreamFinished
    | RecordingChanged
)
"""Any fact about a session."""
