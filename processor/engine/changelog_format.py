"""The encoding of a changelog record's value (``changelog``): msgpack arrays, two versions.

Format 2 (written): a header is ``SessionHeader``; participants, inline in the header or in a
chunk record, are ``[participant_id, Participant]`` pairs and recordings are
``RecordingFacts``, both decoded straight into the engine's own structs (their field order is
part of this format). The session id is not repeated: it is in the record's key.

A Video session's participants are ``VideoParticipant``/``VideoCrowdParticipant``: the same
rows with one more element (their connections and streams); a header says its session's
source, and its inline rows and its chunks are decoded accordingly.

Format 1 (read, never written): the header repeats the session id and carries the summary as a
map; participants are flat rows. A partition restored from format 1 records is written back in
format 2 as its sessions change: a session restored from format 1 has every chunk marked
changed, so its next commit rewrites them with its header (a header of either format reads
chunks of its own format).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from processor.engine.session import (
    CrowdParticipant,
    Participant,
    RecordingFacts,
    VideoCrowdParticipant,
    VideoParticipant,
)
from schemas.events import EndedBy, SessionSummary, Source
from schemas.timestamps import Timestamp

FORMAT_VERSION = 2
PRIOR_VERSIONS = (1,)

ParticipantRecord = tuple[str, Participant]
"""A participant in the changelog: its id and its facts (a ``CrowdParticipant`` beyond the first
chunk)."""


class SummaryRow(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """``SessionSummary`` as an array (its field names are most of its size as a map)."""

    started_at: Timestamp | None
    ended_at: Timestamp
    duration_s: float
    unique_participants: int
    peak_concurrency: int
    total_joins: int
    participant_seconds: float
    recordings: int
    recorded_seconds: float
    ended_by: EndedBy
    revision: int
    screen_share_s: float = 0.0
    end_reason: str | None = None

    @classmethod
    def of(cls, summary: SessionSummary) -> SummaryRow:
        return cls(*msgspec.structs.astuple(summary))

    def summary(self) -> SessionSummary:
        # Named one by one: building a dict of them to unpack takes several times as long,
        # once per restored closed session.
        return SessionSummary(
            started_at=self.started_at,
            ended_at=self.ended_at,
            duration_s=self.duration_s,
            unique_participants=self.unique_participants,
            peak_concurrency=self.peak_concurrency,
            total_joins=self.total_joins,
            participant_seconds=self.participant_seconds,
            recordings=self.recordings,
            recorded_seconds=self.recorded_seconds,
            ended_by=self.ended_by,
            revision=self.revision,
            screen_share_s=self.screen_share_s,
            end_reason=self.end_reason,
        )


class SessionHeader(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """A session's header record. Untracked by the garbage collector, as ``SummaryRow``: one is
    decoded for every restored session and dropped right after, and nothing in it can refer
    back to it."""

    format_version: int
    room_id: str | None
    last_event_at: int
    last_received_at: int
    started_at: int | None
    session_started_seen: bool
    ended_at: int | None
    timed_out_at: int | None
    total_joins: int
    live_peak: int
    recordings: list[RecordingFacts]
    summary: SummaryRow | None
    published_digest: bytes
    unsettled_changes: int
    version: int
    chunks: int
    inline: list[ParticipantRecord] | None
    """A session with a single chunk carries it here: one record for most sessions."""
    source: Source = "meetings"
    tenant_id: str | None = None
    instance: int = 1
    end_reason: str | None = None
    emptied_at: int | None = None
    empty_ended_at: int | None = None
    opened_at: int = 0


class _VideoSessionHeader(SessionHeader, array_like=True, frozen=True, gc=False):
    """``SessionHeader`` of a Video session: its inline participants are Video ones."""

    inline: list[tuple[str, VideoParticipant]] | None  # type: ignore[assignment]


class _HeaderV1(msgspec.Struct, array_like=True, frozen=True):
    format_version: int
    session_id: str
    room_id: str | None
    last_event_at: int
    last_received_at: int
    started_at: int | None
    session_started_seen: bool
    ended_at: int | None
    timed_out_at: int | None
    total_joins: int
    live_peak: int
    recordings: list[RecordingFacts]
    """Format 1's recording rows have the fields of ``RecordingFacts``, in its order."""
    summary: SessionSummary | None
    published_digest: bytes
    unsettled_changes: int
    version: int
    chunks: int
    inline: list[_ParticipantV1] | None


