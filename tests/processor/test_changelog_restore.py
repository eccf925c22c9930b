"""Reading sessions back from the changelog, as a partition's restore does: whole partitions of
realistic sessions come back equal, bookkeeping and shared copies included."""

from __future__ import annotations

import copy
import dataclasses
import gc
import random
import sys
from collections.abc import Iterator

import pytest

from bench.processor_state import applied
from processor.engine import Session, all_records, changed_records, restore_sessions
from processor.engine.changelog_format import SummaryRow
from processor.engine.session import CHUNK_PARTICIPANTS, Participant, shared_name
from processor.runtime import changelog_read
from processor.runtime.changelog_read import RestoreError, decode_sessions
from processor.sources import ParticipantKey
from schemas.events import SessionSummary
from tests.processor.builders import joined, left, replay, session_started
from tests.processor.video_builders import (
    VideoPlayer,
    connected,
    disconnected,
    person,
    session_created,
    session_destroyed,
    stream_created,
)
from tools.simulator.meetings import MINUTE_MS, meeting, session_id_of

NOW_MS = 1_700_000_000_000


def benchmark_like_sessions(count: int) -> list[Session]:
    """Sessions shaped like those the restore benchmark writes (``bench.processor_state``): a
    few participants and a recording each, every other one still active."""
    rng = random.Random(5)
    sessions = []
    for number in range(count):
        duration_ms = rng.randint(10, 40) * MINUTE_MS
        bodies = meeting(
            rng,
            session_id=session_id_of(rng),
            t0=NOW_MS - duration_ms - rng.randint(1, 5) * MINUTE_MS,
            duration_ms=duration_ms,
            participants=rng.randint(2, 8),
            recording=True,
            ended=number % 2 == 0,
        )
        sessions.append(applied(bodies))
    return sessions


def crowd_session() -> Session:
    people = [joined(f"p{n:06}", 1_000 + n) for n in range(3 * CHUNK_PARTICIPANTS + 5)]
    return replay([session_started(0), *people, left("p000040", 9_000)]).current


def video_session() -> Session:
    """A Video session id on its second instance, with connections and streams in both."""
    ada, bob = person("u-1"), person("u-2")
    player = VideoPlayer(ParticipantKey("data.userId"))
    player.play(
        [
            session_created(0),
            connected(1_000, "c1", ada),
            stream_created(2_000, "s1", "c1", "camera"),
            disconnected(60_000, "c1"),
            session_destroyed(61_000),
            session_created(3_600_000),
            connected(3_601_000, "c2", bob),
            stream_created(3_602_000, "s2", "c2", "screen"),
        ]
    )
    return player.current


def bookkeeping(session: Session) -> list[object]:
    """What a restored session keeps that equality does not compare, for it and its previous
    instance."""
    kept: list[object] = [session.split_parts]
    if session.crowd is not None:
        kept += [session.crowd.dirty, session.crowd.last_chunk]
    if session.video is not None:
        kept += [session.video.previous_dirty, session.video.pending]
        if session.video.previous is not None:
            kept += bookkeeping(session.video.previous)
    return kept


def participants_of(session: Session) -> Iterator[Participant]:
    yield from session.participants.values()
    if session.previous is not None:
        yield from participants_of(session.previous)


def test_a_partition_of_realistic_sessions_comes_back_equal() -> None:
    written = [*benchmark_like_sessions(20), crowd_session(), video_session()]
    records: dict[bytes, bytes] = {}
    for session in written:  # committed: what they keep is what a commit leaves
        for key, value in changed_records(session):
            if value is None:
                records.pop(key, None)
            else:
                records[key] = value

    restored = restore_sessions(records.items())

    assert restored == written
    assert [list(s.participants) for s in restored] == [list(s.participants) for s in written]
    assert [bookkeeping(s) for s in restored] == [bookkeeping(s) for s in written]
    assert any(s.video is not None and s.previous is not None for s in restored)


def test_restored_participants_share_their_names_and_types_as_the_engine_does() -> None:
    written = [*benchmark_like_sessions(4), crowd_session(), video_session()]
    records = {
        key: value
        for session in written
        for key, value in all_records(copy.deepcopy(session))
        if value is not None
    }

    for session in restore_sessions(records.items()):
        for participant in participants_of(session):
            name, kind = participant.name, participant.participant_type
            assert name is None or name is shared_name(name)
            assert kind is None or kind is sys.intern(kind)


def test_a_summary_row_reads_back_every_field_of_the_summary() -> None:
    summary = SessionSummary(
        started_at="2026-01-02T03:04:05.006Z",
        ended_at="2026-01-02T04:04:05.006Z",
        duration_s=3600.0,
        unique_participants=7,
        peak_concurrency=5,
        total_joins=9,
        participant_seconds=12_345.5,
        recordings=2,
        recorded_seconds=600.25,
        ended_by="timeout",
        revision=3,
        screen_share_s=42.5,
        end_reason="forceDisconnected",
    )

    assert SummaryRow.of(summary).summary() == summary


def test_decoding_a_partition_holds_the_collector_off_and_hands_it_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    during: list[bool] = []

    def restore(values: object) -> list[Session]:
        during.append(gc.isenabled())
        return []

    monkeypatch.setattr(changelog_read, "restore_sessions", restore)
    assert gc.isenabled()
    decode_sessions(0, {})
    assert during == [False]
    assert gc.isenabled()

    gc.disable()  # as some caller may have it
    try:
        decode_sessions(0, {})
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_collector_is_handed_back_when_a_partition_cannot_be_decoded() -> None:
    with pytest.raises(RestoreError, match="partition 3"):
        decode_sessions(3, {b"\xc1": b""})
    assert gc.isenabled()


def test_restore_builds_sessions_in_the_order_of_their_fields() -> None:
    """``_restored`` passes a ``Session``'s first fields by position (a keyword call builds a
    dict per session): reordering them must be done there too."""
    assert [field.name for field in dataclasses.fields(Session)][:16] == [
        "session_id",
        "room_id",
        "last_event_at",
        "last_received_at",
        "started_at",
        "session_started_seen",
        "ended_at",
        "timed_out_at",
        "participants",
        "active_count",
        "crowd",
        "total_joins",
        "live_peak",
        "recording_facts",
        "published",
        "version",
    ]
