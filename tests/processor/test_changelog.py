"""The internal changelog: what a commit writes for a session, and reading it back."""

from __future__ import annotations

import msgspec
import pytest

from processor.engine import (
    HEADER_CHUNK,
    ChangelogError,
    Session,
    all_records,
    changed_records,
    changelog_key,
    overlaid,
    restore_sessions,
    snapshot,
    tombstones,
)
from processor.engine.changelog import MAX_PART_BYTES
from processor.engine.session import CHUNK_PARTICIPANTS
from tests.processor.builders import (
    Delivery,
    Replay,
    joined,
    left,
    recording_started,
    replay,
    session_ended,
    session_started,
    through_the_changelog,
)


def latest(records: list[tuple[bytes, bytes | None]]) -> dict[bytes, bytes]:
    """What a compacted topic keeps of these records, in order."""
    kept: dict[bytes, bytes] = {}
    for key, value in records:
        if value is None:
            kept.pop(key, None)
        else:
            kept[key] = value
    return kept


def crowd(count: int, *, offset: int = 0) -> list[Delivery]:
    return [joined(f"p{number:06}", 1_000 + number) for number in range(offset, offset + count)]


def test_a_commit_rewrites_the_header_and_only_the_changed_chunks() -> None:
    fed = replay([session_started(0), *crowd(4 * CHUNK_PARTICIPANTS)])
    first = changed_records(fed.current)
    assert len(first) == 1 + 4  # the header and four chunks

    fed.feed([left("p000040", 9_000)])  # in the second chunk
    second = changed_records(fed.current)

    assert len(second) == 2
    assert changed_records(fed.current) == second[:1]  # nothing changed since: header only


def test_a_small_session_is_one_record_until_it_outgrows_one_chunk() -> None:
    fed = replay([session_started(0), *crowd(CHUNK_PARTICIPANTS)])
    written = changed_records(fed.current)
    assert len(written) == 1

    fed.feed(crowd(1, offset=CHUNK_PARTICIPANTS))
    grown = changed_records(fed.current)

    assert len(grown) == 3  # the header, the first chunk now on its own, the second
    [restored] = restore_sessions(latest(written + grown).items())
    assert restored == fed.current


def test_the_changelog_written_commit_by_commit_restores_the_session() -> None:
    fed = Replay()
    written: list[tuple[bytes, bytes | None]] = []
    steps = [
        session_started(0),
        *crowd(100),
        left("p000003", 5_000),
        joined("p000003", 6_000),
        left("late", 6_500),
        *crowd(50, offset=100),
        session_ended(0, 10_000),
    ]
    for number, delivery in enumerate(steps):
        fed.feed([delivery])
        if number % 7 == 0:
            written += changed_records(fed.current)
    written += changed_records(fed.current)

    [restored] = restore_sessions(latest(written).items())

    assert restored == fed.current
    assert list(restored.participants) == list(fed.current.participants)  # same order


def test_an_oversized_chunk_is_split_into_parts_and_shrinks_back() -> None:
    fed = replay([session_started(0)])
    session = fed.current
    session.room_id = "r" * (3 * MAX_PART_BYTES)  # a header far beyond one record
    written = changed_records(session)
    assert len(written) == 4
    assert max(len(value or b"") for _, value in written) <= MAX_PART_BYTES + 4

    [restored] = restore_sessions(latest(written).items())
    assert restored.room_id == session.room_id

    session.room_id = "small"
    shrunk = changed_records(session)
    assert [value is None for _, value in shrunk] == [False, True, True, True]
    [restored] = restore_sessions(latest(written + shrunk).items())
    assert restored.room_id == "small"


def test_tombstones_remove_every_record_of_the_session() -> None:
    fed = replay([session_started(0), *crowd(3 * CHUNK_PARTICIPANTS + 1)])
    written = all_records(fed.current)

    assert latest(written + tombstones(fed.current)) == {}


