"""The processor's own restore data: ``Session`` ⇄ records of its internal changelog topic.

A session is written as a header (its own facts, recordings and summary bookkeeping) and one
chunk per ``CHUNK_PARTICIPANTS`` participants (their stints), each msgpack-encoded; a session
with at most one chunk of participants (most of them) carries it in its header: one record. A commit
rewrites the header of each changed session and only the chunks whose participants changed, so
the cost of a commit follows what changed, not the session's size. A header or chunk whose
encoding exceeds ``MAX_PART_BYTES`` is split into parts, so no record comes near Kafka's 1 MB.

Keys are ``msgpack([session_id, chunk, part])`` with chunk ``-1`` for the header; the topic is
compacted, so its latest records per key are exactly the sessions' latest facts, and reading a
partition from the start (``read_committed``) gives back what the last commit left.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import msgspec

from processor.engine.session import Participant, RecordingFacts, Session, intern
from schemas.events import SessionSummary

FORMAT_VERSION = 1
HEADER_CHUNK = -1
MAX_PART_BYTES = 512 * 1024
"""Largest value written: parts of a larger encoding go to further keys."""
_PART_COUNT = struct.Struct(">I")
"""Prefix of part 0: how many parts the encoding has."""


class RecordingRow(msgspec.Struct, array_like=True, frozen=True):
    recording_id: str
    started_received_at: int | None
    ended_seen: bool
    ready_seen: bool
    started_at: int | None
    ended_at: int | None
    duration_s: float | None
    url: str | None


class SessionHeader(msgspec.Struct, array_like=True, frozen=True):
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
    recordings: list[RecordingRow]
    summary: SessionSummary | None
    published_digest: bytes
    unsettled_changes: int
    version: int
    chunks: int
    inline: list[ParticipantRow] | None
    """A session with a single chunk carries it here: one record for most sessions."""


class ParticipantRow(msgspec.Struct, array_like=True, frozen=True):
    participant_id: str
    name: str | None
    is_host: bool
    participant_type: str | None
    joined_at: int | None
    left_at: int | None
    earlier: list[int] | None


_ENCODER = msgspec.msgpack.Encoder()
_HEADER = msgspec.msgpack.Decoder(SessionHeader)
_CHUNK = msgspec.msgpack.Decoder(list[ParticipantRow])
_KEY = msgspec.msgpack.Decoder(tuple[str, int, int])

Record = tuple[bytes, bytes | None]
"""A changelog record: key, value (``None`` is a tombstone)."""


class ChangelogError(ValueError):
    """Changelog records this engine cannot have written (incomplete or undecodable)."""


def changed_records(session: Session) -> list[Record]:
    """The records of everything changed since the last call: the header, the dirty chunks."""
    records = _encoded(session, HEADER_CHUNK, _header(session))
    if len(session.chunks) > 1:
        for chunk in sorted(set(session.dirty_chunks)):
            records.extend(_encoded(session, chunk, _rows(session, chunk)))
    session.dirty_chunks.clear()
    return records


def _rows(session: Session, chunk: int) -> list[ParticipantRow]:
    participants = session.participants
    return [_row(pid, participants[pid]) for pid in session.chunks[chunk]]


def all_records(session: Session) -> list[Record]:
    """Every record of the session, as if all of it had changed."""
    session.dirty_chunks[:] = range(len(session.chunks))
    return changed_records(session)


def tombstones(session: Session) -> list[Record]:
    """Tombstones for every record of the session (it leaves the changelog)."""
    records: list[Record] = []
    split = session.split_parts or {}
    separate = len(session.chunks) if len(session.chunks) > 1 else 0
    for chunk in range(HEADER_CHUNK, separate):
        parts = split.get(chunk, 1)
        records.extend((_key(session.session_id, chunk, part), None) for part in range(parts))
    return records


def restore_sessions(values: Iterable[tuple[bytes, bytes]]) -> list[Session]:
    """The sessions in a partition's latest changelog records (tombstoned keys left out)."""
    parts: dict[str, dict[int, dict[int, bytes]]] = {}
    for key, value in values:
        try:
            session_id, chunk, part = _KEY.decode(key)
        except msgspec.DecodeError as exc:
            raise ChangelogError(f"undecodable changelog key {key!r}") from exc
        parts.setdefault(session_id, {}).setdefault(chunk, {})[part] = value
    return [_restored(session_id, chunks) for session_id, chunks in parts.items()]


