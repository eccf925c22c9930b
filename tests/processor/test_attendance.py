"""The concurrency sweep and the clamping of attendance intervals."""

from __future__ import annotations

from processor.engine.attendance import (
    Interval,
    OpenInterval,
    closed_attendance,
    peak_concurrency,
)
from processor.engine.session import ParticipantFacts, Session


def _session(started_at: int | None, ended_at: int | None) -> Session:
    return Session(
        session_id="s", room_id=None, last_event_at=0, started_at=started_at, ended_at=ended_at
    )


def _participant(joined_at: int | None, left_at: int | None) -> ParticipantFacts:
    return ParticipantFacts(
        participant_id="p",
        name=None,
        is_host=False,
        participant_type=None,
        joined_at=joined_at,
        left_at=left_at,
    )


def test_no_attendance_means_no_concurrency() -> None:
    assert peak_concurrency([]) == 0


def test_overlapping_intervals_count_together() -> None:
    assert peak_concurrency([Interval(0, 10), Interval(5, 15), Interval(9, 20)]) == 3


def test_back_to_back_intervals_do_not_overlap() -> None:
    assert peak_concurrency([Interval(0, 10), Interval(10, 20), Interval(20, 30)]) == 1


def test_an_instant_attendance_counts_while_it_lasts() -> None:
    assert peak_concurrency([Interval(5, 5)]) == 1
    assert peak_concurrency([Interval(0, 5), Interval(5, 5)]) == 1  # the other just left
    assert peak_concurrency([Interval(5, 5), Interval(5, 9)]) == 2  # the other just came


def test_open_intervals_last_forever() -> None:
    assert peak_concurrency([OpenInterval(0), Interval(100, 200), OpenInterval(150)]) == 3


def test_attendance_is_clamped_into_the_session() -> None:
    session = _session(started_at=1_000, ended_at=5_000)
    assert closed_attendance(_participant(500, 6_000), session, end=6_000) == Interval(1_000, 5_000)


def test_a_join_after_the_end_is_an_instant_at_the_end() -> None:
    session = _session(started_at=1_000, ended_at=5_000)
    assert closed_attendance(_participant(7_000, None), session, end=5_000) == Interval(
        5_000, 5_000
    )


def test_a_left_before_the_join_is_an_instant_at_the_join() -> None:
    session = _session(started_at=None, ended_at=None)
    assert closed_attendance(_participant(3_000, 2_000), session, end=2_000) == Interval(
        3_000, 3_000
    )


def test_without_a_join_the_attendance_starts_with_the_session_else_at_the_left() -> None:
    assert closed_attendance(_participant(None, 4_000), _session(1_000, None), end=4_000) == (
        Interval(1_000, 4_000)
    )
    assert closed_attendance(_participant(None, 4_000), _session(None, None), end=4_000) == (
        Interval(4_000, 4_000)
    )


def test_a_session_ending_before_its_start_still_yields_no_negative_interval() -> None:
    interval = closed_attendance(_participant(2_000, 3_000), _session(5_000, 4_000), end=3_000)
    assert interval.length_ms == 0
