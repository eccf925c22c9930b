"""The processor's own restore data: ``Session`` ⇄ records of its internal changelog topic.

A session is written as a header (its own facts, recordings and summary bookkeeping) and one
chunk per ``CHUNK_PARTICIPANTS`` participants (their stints), each msgpack-encoded
(``changelog_format``: the current format, and the earlier one still read); a session
with at most one chunk of participants (most of them) carries it in its header: one record. A commit
rewrites the header of each changed session and only the chunks whose participants changed, so
the cost of a commit follows what changed, not the session's size. A header or chunk whose
encoding exceeds ``MAX_PART_BYTES`` is split into parts, so no record comes near Kafka's 1 MB.

Keys are ``msgpack([session_id, chunk, part])`` with chunk ``-1`` for the header. A Video session
id's previous instance (ended, still revisable) is written under the same session id in a second
key space: chunk ``-2`` for its header and ``-3 - n`` for its chunk *n*. When a new instance
begins, the records the replaced one had in the first space are tombstoned, and it is written
whole in the second (``VideoSession.pending``). The topic is compacted, so its latest records
per key are exactly the sessions' latest facts, and reading a partition from the start
(``read_committed``) gives back what the last commit left.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import msgspec

from processor.engine.changelog_format import (
    ENCODER,
    FORMAT_VERSION,
    ParticipantRecord,
    SessionHeader,
    SummaryRow,
    decode_chunk,
    decode_header,
)
from processor.engine.session import (
    Crowd,
    CrowdParticipant,
    Participant,
    Publication,
    RecordingFacts,
    Session,
    VideoSession,
    intern,
    shared_name,
    sorted_present,
)

HEADER_CHUNK = -1
PREVIOUS_HEADER_CHUNK = -2
"""The header of a session id's previous instance; its chunk *n* is ``-3 - n``."""
MAX_PART_BYTES = 512 * 1024
"""Largest value written: parts of a larger encoding go to further keys."""
_PART_COUNT = struct.Struct(">I")
"""Prefix of part 0: how many parts the encoding has."""
_ONE_PART = _PART_COUNT.pack(1)
_KEY = msgspec.msgpack.Decoder(tuple[str, int, int])

Record = tuple[bytes, bytes | None]
"""A changelog record: key, value (``None`` is a tombstone)."""


class ChangelogError(ValueError):
    """Changelog records this engine cannot have written (incomplete or undecodable)."""


def changed_records(session: Session) -> list[Record]:
    """The records of everything changed since the last call: the header, the dirty chunks
    (and, for a Video session id, what its instances' changes require)."""
    video = session.video
    records: list[Record] = []
    if video is not None and video.pending:
        records.extend(video.pending)  # tombstones first: the records below may rewrite keys
        video.pending = []
    records.extend(_instance_records(session, previous=False))
    previous = None if video is None else video.previous
    if previous is not None and video is not None and video.previous_dirty:
        records.extend(_instance_records(previous, previous=True))
        video.previous_dirty = False
    return records


def _instance_records(session: Session, *, previous: bool) -> list[Record]:
    records = _encoded(session, HEADER_CHUNK, _header(session), previous)
    crowd = session.crowd
    if crowd is not None:
        for chunk in _set_bits(crowd.dirty):
            records.extend(_encoded(session, chunk, _rows(session, chunk), previous))
        crowd.dirty = 0
    return records


def _set_bits(mask: int) -> list[int]:
    return [bit for bit, digit in enumerate(reversed(f"{mask:b}")) if digit == "1"]


def _rows(session: Session, chunk: int) -> list[ParticipantRecord]:
    participants = session.participants
    return [(pid, participants[pid]) for pid in session.chunk_members(chunk)]


def all_records(session: Session) -> list[Record]:
    """Every record of the session (and of its previous instance), as if all of it had
    changed; tombstones still owed for replaced instances are not among them."""
    _mark_all(session)
    records = _instance_records(session, previous=False)
    previous = session.previous
    if previous is not None and session.video is not None:
        _mark_all(previous)
        records.extend(_instance_records(previous, previous=True))
        session.video.previous_dirty = False
    return records


def _mark_all(session: Session) -> None:
    if session.crowd is not None:
        session.crowd.dirty = (1 << session.chunk_count) - 1


