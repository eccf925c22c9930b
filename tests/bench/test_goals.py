"""The benchmarks' goals: bounds decide met or missed, and the summary counts them."""

from __future__ import annotations

from bench.goals import at_least, at_most, below, summary


def test_bounds_include_or_exclude_the_bound_as_their_sign_says() -> None:
    assert at_least("ratio", 0.80, 0.80).met
    assert not at_least("ratio", 0.79, 0.80).met
    assert at_most("memory", 1_536, 1_536, unit="B").met
    assert not at_most("memory", 1_537, 1_536, unit="B").met
    assert not below("p99", 150, 150, unit="ms").met
    assert below("p99", 149.9, 150, unit="ms").met


def test_the_summary_shows_each_value_with_its_goal_and_counts_the_met() -> None:
    lines = summary(
        [at_least("exactly-once / ceiling", 0.84, 0.80), below("restore", 2.4, 2.0, unit="s")]
    )
    assert "0.84x" in lines[1]
    assert ">= 0.80x" in lines[1]
    assert lines[1].endswith("met")
    assert "2.40 s" in lines[2]
    assert lines[2].endswith("MISSED")
    assert lines[-1] == "  1 of 2 met"