class _ParticipantV1(msgspec.Struct, array_like=True, frozen=True):
    participant_id: str
    name: str | None
    is_host: bool
    participant_type: str | None
    joined_at: int | None
    left_at: int | None
    earlier: list[int] | None

    def record(self, chunk: int) -> ParticipantRecord:
        kind = Participant if chunk == 0 else CrowdParticipant
        return self.participant_id, kind(
            name=self.name,
            is_host=self.is_host,
            participant_type=self.participant_type,
            joined_at=self.joined_at,
            left_at=self.left_at,
            earlier=self.earlier,
        )


ENCODER = msgspec.msgpack.Encoder()
_HEADER = msgspec.msgpack.Decoder(SessionHeader)
_CHUNK = msgspec.msgpack.Decoder(list[ParticipantRecord])
_CROWD_CHUNK = msgspec.msgpack.Decoder(list[tuple[str, CrowdParticipant]])
_VIDEO_HEADER = msgspec.msgpack.Decoder(_VideoSessionHeader)
_VIDEO_CHUNK = msgspec.msgpack.Decoder(list[tuple[str, VideoParticipant]])
_VIDEO_CROWD_CHUNK = msgspec.msgpack.Decoder(list[tuple[str, VideoCrowdParticipant]])
_HEADER_V1 = msgspec.msgpack.Decoder(_HeaderV1)
_CHUNK_V1 = msgspec.msgpack.Decoder(list[_ParticipantV1])

_ARRAY16 = 0xDC
_FIXARRAY = range(0x90, 0xA0)


def format_version(value: bytes) -> int | None:
    """The format of a header, read off its first element without decoding the rest."""
    if len(value) >= 4 and value[0] == _ARRAY16:
        version = value[3]
    elif len(value) >= 2 and value[0] in _FIXARRAY:
        version = value[1]
    else:
        return None
    return version if version < 0x80 else None  # a positive fixint


def decode_header(value: bytes) -> SessionHeader:
    """A header of either format, as format 2 (raises ``msgspec.DecodeError``, or
    ``ValueError`` for an unknown format)."""
    version = format_version(value)
    if version == FORMAT_VERSION:
        header = _HEADER.decode(value)
        if header.source == "video" and header.inline is not None:
            return _VIDEO_HEADER.decode(value)  # its rows carry connections and streams
        return header
    if version != 1:
        raise ValueError(f"format {version}")
    old = _HEADER_V1.decode(value)
    return SessionHeader(
        format_version=1,
        room_id=old.room_id,
        last_event_at=old.last_event_at,
        last_received_at=old.last_received_at,
        started_at=old.started_at,
        session_started_seen=old.session_started_seen,
        ended_at=old.ended_at,
        timed_out_at=old.timed_out_at,
        total_joins=old.total_joins,
        live_peak=old.live_peak,
        recordings=old.recordings,
        summary=None if old.summary is None else SummaryRow.of(old.summary),
        published_digest=old.published_digest,
        unsettled_changes=old.unsettled_changes,
        version=old.version,
        chunks=old.chunks,
        inline=None if old.inline is None else [row.record(0) for row in old.inline],
    )


def decode_chunk(
    version: int, chunk: int, value: bytes, *, video: bool = False
) -> Sequence[ParticipantRecord]:
    """A chunk record's participants, in the format of the header that names it (of a Video
    session's header: Video participants)."""
    if video:
        return (_VIDEO_CHUNK if chunk == 0 else _VIDEO_CROWD_CHUNK).decode(value)
    if version == FORMAT_VERSION:
        return (_CHUNK if chunk == 0 else _CROWD_CHUNK).decode(value)
    return [row.record(chunk) for row in _CHUNK_V1.decode(value)]
