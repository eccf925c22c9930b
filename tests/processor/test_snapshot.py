"""The public snapshot (bounded), versions, and continuing after a restore from the changelog."""

from __future__ import annotations

import pytest

from processor.engine import expire_idle, snapshot
from processor.sources.meetings import apply_callback
from schemas.codec import encode
from schemas.state import ActiveParticipant
from tests.processor.builders import (
    Delivery,
    Replay,
    at,
    joined,
    left,
    recording_ended,
    recording_ready,
    recording_started,
    replay,
    session_ended,
    session_started,
    through_the_changelog,
)

MEETING: list[Delivery] = [
    recording_ended("rec-1", 1_500, 7_000, received=7_100),
    session_started(0),
    joined("bob", 2_000),
    joined("alice", 1_000, is_host=True),
    left("carol", 2_500),
    recording_started("rec-1", 1_600),
    recording_started("rec-2", 3_000),
    left("bob", 5_000),
    joined("dave", 6_000),
    session_ended(0, 10_000),
    left("dave", 8_000),
    recording_ready("rec-1", 1_500, 7_000, received=20_000),
    joined("carol", 21_000),
]


def test_the_live_state_of_an_active_session() -> None:
    fed = replay(MEETING[:8])
    state = snapshot(fed.current)

    assert state.status == "active"
    assert state.active_participants == [
        ActiveParticipant(participant_id="alice", name="Alice", is_host=True, joined_at=at(1_000))
    ]
    assert (state.active_count, state.active_participants_truncated) == (1, False)
    assert state.peak_concurrency == 2  # bob and alice (carol's left is held)
    assert (state.unique_participants, state.total_joins) == (3, 2)
    assert state.recording_active  # rec-2 has only started
    assert (state.ended_at, state.duration_s) == (None, None)
    assert state.last_event_at == at(7_000)


def test_the_listed_participants_are_bounded_the_earliest_joined_first() -> None:
    fed = replay(
        [session_started(0)]
        + [joined(f"p{number:02}", 10_000 - 100 * number) for number in range(30)]
        + [left("p29", 20_000)]
    )
    state = snapshot(fed.current, max_listed=5)

    assert [p.participant_id for p in state.active_participants] == [
        "p28",
        "p27",
        "p26",
        "p25",
        "p24",
    ]
    assert (state.active_count, state.active_participants_truncated) == (29, True)
    assert (state.unique_participants, state.total_joins, state.peak_concurrency) == (30, 30, 30)
    complete = snapshot(fed.current, max_listed=29)
    assert (len(complete.active_participants), complete.active_participants_truncated) == (
        29,
        False,
    )


def test_a_closed_session_shows_the_summary_peak() -> None:
    fed = replay(MEETING)
    state = snapshot(fed.current)
    summary = fed.final_summary

    assert summary is not None
    assert (state.status, state.active_count) == ("ended", 0)
    assert state.peak_concurrency == summary.peak_concurrency
    assert state.summary == summary


@pytest.mark.parametrize("steps", range(1, len(MEETING) + 1))
def test_restore_from_the_changelog_is_the_same_session(steps: int) -> None:
    fed = replay(MEETING[:steps])
    assert through_the_changelog(fed.current) == fed.current


@pytest.mark.parametrize("steps", range(1, len(MEETING)))
def test_a_restored_session_continues_exactly_as_the_original(steps: int) -> None:
    original = replay(MEETING)
    restored = Replay(session=through_the_changelog(replay(MEETING[:steps]).current))

    continued = restored.feed(MEETING[steps:])

    assert continued == original.events[len(original.events) - len(continued) :]
    assert snapshot(restored.current) == snapshot(original.current)


def test_a_restored_timed_out_session_stays_timed_out() -> None:
    fed = replay(MEETING[:5])
    expire_idle(fed.current)

    restored = through_the_changelog(fed.current)

    assert restored == fed.current
    assert snapshot(restored).status == "timed_out"
    assert expire_idle(restored).changed is False


def test_the_version_counts_changes_only() -> None:
    fed = Replay()
    versions = []
    for delivery in MEETING:
        fed.feed([delivery])
        versions.append(snapshot(fed.current).version)
    # Retries: the recording and session callbacks, and the join of alice (sent away by the
    # end, so still in her stint); bob's join would be a rejoin, as he had left.
    for index in (0, 1, 3, 9):
        fed.feed([MEETING[index]])
        versions.append(snapshot(fed.current).version)

    assert versions == [*range(1, len(MEETING) + 1), *[len(MEETING)] * 4]


def test_an_unchanged_apply_publishes_the_same_snapshot() -> None:
    fed = replay(MEETING)
    before = snapshot(fed.current)

    callback, received = MEETING[9]  # session:ended again
    assert apply_callback(fed.current, callback, received + 1_000).changed is False
    assert snapshot(fed.current) == before


def test_huge_names_cut_the_list_short_but_never_the_count() -> None:
    name = "\x00" * 50_000  # escaped as \u0000 in JSON: 300 kB each
    fed = replay(
        [session_started(0)]
        + [joined(f"p{number}", 1_000 + number, name=name) for number in range(8)]
    )
    state = snapshot(fed.current)

    assert (state.active_count, state.active_participants_truncated) == (8, True)
    assert len(state.active_participants) == 2
    assert len(encode(state)) < 1024 * 1024


def test_huge_recording_urls_cut_the_recordings_short() -> None:
    fed = replay([session_started(0)])
    for number in range(20):
        fed.feed([recording_started(f"rec-{number}", 1_000 + number)])
        recording = fed.current.recordings[f"rec-{number}"]
        recording.url = "\x00" * 30_000
    state = snapshot(fed.current)

    assert state.recordings_truncated
    assert 0 < len(state.recordings) < 20
    assert len(encode(state)) < 1024 * 1024
    assert not snapshot(replay(MEETING).current).recordings_truncated
