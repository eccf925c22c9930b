"""A replay's progress line: records done against the ends taken at its start."""

from __future__ import annotations

from processor.replay.progress import Progress, describe


def test_progress_counts_from_where_the_replay_began_to_the_ends_taken_at_its_start() -> None:
    progress = Progress(starts={0: 100, 1: 0, 2: 5}, ends={0: 300, 1: 100, 2: 5}, done_to={0: 200})
    assert (progress.total, progress.done, progress.partitions_done) == (300, 100, 1)
    assert not progress.finished
    assert describe(progress, elapsed_s=10) == (
        "100/300 records (33.3%), 10 records/s, ETA 20s, partitions done 1/3"
    )


def test_records_written_after_the_start_do_not_count() -> None:
    progress = Progress(starts={0: 0}, ends={0: 50}, done_to={0: 80})
    assert (progress.done, progress.finished) == (50, True)
    assert describe(progress, elapsed_s=5).startswith("50/50 records (100.0%)")
    assert "ETA done" in describe(progress, elapsed_s=5)


def test_nothing_to_do_is_finished_at_once() -> None:
    progress = Progress(starts={}, ends={}, done_to={})
    assert progress.finished
    assert describe(progress, elapsed_s=0) == (
        "0/0 records (100.0%), 0 records/s, ETA done, partitions done 0/0"
    )


def test_long_remaining_times_read_in_hours_and_minutes() -> None:
    progress = Progress(starts={0: 0}, ends={0: 1_000_000}, done_to={0: 100})
    assert "ETA 2h46m" in describe(progress, elapsed_s=1)
