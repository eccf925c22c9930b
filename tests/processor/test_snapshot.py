"""Snapshot and restore: the published state, versions, and continuing after a restore."""

from __future__ import annotations

import msgspec
import pytest

from processor.engine import Session, apply, expire_idle, restore, snapshot
from schemas.codec import decode_state, encode
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
]


def through_the_changelog(session: Session) -> Session:
    """Snapshot, publish as JSON, read back and restore: what a rebalance does."""
    return restore(decode_state(encode(snapshot(session))))


def test_the_live_state_of_an_active_session() -> None:
    fed = replay(MEETING[:8])
    state = snapshot(fed.current)

    assert state.status == "active"
    assert state.active_participants == [
        ActiveParticipant(participant_id="alice", name="Alice", is_host=True, joined_at=at(1_000))
    ]
    assert state.active_count == 1
    assert state.peak_concurrency == 3  # alice, bob, and carol (no join seen: from the start)
    assert (state.unique_participants, state.total_joins) == (3, 2)
    assert state.recording_active  # rec-2 has only started
    assert (state.ended_at, state.duration_s) == (None, None)
    assert state.last_event_at == at(7_000)
    assert [p.participant_id for p in state.participants] == ["alice", "bob", "carol"]


@pytest.mark.parametrize("steps", range(len(MEETING) + 1))
def test_restore_of_a_snapshot_is_the_same_session(steps: int) -> None:
    fed = replay(MEETING[: max(steps, 1)])
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
    for delivery in [*MEETING, *MEETING]:
        fed.feed([delivery])
        versions.append(snapshot(fed.current).version)

    assert versions[: len(MEETING)] == list(range(1, len(MEETING) + 1))
    assert versions[len(MEETING) :] == [len(MEETING)] * len(MEETING)


def test_an_unchanged_apply_publishes_the_same_snapshot() -> None:
    fed = replay(MEETING)
    before = snapshot(fed.current)

    callback, received = MEETING[3]
    assert apply(fed.current, callback, received + 1_000).changed is False
    assert snapshot(fed.current) == before


def test_a_snapshot_without_its_last_event_time_is_refused() -> None:
    state = msgspec.structs.replace(snapshot(replay(MEETING[:2]).current), last_event_at=None)
    with pytest.raises(ValueError, match="last_event_at"):
        restore(state)