def test_a_fifty_thousand_participant_session_stays_far_below_a_megabyte_per_record() -> None:
    fed = replay([session_started(0), *crowd(50_000)])
    fed.feed([left(f"p{number:06}", 20_000_000 + number) for number in range(0, 50_000, 5)])
    records = all_records(fed.current)

    assert max(len(key) + len(value or b"") for key, value in records) < 64 * 1024
    [restored] = restore_sessions(latest(records).items())
    assert restored == fed.current
    assert restored.active_count == 40_000


def test_a_missing_chunk_is_refused() -> None:
    fed = replay([session_started(0), *crowd(2 * CHUNK_PARTICIPANTS)])
    records = latest(all_records(fed.current))
    del records[list(records)[-1]]

    with pytest.raises(ChangelogError, match="chunk 1"):
        restore_sessions(records.items())


def test_an_undecodable_key_is_refused() -> None:
    with pytest.raises(ChangelogError):
        restore_sessions([(b"\xc1", b"")])


def test_sessions_of_a_partition_are_told_apart() -> None:
    one = replay([session_started(0), *crowd(3)]).current
    other = Session(session_id="1_other", room_id=None, last_event_at=5)
    records = latest(all_records(one) + all_records(other))

    restored = {session.session_id: session for session in restore_sessions(records.items())}
    assert restored == {one.session_id: one, "1_other": other}


def _format_1(session: Session) -> dict[bytes, bytes]:
    """The records earlier versions wrote for ``session`` (format 1), by key."""
    encode = msgspec.msgpack.encode
    participants = session.participants

    def rows(ids: list[str]) -> list[list[object]]:
        return [
            [pid, p.name, p.is_host, p.participant_type, p.joined_at, p.left_at, p.earlier]
            for pid, p in ((pid, participants[pid]) for pid in ids)
        ]

    recordings = [list(msgspec.structs.astuple(r)) for r in session.recordings.values()]
    published = session.published
    chunks = session.chunk_count
    header = [
        1,
        session.session_id,
        session.room_id,
        session.last_event_at,
        session.last_received_at,
        session.started_at,
        session.session_started_seen,
        session.ended_at,
        session.timed_out_at,
        session.total_joins,
        session.live_peak,
        recordings,
        None if published is None else published.summary,
        b"" if published is None else published.digest,
        0 if published is None else published.unsettled_changes,
        session.version,
        chunks,
        rows(list(participants)) if chunks == 1 else None,
    ]
    one_part = (1).to_bytes(4, "big")
    records = {encode((session.session_id, -1, 0)): one_part + encode(header)}
    if chunks > 1:
        for chunk in range(chunks):
            value = one_part + encode(rows(session.chunk_members(chunk)))
            records[encode((session.session_id, chunk, 0))] = value
    return records


@pytest.mark.parametrize("people", [3, 3 * CHUNK_PARTICIPANTS + 5])
def test_records_of_format_1_restore_the_same_session(people: int) -> None:
    fed = replay(
        [
            session_started(0),
            recording_started("rec-1", 500),
            *crowd(people),
            left("p000001", 5_000),
            joined("p000001", 6_000),
            left("p000002", 7_000),
            session_ended(0, 10_000),
        ]
    )

    [restored] = restore_sessions(_format_1(fed.current).items())

    assert restored == fed.current
    assert snapshot(restored) == snapshot(fed.current)


def test_a_session_restored_from_format_1_is_rewritten_whole_with_its_next_change() -> None:
    fed = replay([session_started(0), *crowd(3 * CHUNK_PARTICIPANTS)])
    old = _format_1(fed.current)
    [restored] = restore_sessions(old.items())

    continued = Replay(session=restored)
    continued.feed([left("p000040", 9_000)])
    rewritten = changed_records(continued.current)

    assert len(rewritten) == 1 + 3  # the header and every chunk, in the current format
    [again] = restore_sessions(latest([*old.items(), *rewritten]).items())
    assert again == continued.current