def tombstones(session: Session) -> list[Record]:
    """Tombstones for every record of the session (it leaves the changelog)."""
    records = list(session.video.pending) if session.video is not None else []
    records.extend(instance_tombstones(session, previous=False))
    if session.previous is not None:
        records.extend(instance_tombstones(session.previous, previous=True))
    return records


def instance_tombstones(session: Session, *, previous: bool) -> list[Record]:
    """Tombstones for the records one instance has in one key space (as last written)."""
    records: list[Record] = []
    split = session.split_parts or {}
    separate = 0 if session.crowd is None else len(session.crowd.chunks)
    for chunk in range(HEADER_CHUNK, separate):
        parts = split.get(chunk, 1)
        key_chunk = _key_chunk(chunk, previous)
        records.extend(
            (changelog_key(session.session_id, key_chunk, part), None) for part in range(parts)
        )
    return records


def _key_chunk(chunk: int, previous: bool) -> int:
    """The chunk number in a record's key: the instance's own, or the previous-instance one."""
    if not previous:
        return chunk
    return PREVIOUS_HEADER_CHUNK if chunk == HEADER_CHUNK else -3 - chunk


def _own_chunk(key_chunk: int) -> tuple[bool, int]:
    """Whether a key's chunk belongs to the previous instance, and its own chunk number."""
    if key_chunk >= HEADER_CHUNK:
        return False, key_chunk
    return True, HEADER_CHUNK if key_chunk == PREVIOUS_HEADER_CHUNK else -3 - key_chunk


def session_of_key(key: bytes) -> str:
    """The session id a changelog key belongs to; ``ChangelogError`` for a foreign key."""
    try:
        session_id, _, _ = _KEY.decode(key)
    except msgspec.DecodeError as exc:
        raise ChangelogError(f"undecodable changelog key {key!r}") from exc
    return session_id


def overlaid(session: Session | None, records: Mapping[bytes, bytes | None]) -> Session | None:
    """``session`` (or no session) after ``records`` of its keys, written to the changelog by
    another owner since ``session`` was last committed: its own latest records with these laid
    over them, read back. ``None`` when no header is left (the other owner tombstoned it).

    A record the other owner did not rewrite is the same on the changelog as in ``session``,
    since ``session`` is what the changelog held when this owner last wrote it."""
    latest: dict[bytes, bytes | None] = dict(all_records(session)) if session is not None else {}
    latest.update(records)
    live = {key: value for key, value in latest.items() if value is not None}
    if not any(_KEY.decode(key)[1:] == (HEADER_CHUNK, 0) for key in live):
        return None  # tombstoned whole (a stray chunk without its header is not a session)
    (restored,) = restore_sessions(live.items())
    return restored


def restore_sessions(values: Iterable[tuple[bytes, bytes]]) -> list[Session]:
    """The sessions in a partition's latest changelog records (tombstoned keys left out), in
    the order their first records come."""
    headers: dict[str, bytes | None] = {}  # part 0 of each header: most sessions' only record
    others: dict[str, dict[int, dict[int, bytes]]] = {}
    earlier: dict[str, dict[int, dict[int, bytes]]] = {}  # previous instances
    for key, value in values:
        try:
            session_id, chunk, part = _KEY.decode(key)
        except msgspec.DecodeError as exc:
            raise ChangelogError(f"undecodable changelog key {key!r}") from exc
        if chunk == HEADER_CHUNK and part == 0:
            headers[session_id] = value
        elif chunk < HEADER_CHUNK:
            _, own = _own_chunk(chunk)
            earlier.setdefault(session_id, {}).setdefault(own, {})[part] = value
        else:
            headers.setdefault(session_id, None)
            others.setdefault(session_id, {}).setdefault(chunk, {})[part] = value
    sessions = []
    for session_id, first in headers.items():
        session = _restored(session_id, first, others.get(session_id, {}))
        chunks = earlier.get(session_id)
        if chunks is not None:
            previous = _restored(session_id, chunks.get(HEADER_CHUNK, {}).pop(0, None), chunks)
            session.video_part().previous = previous
        sessions.append(session)
    return sessions