def _restored(session_id: str, chunks: dict[int, dict[int, bytes]]) -> Session:
    session = Session(session_id=session_id, room_id=None, last_event_at=0)
    try:
        header = _HEADER.decode(_joined(session, HEADER_CHUNK, chunks))
        if header.format_version != FORMAT_VERSION:
            raise ChangelogError(f"session {session_id}: format {header.format_version}")
        session = Session(
            session_id=header.session_id,
            room_id=header.room_id,
            last_event_at=header.last_event_at,
            last_received_at=header.last_received_at,
            started_at=header.started_at,
            session_started_seen=header.session_started_seen,
            ended_at=header.ended_at,
            timed_out_at=header.timed_out_at,
            total_joins=header.total_joins,
            live_peak=header.live_peak,
            recordings={row.recording_id: _recording(row) for row in header.recordings},
            summary=header.summary,
            published_digest=header.published_digest,
            unsettled_changes=header.unsettled_changes,
            version=header.version,
            split_parts=session.split_parts,
        )
        for chunk in range(header.chunks):
            if header.inline is not None:
                rows = header.inline
            else:
                rows = _CHUNK.decode(_joined(session, chunk, chunks))
            members: list[str] = []
            for row in rows:
                session.participants[row.participant_id] = Participant(
                    name=row.name,
                    is_host=row.is_host,
                    participant_type=intern(row.participant_type),
                    chunk=chunk,
                    joined_at=row.joined_at,
                    left_at=row.left_at,
                    earlier=row.earlier,
                )
                members.append(row.participant_id)
            session.chunks.append(members)
    except msgspec.DecodeError as exc:
        raise ChangelogError(f"session {session_id}: {exc}") from exc
    if session.closed_at is None:
        present = sorted(
            (participant.joined_at, participant_id)
            for participant_id, participant in session.participants.items()
            if participant.joined_at is not None and participant.left_at is None
        )
        session.present_at = [joined_at for joined_at, _ in present]
        session.present_ids = [participant_id for _, participant_id in present]
    return session


def _joined(session: Session, chunk: int, chunks: dict[int, dict[int, bytes]]) -> bytes:
    session_id = session.session_id
    parts = chunks.get(chunk, {})
    first = parts.get(0)
    if first is None or len(first) < _PART_COUNT.size:
        raise ChangelogError(f"session {session_id}: chunk {chunk} is missing")
    (count,) = _PART_COUNT.unpack_from(first)
    if count == 1:
        return first[_PART_COUNT.size :]
    if session.split_parts is None:
        session.split_parts = {}
    session.split_parts[chunk] = count
    pieces = [first[_PART_COUNT.size :]]
    for part in range(1, count):
        piece = parts.get(part)
        if piece is None:
            raise ChangelogError(f"session {session_id}: chunk {chunk} lacks part {part}")
        pieces.append(piece)
    return b"".join(pieces)


def _encoded(
    session: Session, chunk: int, value: msgspec.Struct | list[ParticipantRow]
) -> list[Record]:
    encoded = _ENCODER.encode(value)
    pieces = [encoded[i : i + MAX_PART_BYTES] for i in range(0, len(encoded), MAX_PART_BYTES)]
    pieces = pieces or [b""]
    session_id = session.session_id
    records: list[Record] = [
        (_key(session_id, chunk, 0), _PART_COUNT.pack(len(pieces)) + pieces[0]),
        *((_key(session_id, chunk, part), pieces[part]) for part in range(1, len(pieces))),
    ]
    # Parts a longer earlier encoding needed and this one does not: tombstoned.
    split = session.split_parts
    before = 1 if split is None else split.get(chunk, 1)
    records.extend((_key(session_id, chunk, part), None) for part in range(len(pieces), before))
    if len(pieces) > 1:
        if split is None:
            split = session.split_parts = {}
        split[chunk] = len(pieces)
    elif split is not None:
        split.pop(chunk, None)
    return records


def _key(session_id: str, chunk: int, part: int) -> bytes:
    return _ENCODER.encode((session_id, chunk, part))


def _header(session: Session) -> SessionHeader:
    return SessionHeader(
        format_version=FORMAT_VERSION,
        session_id=session.session_id,
        room_id=session.room_id,
        last_event_at=session.last_event_at,
        last_received_at=session.last_received_at,
        started_at=session.started_at,
        session_started_seen=session.session_started_seen,
        ended_at=session.ended_at,
        timed_out_at=session.timed_out_at,
        total_joins=session.total_joins,
        live_peak=session.live_peak,
        recordings=[_recording_row(recording) for recording in session.recordings.values()],
        summary=session.summary,
        published_digest=session.published_digest,
        unsettled_changes=session.unsettled_changes,
        version=session.version,
        chunks=len(session.chunks),
        inline=_rows(session, 0) if len(session.chunks) == 1 else None,
    )


def _row(participant_id: str, participant: Participant) -> ParticipantRow:
    return ParticipantRow(
        participant_id=participant_id,
        name=participant.name,
        is_host=participant.is_host,
        participant_type=participant.participant_type,
        joined_at=participant.joined_at,
        left_at=participant.left_at,
        earlier=participant.earlier,
    )


def _recording_row(recording: RecordingFacts) -> RecordingRow:
    return RecordingRow(
        recording_id=recording.recording_id,
        started_received_at=recording.started_received_at,
        ended_seen=recording.ended_seen,
        ready_seen=recording.ready_seen,
        started_at=recording.started_at,
        ended_at=recording.ended_at,
        duration_s=recording.duration_s,
        url=recording.url,
    )


def _recording(row: RecordingRow) -> RecordingFacts:
    return RecordingFacts(
        recording_id=row.recording_id,
        started_received_at=row.started_received_at,
        ended_seen=row.ended_seen,
        ready_seen=row.ready_seen,
        started_at=row.started_at,
        ended_at=row.ended_at,
        duration_s=row.duration_s,
        url=row.url,
    )