def _format_2(session: Session) -> dict[bytes, bytes]:
    """The records versions before the Video source wrote for a Meetings ``session`` (format
    2, still the current one), by key: Meetings rows are unchanged since (a participant
    beyond the first chunk has its chunk number right after its stints)."""
    encode = msgspec.msgpack.encode
    participants = session.participants

    def row(pid: str, chunk: int) -> list[object]:
        p = participants[pid]
        fields = [p.name, p.is_host, p.participant_type, p.joined_at, p.left_at, p.earlier]
        return [pid, fields if chunk == 0 else [*fields, chunk]]

    recordings = [list(msgspec.structs.astuple(r))[:8] for r in session.recordings.values()]
    published = session.published
    chunks = session.chunk_count
    summary = None
    if published is not None:
        summary = list(msgspec.structs.astuple(published.summary))[:11]
    header = [
        2,
        session.room_id,
        session.last_event_at,
        session.last_received_at,
        session.started_at,
        session.session_started_seen,
        session.ended_at,
        session.timed_out_at,
        session.total_joins,
        session.live_peak,
        recordings,
        summary,
        b"" if published is None else published.digest,
        0 if published is None else published.unsettled_changes,
        session.version,
        chunks,
        [row(pid, 0) for pid in participants] if chunks == 1 else None,
    ]
    one_part = (1).to_bytes(4, "big")
    records = {encode((session.session_id, -1, 0)): one_part + encode(header)}
    if chunks > 1:
        for chunk in range(chunks):
            rows = [row(pid, chunk) for pid in session.chunk_members(chunk)]
            records[encode((session.session_id, chunk, 0))] = one_part + encode(rows)
    return records


@pytest.mark.parametrize("people", [3, 3 * CHUNK_PARTICIPANTS + 5])
def test_records_written_before_the_video_source_restore_the_same_session(people: int) -> None:
    fed = replay(
        [
            session_started(0),
            recording_started("rec-1", 500),
            *crowd(people),
            left("p000001", 5_000),
            joined("p000001", 6_000),
            left(f"p{people - 1:06d}", 7_000),
            session_ended(0, 10_000),
        ]
    )

    [restored] = restore_sessions(_format_2(fed.current).items())

    assert restored == fed.current
    assert snapshot(restored) == snapshot(fed.current)


def delta(records: list[tuple[bytes, bytes | None]]) -> dict[bytes, bytes | None]:
    """What a delta read returns for these records: the last value per key, tombstones too."""
    return dict(records)


def test_what_another_owner_wrote_laid_over_kept_state_is_its_session() -> None:
    """A kept a crowd session; B restored it, applied more callbacks (rewriting the header and
    some chunks) and committed twice; A lays B's records over what it kept."""
    fed = replay([session_started(0), *crowd(3 * CHUNK_PARTICIPANTS), left("p000001", 7_000)])
    kept = through_the_changelog(fed.current)
    other = Replay(session=through_the_changelog(fed.current))
    other.feed([left("p000040", 8_000), *crowd(CHUNK_PARTICIPANTS + 5, offset=500)])
    written = changed_records(other.current)
    other.feed([joined("p000040", 9_000), session_ended(0, 10_000)])
    written += changed_records(other.current)

    merged = overlaid(kept, delta(written))

    assert merged == other.current
    assert list(merged.participants) == list(other.current.participants)  # same order


def test_a_session_the_other_owner_started_or_tombstoned() -> None:
    fed = replay([session_started(0), *crowd(2 * CHUNK_PARTICIPANTS)])
    assert overlaid(None, delta(all_records(fed.current))) == fed.current
    assert overlaid(fed.current, delta(tombstones(fed.current))) is None
    # A key with no session behind it (the roll marker) deletes nothing.
    assert overlaid(None, {changelog_key("", HEADER_CHUNK, 0): None}) is None