@dataclass(slots=True)
class _ConnectionTally:
    """What a restored Video session keeps besides its participants, read off their
    connections and streams (not in the changelog: it follows from them)."""

    owners: dict[str, str] = field(default_factory=dict)
    open_connections: int = 0
    open_streams: int = 0
    last_closed_at: int | None = None

    def add(self, participant_id: str, participant: Participant) -> None:
        video = participant.video
        if video is None:
            return
        for connection_id, connection in video.connections.items():
            self.owners[connection_id] = participant_id
            self.open_connections += connection.open
            closed_at = connection.closed_at
            if closed_at is not None and (
                self.last_closed_at is None or closed_at > self.last_closed_at
            ):
                self.last_closed_at = closed_at
        for stream in video.streams.values():
            self.open_streams += stream.open
            # One copy of each id and type, as the engine keeps them (``streams``).
            stream.connection_id = video.kept_connection_id(stream.connection_id)
            stream.video_type = intern(stream.video_type)


def _restored(session_id: str, first: bytes | None, chunks: dict[int, dict[int, bytes]]) -> Session:
    split: dict[int, int] = {}
    if first is not None and first.startswith(_ONE_PART):
        encoded = first[_PART_COUNT.size :]
    else:
        if first is not None:
            chunks[HEADER_CHUNK] = {**chunks.get(HEADER_CHUNK, {}), 0: first}
        encoded = _joined(session_id, HEADER_CHUNK, chunks, split)
    try:
        header = decode_header(encoded)
        closed = (
            header.ended_at is not None
            or header.timed_out_at is not None
            or header.empty_ended_at is not None
        )
        participants: dict[str, Participant] = {}
        members: list[list[str]] = []
        active = 0
        video_rows = header.source == "video"  # its rows decode to Video participants
        tally = _ConnectionTally() if video_rows else None
        for chunk in range(header.chunks):
            rows: Sequence[ParticipantRecord]
            if header.inline is not None:
                rows = header.inline
            else:
                rows = decode_chunk(
                    header.format_version,
                    chunk,
                    _joined(session_id, chunk, chunks, split),
                    video=video_rows,
                )
            active += _shared_copies(rows)
            participants.update(rows)
            if tally is not None:
                for participant_id, participant in rows:
                    tally.add(participant_id, participant)
            if header.chunks > 1:
                for _, participant in rows:
                    if isinstance(participant, CrowdParticipant):
                        participant.chunk = chunk  # one int object per chunk, not one per member
                members.append([participant_id for participant_id, _ in rows])
    except (msgspec.DecodeError, ValueError) as exc:
        raise ChangelogError(f"session {session_id}: {exc}") from exc
    # Positional: calling a class with keywords passes them through a dict, once per session
    # (the order of the fields is pinned by a test).
    session = Session(
        session_id,
        header.room_id,
        header.last_event_at,
        header.last_received_at,
        header.started_at,
        header.session_started_seen,
        header.ended_at,
        header.timed_out_at,
        participants,
        0 if closed else active,  # active_count
        None,  # crowd
        header.total_joins,
        header.live_peak,
        _recording_facts(header.recordings),
        _publication(header),
        header.version,
    )
    if split:
        session.split_parts = split
    if tally is not None:
        session.video = VideoSession(
            tenant_id=header.tenant_id,
            instance=header.instance,
            end_reason=header.end_reason,
            connection_owners=tally.owners,
            open_connections=0 if closed else tally.open_connections,
            open_streams=0 if closed else tally.open_streams,
            emptied_at=header.emptied_at,
            empty_ended_at=header.empty_ended_at,
            opened_at=header.opened_at,
            last_closed_at=tally.last_closed_at,
        )
    if len(members) > 1:
        present_ids = [] if closed else sorted_present(participants)
        session.crowd = Crowd(
            chunks=members,
            present_at=[participants[pid].joined_at or 0 for pid in present_ids],
            present_ids=present_ids,
            last_chunk=len(members) - 1,
        )
        if header.format_version != FORMAT_VERSION:
            # Rewritten whole in the current format with its next change (``changelog_format``).
            session.crowd.dirty = (1 << len(members)) - 1
    return session


