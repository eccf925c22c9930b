"""The concurrency sweep and the clamping of stints into the session."""

from __future__ import annotations

from processor.engine.attendance import clamped, peak_concurrency
from processor.engine.session import Session


def _session(started_at: int | None, ended_at: int | None) -> Session:
    return Session(
        session_id="s", room_id=None, last_event_at=0, started_at=started_at, ended_at=ended_at
    )


def test_no_attendance_means_no_concurrency() -> None:
    assert peak_concurrency([]) == 0


def test_overlapping_stints_count_together() -> None:
    assert peak_concurrency([(0, 10), (5, 15), (9, 20)]) == 3


def test_back_to_back_stints_do_not_overlap() -> None:
    assert peak_concurrency([(0, 10), (10, 20), (20, 30)]) == 1


def test_an_instant_stint_counts_while_it_lasts() -> None:
    assert peak_concurrency([(5, 5)]) == 1
    assert peak_concurrency([(0, 5), (5, 5)]) == 1  # the other just left
    assert peak_concurrency([(5, 5), (5, 9)]) == 2  # the other just came


def test_a_stint_is_clamped_into_the_session() -> None:
    assert clamped(_session(1_000, 5_000), 500, 6_000) == (1_000, 5_000)


def test_an_open_stint_of_an_active_session_has_no_end_yet() -> None:
    assert clamped(_session(1_000, None), 2_000, None) is None


def test_an_open_stint_ends_with_the_session() -> None:
    assert clamped(_session(1_000, 5_000), 2_000, None) == (2_000, 5_000)


def test_a_join_after_the_end_is_an_instant_at_the_end() -> None:
    assert clamped(_session(1_000, 5_000), 7_000, None) == (5_000, 5_000)


def test_a_left_before_the_join_time_is_an_instant_at_the_join() -> None:
    assert clamped(_session(None, None), 3_000, 2_000) == (3_000, 3_000)


def test_a_session_ending_before_its_start_still_yields_no_negative_stint() -> None:
    interval = clamped(_session(5_000, 4_000), 2_000, 3_000)
    assert interval is not None
    start, end = interval
    assert end - start == 0
