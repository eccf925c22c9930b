"""The connection cap's policy: which connection makes room, when one is refused, how often it
is logged (pure logic; the real service is exercised in test_connection_limit.py)."""

from __future__ import annotations

import logging

import pytest

from ingest.http.connections import (
    REPORT_INTERVAL_S,
    ConnectionGuard,
    Phase,
    default_max_connections,
)


class FakeConnection:
    def __init__(
        self, name: str, phase: Phase = Phase.IDLE, *, since: float = 0.0, timeout: float = 10.0
    ) -> None:
        self.name = name
        self.phase = phase
        self.phase_since = since
        self.read_deadline: float | None = since + timeout
        self.evicted = False
        self.timed_out = False

    def evict(self) -> None:
        self.evicted = True

    def read_timed_out(self) -> None:
        self.timed_out = True

    def __repr__(self) -> str:
        return self.name


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_at_the_cap_the_stalest_connection_makes_room() -> None:
    guard = ConnectionGuard(3, clock=Clock())
    oldest, middle, newest = FakeConnection("a"), FakeConnection("b"), FakeConnection("c")
    for connection in (oldest, middle, newest):
        assert guard.admit(connection)
    oldest.phase = Phase.HEADERS
    guard.progressed(oldest)  # it just made progress: now the freshest
    arriving = FakeConnection("d")
    assert guard.admit(arriving)
    assert (oldest.evicted, middle.evicted, newest.evicted) == (False, True, False)
    assert len(guard) == 3


def test_connections_being_answered_are_never_evicted() -> None:
    guard = ConnectionGuard(2, clock=Clock())
    answering = FakeConnection("a", Phase.ANSWERING)
    slow_body = FakeConnection("b", Phase.BODY)
    guard.admit(answering)
    guard.admit(slow_body)
    assert guard.admit(FakeConnection("c"))
    assert not answering.evicted
    assert slow_body.evicted


def test_a_new_connection_is_refused_when_all_are_being_answered() -> None:
    guard = ConnectionGuard(2, clock=Clock())
    busy = [FakeConnection("a", Phase.ANSWERING), FakeConnection("b", Phase.ANSWERING)]
    for connection in busy:
        guard.admit(connection)
    assert not guard.admit(FakeConnection("c"))
    assert len(guard) == 2
    guard.release(busy[0])
    assert guard.admit(FakeConnection("d"))


def test_releasing_twice_or_an_unknown_connection_is_harmless() -> None:
    guard = ConnectionGuard(2, clock=Clock())
    connection = FakeConnection("a")
    guard.admit(connection)
    guard.release(connection)
    guard.release(connection)
    guard.release(FakeConnection("never admitted"))
    assert len(guard) == 0


def test_refusals_and_evictions_are_logged_at_most_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="ingest.http.connections")
    clock = Clock()
    guard = ConnectionGuard(1, clock=clock)
    guard.admit(FakeConnection("first"))
    for number in range(100):
        guard.admit(FakeConnection(f"c{number}"))
    assert len(caplog.records) == 1
    clock.now += REPORT_INTERVAL_S
    guard.admit(FakeConnection("later"))
    assert len(caplog.records) == 2
    assert "0 connections refused, 100 idle or slow" in caplog.records[1].getMessage()


def test_the_sweep_finds_late_requests_and_stops_at_fresh_connections() -> None:
    guard = ConnectionGuard(10, clock=Clock())
    late_headers = FakeConnection("late", Phase.HEADERS, since=0.0)
    silent = FakeConnection("silent", Phase.IDLE, since=1.0)
    answering = FakeConnection("answering", Phase.ANSWERING, since=2.0)
    keep_alive = FakeConnection("keep-alive", Phase.IDLE, since=3.0)
    keep_alive.read_deadline = None  # between requests: no clock running
    slow_body = FakeConnection("body", Phase.BODY, since=4.0)  # its read is ended by the sweep
    fresh = FakeConnection("fresh", Phase.HEADERS, since=9.0)
    for connection in (late_headers, silent, answering, keep_alive, slow_body, fresh):
        guard.admit(connection)
    assert guard.overdue(now=10.5, read_timeout_s=10.0) == [late_headers]
    assert guard.overdue(now=11.0, read_timeout_s=10.0) == [late_headers, silent]
    assert guard.overdue(now=14.0, read_timeout_s=10.0) == [late_headers, silent, slow_body]
    assert guard.overdue(now=19.0, read_timeout_s=10.0) == [late_headers, silent, slow_body, fresh]


@pytest.mark.parametrize(
    ("limit", "expected"),
    [(1024, 896), (256, 128), (64, 32), (1, 1), (1_048_576, 16_384)],
)
def test_the_default_cap_leaves_room_below_the_descriptor_limit(limit: int, expected: int) -> None:
    assert default_max_connections(limit) == expected