def _shared_copies(rows: Sequence[ParticipantRecord]) -> int:
    """Give the participants of ``rows`` the copies of their names and types the engine shares
    (as ``Session.add_participant`` does); returns how many of them are present."""
    present = 0
    for _, participant in rows:
        participant.name = shared_name(participant.name)
        kind = participant.participant_type
        if kind is not None:  # ``intern``, without one more call per participant
            participant.participant_type = sys.intern(kind)
        if participant.joined_at is not None and participant.left_at is None:
            present += 1
    return present


def _publication(header: SessionHeader) -> Publication | None:
    if header.summary is None:
        return None
    return Publication(
        summary=header.summary.summary(),
        digest=header.published_digest,
        unsettled_changes=header.unsettled_changes,
    )


def _recording_facts(
    recordings: list[RecordingFacts],
) -> RecordingFacts | dict[str, RecordingFacts] | None:
    if not recordings:
        return None
    if len(recordings) == 1:
        return recordings[0]
    return {recording.recording_id: recording for recording in recordings}


def _joined(
    session_id: str, chunk: int, chunks: dict[int, dict[int, bytes]], split: dict[int, int]
) -> bytes:
    parts = chunks.get(chunk, {})
    first = parts.get(0)
    if first is None or len(first) < _PART_COUNT.size:
        raise ChangelogError(f"session {session_id}: chunk {chunk} is missing")
    (count,) = _PART_COUNT.unpack_from(first)
    if count == 1:
        return first[_PART_COUNT.size :]
    split[chunk] = count
    pieces = [first[_PART_COUNT.size :]]
    for part in range(1, count):
        piece = parts.get(part)
        if piece is None:
            raise ChangelogError(f"session {session_id}: chunk {chunk} lacks part {part}")
        pieces.append(piece)
    return b"".join(pieces)


def _encoded(
    session: Session,
    chunk: int,
    value: SessionHeader | list[ParticipantRecord],
    previous: bool = False,
) -> list[Record]:
    encoded = ENCODER.encode(value)
    pieces = [encoded[i : i + MAX_PART_BYTES] for i in range(0, len(encoded), MAX_PART_BYTES)]
    pieces = pieces or [b""]
    session_id = session.session_id
    key_chunk = _key_chunk(chunk, previous)
    records: list[Record] = [
        (changelog_key(session_id, key_chunk, 0), _PART_COUNT.pack(len(pieces)) + pieces[0]),
        *(
            (changelog_key(session_id, key_chunk, part), pieces[part])
            for part in range(1, len(pieces))
        ),
    ]
    # Parts a longer earlier encoding needed and this one does not: tombstoned.
    split = session.split_parts
    before = 1 if split is None else split.get(chunk, 1)
    records.extend(
        (changelog_key(session_id, key_chunk, part), None) for part in range(len(pieces), before)
    )
    if len(pieces) > 1:
        if split is None:
            split = session.split_parts = {}
        split[chunk] = len(pieces)
    elif split is not None:
        split.pop(chunk, None)
    return records


def changelog_key(session_id: str, chunk: int, part: int) -> bytes:
    return ENCODER.encode((session_id, chunk, part))


def _header(session: Session) -> SessionHeader:
    one_chunk = session.crowd is None and session.participants
    published = session.published
    video = session.video
    return SessionHeader(
        format_version=FORMAT_VERSION,
        room_id=session.room_id,
        last_event_at=session.last_event_at,
        last_received_at=session.last_received_at,
        started_at=session.started_at,
        session_started_seen=session.session_started_seen,
        ended_at=session.ended_at,
        timed_out_at=session.timed_out_at,
        total_joins=session.total_joins,
        live_peak=session.live_peak,
        recordings=list(session.recordings.values()),
        summary=None if published is None else SummaryRow.of(published.summary),
        published_digest=b"" if published is None else published.digest,
        unsettled_changes=0 if published is None else published.unsettled_changes,
        version=session.version,
        chunks=session.chunk_count,
        inline=list(session.participants.items()) if one_chunk else None,
        source=session.source,
        tenant_id=session.tenant_id,
        instance=session.instance,
        end_reason=session.end_reason,
        emptied_at=None if video is None else video.emptied_at,
        empty_ended_at=None if video is None else video.empty_ended_at,
        opened_at=0 if video is None else video.opened_at,
    )
